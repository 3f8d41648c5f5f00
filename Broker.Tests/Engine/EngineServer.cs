using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Engine;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.Support;

namespace OmniBroker.Tests.Engine;

/// <summary>The real <see cref="MqttConnectionHandler"/> on a plain-TCP Kestrel listener on 127.0.0.1 with a free port.</summary>
internal sealed class EngineServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private EngineServer(WebApplication app, CapturingLoggerProvider logs, int port)
    {
        _app = app;
        Logs = logs;
        Port = port;
    }

    public int Port { get; }

    public CapturingLoggerProvider Logs { get; }

    public MqttBroker Broker => _app.Services.GetRequiredService<MqttBroker>();

    /// <param name="store">when set, persistent sessions are durable in it (the caller disposes it).</param>
    /// <param name="identity">when set, every connection gets this identity feature (as the TLS middleware would).</param>
    public static async Task<EngineServer> StartAsync(Action<MqttBrokerOptions>? configure = null, IMqttAuthorizer? authorizer = null,
        TimeProvider? timeProvider = null, Func<IClientIdentityFeature>? identity = null, OmniBroker.Mqtt.Abstractions.ISessionStore? store = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        var logs = new CapturingLoggerProvider();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.Logging.AddProvider(logs);
        if (authorizer is not null)
        {
            builder.Services.AddSingleton(authorizer);
        }
        if (store is not null)
        {
            builder.Services.AddSingleton(store);
        }
        if (timeProvider is not null)
        {
            builder.Services.AddSingleton(timeProvider);
        }
        builder.Services.AddMqttBroker(options =>
        {
            options.RequireClientIdentity = false;
            configure?.Invoke(options);
        });
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
        {
            if (identity is not null)
            {
                listen.Use(next => context =>
                {
                    context.Features.Set(identity());
                    return next(context);
                });
            }
            listen.UseConnectionHandler<MqttConnectionHandler>();
        }));

        var app = builder.Build();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await app.StartAsync(cts.Token);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        var port = new Uri(address.Replace("0.0.0.0", "127.0.0.1")).Port;
        return new EngineServer(app, logs, port);
    }

    /// <summary>Connects and asserts a successful CONNACK.</summary>
    public async Task<RawMqttClient> ConnectAsync(string clientId, MqttProtocolVersion version = MqttProtocolVersion.V500, bool cleanStart = true,
        ushort keepAlive = 60, uint? sessionExpiry = null, WillMessage? will = null, MqttProperties? properties = null)
    {
        var (client, connAck) = await RawMqttClient.ConnectAsync(Port,
            RawMqttClient.Connect(clientId, version, cleanStart, keepAlive, sessionExpiry, will, properties));
        if (connAck.ReasonCode != MqttReasonCode.Success)
        {
            await client.DisposeAsync();
            throw new InvalidOperationException($"CONNACK 0x{(byte)connAck.ReasonCode:X2} for {clientId}");
        }
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _app.StopAsync(cts.Token);
        await _app.DisposeAsync();
    }
}
