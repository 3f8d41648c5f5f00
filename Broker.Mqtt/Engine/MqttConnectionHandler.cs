using Microsoft.AspNetCore.Connections;

namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// Kestrel entry point for MQTT: <c>listenOptions.UseConnectionHandler&lt;MqttConnectionHandler&gt;()</c>, after
/// the TLS and certificate-authentication middleware that publishes IClientIdentityFeature.
/// Nagle is already off: Kestrel's socket transport sets NoDelay by default (SocketTransportOptions.NoDelay = true),
/// so CONNACK and acknowledgements leave in one segment without delay.
/// </summary>
public sealed class MqttConnectionHandler : ConnectionHandler
{
    private readonly MqttBroker _broker;

    public MqttConnectionHandler(MqttBroker broker)
    {
        ArgumentNullException.ThrowIfNull(broker);
        _broker = broker;
    }

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        var mqtt = new MqttConnection(_broker, connection);
        _broker.Register(mqtt);
        try
        {
            await mqtt.RunAsync().ConfigureAwait(false);
        }
        finally
        {
            _broker.Unregister(mqtt);
        }
    }
}
