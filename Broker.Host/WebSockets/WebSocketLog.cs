using System.Net;
using System.Net.WebSockets;
using Microsoft.Extensions.Logging;

namespace OmniBroker.Host.WebSockets;

/// <summary>Log events of the MQTT over WebSockets listener (stable ids 6100-6119). Certificate refusals on this
/// listener are logged by Broker.Auth as on the TLS listener (event 2001, same reason labels).</summary>
internal static partial class WebSocketLog
{
    public const int ListeningId = 6100;
    public const int RequestRefusedId = 6101;
    public const int TextMessageRefusedId = 6102;
    public const int InvalidFrameId = 6103;
    public const int ClosedWithoutHandshakeId = 6104;
    public const int ConnectionClosedId = 6105;
    public const int CloseFailedId = 6106;
    public const int AcceptedId = 6107;

    [LoggerMessage(EventId = ListeningId, EventName = "WebSocketListening", Level = LogLevel.Information,
        Message = "MQTT over secure WebSockets (client certificate required) listening on wss://{EndPoint}{Path} (subprotocol {SubProtocol})")]
    public static partial void Listening(ILogger logger, IPEndPoint endPoint, string path, string subProtocol);

    [LoggerMessage(EventId = RequestRefusedId, EventName = "WebSocketRequestRefused", Level = LogLevel.Information,
        Message = "HTTP request from {RemoteAddress} to the MQTT WebSocket listener refused with {StatusCode}: {Reason}")]
    public static partial void RequestRefused(ILogger logger, string remoteAddress, int statusCode, string reason);

    [LoggerMessage(EventId = TextMessageRefusedId, EventName = "WebSocketTextMessageRefused", Level = LogLevel.Warning,
        Message = "WebSocket client {RemoteAddress} sent a text message; MQTT needs binary messages [MQTT-6.0.0-1]: closing with 1003")]
    public static partial void TextMessageRefused(ILogger logger, string remoteAddress);

    [LoggerMessage(EventId = InvalidFrameId, EventName = "WebSocketInvalidFrame", Level = LogLevel.Warning,
        Message = "WebSocket client {RemoteAddress} sent an invalid frame, closing (WebSocket {State}): {Detail}")]
    public static partial void InvalidFrame(ILogger logger, string remoteAddress, string detail, WebSocketState state);

    [LoggerMessage(EventId = ClosedWithoutHandshakeId, EventName = "WebSocketClosedWithoutHandshake", Level = LogLevel.Debug,
        Message = "WebSocket client {RemoteAddress} dropped the connection without a Close frame")]
    public static partial void ClosedWithoutHandshake(ILogger logger, string remoteAddress);

    [LoggerMessage(EventId = ConnectionClosedId, EventName = "WebSocketConnectionClosed", Level = LogLevel.Debug,
        Message = "MQTT over WebSocket connection {ConnectionId} from {RemoteAddress} closed with {CloseStatus} {CloseDescription}")]
    public static partial void ConnectionClosed(ILogger logger, string connectionId, string remoteAddress, WebSocketCloseStatus? closeStatus, string closeDescription);

    [LoggerMessage(EventId = CloseFailedId, EventName = "WebSocketCloseFailed", Level = LogLevel.Debug,
        Message = "WebSocket Close to {RemoteAddress} could not be sent: {Detail}")]
    public static partial void CloseFailed(ILogger logger, string remoteAddress, string detail);

    [LoggerMessage(EventId = AcceptedId, EventName = "WebSocketAccepted", Level = LogLevel.Debug,
        Message = "MQTT over WebSocket connection {ConnectionId} accepted from {RemoteAddress} (subprotocol {SubProtocol})")]
    public static partial void Accepted(ILogger logger, string connectionId, string remoteAddress, string subProtocol);
}
