using System.Net;
using Microsoft.Extensions.Logging;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

/// <summary>Engine log messages. Event ids 1000-1999 are stable: dashboards and alerts key on them.</summary>
internal static partial class EngineLog
{
    // 1000-1099: connection lifecycle
    [LoggerMessage(1000, LogLevel.Information, "MQTT client {ClientId} connected from {RemoteEndPoint} ({ProtocolVersion}, clean start {CleanStart}, session present {SessionPresent}, keep alive {KeepAlive}s)")]
    public static partial void ConnectAccepted(this ILogger logger, string clientId, EndPoint? remoteEndPoint, MqttProtocolVersion protocolVersion,
        bool cleanStart, bool sessionPresent, int keepAlive);

    [LoggerMessage(1001, LogLevel.Warning, "MQTT CONNECT from {RemoteEndPoint} (client {ClientId}) refused with {ReasonCode}: {Reason}")]
    public static partial void ConnectRefused(this ILogger logger, EndPoint? remoteEndPoint, string? clientId, MqttReasonCode reasonCode, string reason);

    [LoggerMessage(1002, LogLevel.Warning, "MQTT protocol violation by {RemoteEndPoint} (client {ClientId}), closing with {ReasonCode}: {Reason}")]
    public static partial void ProtocolViolation(this ILogger logger, EndPoint? remoteEndPoint, string? clientId, MqttReasonCode reasonCode, string reason);

    [LoggerMessage(1003, LogLevel.Information, "MQTT client {ClientId} taken over by a new connection from {RemoteEndPoint}")]
    public static partial void SessionTakenOver(this ILogger logger, string clientId, EndPoint? remoteEndPoint);

    [LoggerMessage(1004, LogLevel.Debug, "MQTT client {ClientId} disconnected ({Outcome})")]
    public static partial void ConnectionClosed(this ILogger logger, string? clientId, string outcome);

    [LoggerMessage(1005, LogLevel.Information, "MQTT client {ClientId} sent nothing for {Seconds}s (keep alive {KeepAlive}s), closing")]
    public static partial void KeepAliveTimeout(this ILogger logger, string? clientId, double seconds, int keepAlive);

    [LoggerMessage(1006, LogLevel.Information, "MQTT connection from {RemoteEndPoint} sent no CONNECT within {Timeout}, closing")]
    public static partial void ConnectTimeout(this ILogger logger, EndPoint? remoteEndPoint, TimeSpan timeout);

    [LoggerMessage(1007, LogLevel.Warning, "MQTT client {ClientId}: identity no longer valid ({Reason}), disconnecting and discarding the session")]
    public static partial void IdentityRevoked(this ILogger logger, string clientId, string? reason);

    [LoggerMessage(1008, LogLevel.Information, "MQTT client {ClientId} disconnected by the server with {ReasonCode}")]
    public static partial void DisconnectedByServer(this ILogger logger, string clientId, MqttReasonCode reasonCode);

    [LoggerMessage(1009, LogLevel.Debug, "MQTT connection from {RemoteEndPoint} (client {ClientId}) failed: {Message}")]
    public static partial void TransportError(this ILogger logger, EndPoint? remoteEndPoint, string? clientId, string message);

    [LoggerMessage(1040, LogLevel.Information, "MQTT connection from {RemoteEndPoint} (client {ClientId}) left a packet incomplete for {Timeout}, closing")]
    public static partial void IncompletePacketTimeout(this ILogger logger, EndPoint? remoteEndPoint, string? clientId, TimeSpan timeout);

    // 1100-1199: authorization (1100 and 1101 were per-request denial lines, replaced by the aggregated 1106)
    [LoggerMessage(1102, LogLevel.Warning, "MQTT client {ClientId} lost its subscription {Filter} after a policy change")]
    public static partial void SubscriptionRevoked(this ILogger logger, string clientId, string filter);

    [LoggerMessage(1103, LogLevel.Warning, "MQTT client {ClientId} is no longer authorized after a policy change ({Reason}), disconnecting")]
    public static partial void ReauthorizationDenied(this ILogger logger, string clientId, string reason);

    [LoggerMessage(1104, LogLevel.Information, "Will of MQTT client {ClientId} on {Topic} not published: not authorized")]
    public static partial void WillDenied(this ILogger logger, string clientId, string topic);

    [LoggerMessage(1105, LogLevel.Information, "Policy changed: re-authorized {Clients} connected clients, {Disconnected} disconnected, {Removed} subscriptions removed")]
    public static partial void PolicyReapplied(this ILogger logger, int clients, int disconnected, int removed);

    // 1106 (requests denied, aggregated) is written by Diagnostics/AggregatedLog.

    // 1200-1299: drops (1200-1204 and 1206 were per-message lines, replaced by the aggregated 1207)
    [LoggerMessage(1205, LogLevel.Warning, "MQTT session {ClientId} ended with {Qos12} undelivered QoS 1/2 and {Qos0} QoS 0 messages")]
    public static partial void SessionEndedWithMessages(this ILogger logger, string clientId, int qos12, int qos0);

    // 1207 (messages dropped, aggregated) is written by Diagnostics/AggregatedLog.

    [LoggerMessage(1208, LogLevel.Warning, "MQTT client {ClientId} declared slow: its queue stayed full for {Timeout}; policy {Policy}")]
    public static partial void SlowSubscriber(this ILogger logger, string clientId, TimeSpan timeout, SlowSubscriberPolicy policy);

    // 1300-1399: sessions, wills, state
    [LoggerMessage(1300, LogLevel.Information, "MQTT session {ClientId} expired")]
    public static partial void SessionExpired(this ILogger logger, string clientId);

    [LoggerMessage(1301, LogLevel.Debug, "Will of MQTT client {ClientId} published on {Topic}")]
    public static partial void WillPublished(this ILogger logger, string clientId, string topic);

    [LoggerMessage(1302, LogLevel.Debug, "MQTT client {ClientId} acknowledged unknown packet identifier {PacketId} ({PacketType})")]
    public static partial void UnknownPacketId(this ILogger logger, string clientId, ushort packetId, MqttPacketType packetType);

    [LoggerMessage(1303, LogLevel.Information, "MQTT broker stopping: disconnecting {Clients} clients")]
    public static partial void ShuttingDown(this ILogger logger, int clients);

    // 1470-1479: durable state (restore, store failures); 1450-1469: Broker.Storage
    [LoggerMessage(1470, LogLevel.Information, "MQTT state restored in {ElapsedMs} ms: {Sessions} sessions, {Subscriptions} subscriptions, {Messages} queued or inflight messages, {Retained} retained messages; {Expired} sessions expired while the broker was down, {Discarded} discarded by re-authorization")]
    public static partial void StateRestored(this ILogger logger, long elapsedMs, int sessions, int subscriptions, int messages, int retained, int expired, int discarded);

    [LoggerMessage(1471, LogLevel.Warning, "Restored MQTT session {ClientId} discarded: {Reason}")]
    public static partial void RestoredSessionDiscarded(this ILogger logger, string clientId, string reason);

    [LoggerMessage(1472, LogLevel.Warning, "MQTT client {ClientId}: QoS {Qos} PUBLISH on {Topic} refused (0x97): the state store cannot write")]
    public static partial void PublishRefusedStoreUnavailable(this ILogger logger, string clientId, MqttQos qos, string topic);
}
