using System.Net;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Engine;

namespace OmniBroker.Host.WebSockets;

/// <summary>
/// Terminal request handler of the WebSocket listener: accepts the upgrade on the configured path with the MQTT
/// subprotocol and runs the same <see cref="MqttConnectionHandler"/> as the TLS listener over the WebSocket. Identity
/// was decided before any HTTP byte was read, by the listener's certificate-authentication middleware.
/// </summary>
internal sealed class MqttWebSocketHandler
{
    private readonly WebSocketSettings _settings;
    private readonly MqttConnectionHandler _mqtt;
    private readonly int _maximumPacketSize;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ILogger _logger;

    public MqttWebSocketHandler(WebSocketSettings settings, MqttConnectionHandler mqtt, int maximumPacketSize,
        IHostApplicationLifetime lifetime, ILogger logger)
    {
        _settings = settings;
        _mqtt = mqtt;
        _maximumPacketSize = maximumPacketSize;
        _lifetime = lifetime;
        _logger = logger;
    }

    public async Task HandleAsync(HttpContext context)
    {
        var remote = context.Connection.RemoteIpAddress is { } ip ? new IPEndPoint(ip, context.Connection.RemotePort) : null;
        var remoteText = remote?.ToString() ?? "-";

        if (!string.Equals(context.Request.Path.Value, _settings.Path, StringComparison.Ordinal))
        {
            // Nothing else is served here: health, metrics and the admin API live on the HTTP listener only.
            await RefuseAsync(context, remoteText, StatusCodes.Status404NotFound,
                $"not found: MQTT over WebSockets is served at {_settings.Path} on this port").ConfigureAwait(false);
            return;
        }
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.Headers.Upgrade = "websocket";
            await RefuseAsync(context, remoteText, StatusCodes.Status426UpgradeRequired,
                $"{_settings.Path} accepts only a WebSocket upgrade (GET with Upgrade: websocket, Sec-WebSocket-Protocol: {_settings.SubProtocol})").ConfigureAwait(false);
            return;
        }
        if (!context.WebSockets.WebSocketRequestedProtocols.Contains(_settings.SubProtocol, StringComparer.Ordinal))
        {
            // [MQTT-6.0.0-3]: the client must offer the mqtt subprotocol.
            var offered = context.WebSockets.WebSocketRequestedProtocols;
            await RefuseAsync(context, remoteText, StatusCodes.Status400BadRequest,
                $"the WebSocket subprotocol '{_settings.SubProtocol}' must be offered (Sec-WebSocket-Protocol: {(offered.Count == 0 ? "none" : string.Join(", ", offered))})").ConfigureAwait(false);
            return;
        }
        // Connection features are visible through the request's features: the identity the middleware published.
        var identity = context.Features.Get<IClientIdentityFeature>();
        if (identity is null)
        {
            await RefuseAsync(context, remoteText, StatusCodes.Status403Forbidden, "no validated client certificate on this connection").ConfigureAwait(false);
            return;
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
        {
            // [MQTT-6.0.0-4]: the server selects and returns "mqtt".
            SubProtocol = _settings.SubProtocol,
            DangerousEnableCompression = false,
        }).ConfigureAwait(false);

        var pipe = new WebSocketDuplexPipe(socket, _maximumPacketSize, _logger, remoteText, context.RequestAborted);
        var shutdown = context.Features.Get<IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested ?? CancellationToken.None;
        using var closeRequested = CancellationTokenSource.CreateLinkedTokenSource(_lifetime.ApplicationStopping, shutdown);
        var local = context.Connection.LocalIpAddress is { } localIp ? new IPEndPoint(localIp, context.Connection.LocalPort) : null;
        var connection = new WebSocketConnectionContext(context.Connection.Id, pipe, remote, local, closeRequested.Token, _ => pipe.Abort());
        await using (connection.ConfigureAwait(false))
        {
            connection.Features.Set(identity);
            if (context.Features.Get<ITlsConnectionFeature>() is { } tls)
            {
                connection.Features.Set(tls);
            }
            WebSocketLog.Accepted(_logger, connection.ConnectionId, remoteText, _settings.SubProtocol);
            pipe.Start();
            MqttWebSocketClose? close = null;
            try
            {
                await _mqtt.OnConnectedAsync(connection).ConfigureAwait(false);
            }
            finally
            {
                close = await pipe.CompleteAsync().ConfigureAwait(false);
                connection.MarkClosed();
                WebSocketLog.ConnectionClosed(_logger, connection.ConnectionId, remoteText, close?.Status ?? socket.CloseStatus,
                    close?.Description ?? socket.CloseStatusDescription ?? "");
            }
        }
    }

    private async Task RefuseAsync(HttpContext context, string remote, int statusCode, string reason)
    {
        WebSocketLog.RequestRefused(_logger, remote, statusCode, reason);
        context.Response.StatusCode = statusCode;
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(reason + "\n", context.RequestAborted).ConfigureAwait(false);
    }
}
