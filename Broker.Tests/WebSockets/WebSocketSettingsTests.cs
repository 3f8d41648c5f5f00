using System.Net;
using System.Net.WebSockets;
using FluentAssertions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OmniBroker.Host;
using OmniBroker.Host.Configuration;
using OmniBroker.Host.WebSockets;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.WebSockets;

public sealed class WebSocketSettingsTests : IDisposable
{
    private readonly string _directory = TempDirectory.Create("omnibroker-wss-config");

    public void Dispose() => TempDirectory.Delete(_directory);

    private BrokerSettings Load(params (string Key, string? Value)[] values)
    {
        var settings = values.ToDictionary(v => v.Key, v => v.Value);
        settings.TryAdd("DataDirectory", Path.Combine(_directory, "data"));
        return BrokerSettings.Load(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
    }

    private BrokerConfigurationException LoadFails(params (string Key, string? Value)[] values)
    {
        var act = () => Load(values);
        return act.Should().Throw<BrokerConfigurationException>().Which;
    }

    [Fact]
    public void Load_Defaults_EnabledOn8884AtMqttPathAndAddress()
    {
        var settings = Load(("Mqtt:Address", "127.0.0.1"));

        settings.WebSockets.Should().Be(new WebSocketSettings(true, IPAddress.Loopback, 8884, "/mqtt", "mqtt"));
        settings.ProxyProtocol.Should().BeFalse();
    }

    [Fact]
    public void Load_MqttPortZero_WebSocketPortFollowsToZero()
    {
        Load(("Mqtt:Port", "0")).WebSockets.Port.Should().Be(0, "instances on free ports must not collide on 8884");
        Load(("Mqtt:Port", "0"), ("WebSockets:Port", "9443")).WebSockets.Port.Should().Be(9443);
    }

    [Fact]
    public void Load_AllKeysSet_Read()
    {
        var settings = Load(("WebSockets:Enabled", "false"), ("WebSockets:Address", "::1"), ("WebSockets:Port", "9001"),
            ("WebSockets:Path", "/broker/ws"), ("WebSockets:SubProtocol", "mqttv3.1"), ("Mqtt:ProxyProtocol", "true"));

        settings.WebSockets.Should().Be(new WebSocketSettings(false, IPAddress.IPv6Loopback, 9001, "/broker/ws", "mqttv3.1"));
        settings.ProxyProtocol.Should().BeTrue();
    }

    [Fact]
    public void Load_InvalidValues_EveryKeyNamedAtOnce()
    {
        var error = LoadFails(("WebSockets:Enabled", "maybe"), ("WebSockets:Address", "example.org"), ("WebSockets:Path", "mqtt"),
            ("WebSockets:SubProtocol", "m q t t"), ("Mqtt:ProxyProtocol", "sometimes"), ("WebSockets:Port", "70000"));

        error.Errors.Should().Contain([
            "WebSockets:Enabled: 'maybe' is not true or false",
            "WebSockets:Address: 'example.org' is not an IP address",
            "WebSockets:Port: 70000 is not a valid port (0-65535)",
            "Mqtt:ProxyProtocol: 'sometimes' is not true or false",
        ]);
        error.Errors.Should().Contain(e => e.StartsWith("WebSockets:Path: 'mqtt' must be an absolute path", StringComparison.Ordinal));
        error.Errors.Should().Contain("WebSockets:SubProtocol: 'm q t t' is not a valid WebSocket subprotocol token");
    }

    [Fact]
    public void Load_WebSocketPortEqualsMqttPort_Refused()
    {
        LoadFails(("Mqtt:Port", "8883"), ("WebSockets:Port", "8883")).Errors
            .Should().Contain("WebSockets:Port: 8883 is already the MQTT over TLS port (Mqtt:Port)");
    }

    [Fact]
    public async Task Serve_WebSocketsDisabled_NoListener()
    {
        await using var broker = await TestBroker.StartAsync(settings: new Dictionary<string, string?> { ["WebSockets:Enabled"] = "false" });

        broker.App.Services.GetRequiredService<BrokerEndpoints>().WebSocketEndPoint.Should().BeNull();
        broker.Logs.WithEventId(6100).Should().BeEmpty();
    }

    [Fact]
    public async Task Serve_CustomPathAndSubProtocol_Honoured()
    {
        await using var broker = await TestBroker.StartAsync(settings: new Dictionary<string, string?>
        {
            ["WebSockets:Path"] = "/ws",
            ["WebSockets:SubProtocol"] = "mqttv3.1",
        });
        using var sensor = DevDevice.Of(broker, "sensor-001");

        var listening = await broker.Logs.WaitForAsync(e => e.EventId.Id == 6100);
        listening.Value("Path").Should().Be("/ws");
        await using var client = await WebSocketMqttClient.ConnectAsync(broker.WebSocketUrl("/ws"), sensor, subProtocol: "mqttv3.1");
        client.Socket.SubProtocol.Should().Be("mqttv3.1");
        client.Socket.State.Should().Be(WebSocketState.Open);
    }
}
