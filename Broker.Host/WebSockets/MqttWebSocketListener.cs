using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OmniBroker.Auth;
using OmniBroker.Host.Configuration;
using OmniBroker.Mqtt.Engine;

namespace OmniBroker.Host.WebSockets;

/// <summary>
/// MQTT over secure WebSockets (MQTT 3.1.1 §6, 5.0 §6). A second Kestrel endpoint carries the very same connection
/// middleware as the MQTT over TLS listener (<see cref="ClientCertificateListenOptionsExtensions.UseClientCertificateAuthentication"/>
/// with the same <see cref="MutualTlsOptions"/>): one code path decides identity, revocation and refusal logging for
/// both transports. HTTP/1.1 then runs on it, and requests arriving on it are branched off the application pipeline
/// before anything else (health, metrics, admin API stay on the HTTP listener).
/// </summary>
internal static class MqttWebSocketListener
{
    /// <summary>Adds the wss endpoint. Call inside <c>ConfigureKestrel</c> with the TLS listener's options object.</summary>
    /// <param name="bound">receives the listen options (to resolve a port 0 after start).</param>
    public static void ListenMqttWebSockets(this KestrelServerOptions kestrel, WebSocketSettings settings, MutualTlsOptions tls, Action<ListenOptions>? bound = null)
    {
        ArgumentNullException.ThrowIfNull(kestrel);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(tls);
        if (!settings.Enabled)
        {
            return;
        }
        kestrel.Listen(settings.Address, settings.Port, listen =>
        {
            bound?.Invoke(listen);
            // No ALPN is offered by the certificate handshake callback; WebSockets over HTTP/2 (RFC 8441) is not needed.
            listen.Protocols = HttpProtocols.Http1;
            // The same cap as the MQTT over TLS listener, first (see ConnectionCap).
            listen.Use(listen.ApplicationServices.GetRequiredService<Connections.ConnectionCap>().Use);
            listen.Use(next => context =>
            {
                context.Features.Set(MqttWebSocketListenerFeature.Instance);
                return next(context);
            });
            // Kestrel's TLS engine: its HTTP layer needs the features Kestrel's HTTPS middleware publishes.
            listen.UseClientCertificateAuthentication(tls, TlsEngine.Kestrel);
        });
    }

    /// <summary>Branches requests of the wss endpoint to <see cref="MqttWebSocketHandler"/>. Call before any other
    /// middleware so that nothing mapped for the HTTP listener answers on the WebSocket port.</summary>
    public static WebApplication UseMqttWebSockets(this WebApplication app, BrokerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentNullException.ThrowIfNull(settings);
        var webSockets = settings.WebSockets;
        if (!webSockets.Enabled)
        {
            return app;
        }

        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("OmniBroker.Host.WebSockets");
        var handler = new MqttWebSocketHandler(webSockets, app.Services.GetRequiredService<MqttConnectionHandler>(),
            settings.Mqtt.MaximumPacketSize, app.Lifetime, logger);
        app.MapWhen(static context => context.Features.Get<MqttWebSocketListenerFeature>() is not null, branch =>
        {
            branch.UseWebSockets();
            branch.Run(handler.HandleAsync);
        });

        var endpoints = app.Services.GetRequiredService<BrokerEndpoints>();
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            if (endpoints.WebSocketEndPoint is { } endPoint)
            {
                WebSocketLog.Listening(logger, endPoint, webSockets.Path, webSockets.SubProtocol);
            }
        });
        return app;
    }
}

/// <summary>Marks connections accepted by the WebSocket listener (a connection feature, visible to requests).</summary>
internal sealed class MqttWebSocketListenerFeature
{
    public static readonly MqttWebSocketListenerFeature Instance = new();

    private MqttWebSocketListenerFeature()
    {
    }
}
