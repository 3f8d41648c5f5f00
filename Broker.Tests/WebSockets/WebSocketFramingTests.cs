using System.Net.Security;
using System.Net.WebSockets;
using System.Text;
using FluentAssertions;
using Microsoft.Extensions.DependencyInjection;
using OmniBroker.Auth;
using OmniBroker.Mqtt.Engine;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.WebSockets;

/// <summary>MQTT framed in WebSocket messages (MQTT 5.0 §6), hostile frames, and the Close that mirrors the MQTT end.</summary>
public sealed class WebSocketFramingTests : IAsyncLifetime
{
    private TestBroker _broker = null!;
    private DevDevice _sensor = null!;

    public async Task InitializeAsync()
    {
        _broker = await TestBroker.StartAsync();
        _sensor = DevDevice.Of(_broker, "sensor-001");
    }

    public async Task DisposeAsync()
    {
        _sensor.Dispose();
        await _broker.DisposeAsync();
    }

    [Fact]
    public async Task Wss_PacketSplitAcrossMessagesAndSeveralPacketsInOne_DecodedAsOnTcp()
    {
        await using var client = await WebSocketMqttClient.ConnectAsync(_broker.WebSocketUrl(), _sensor);
        client.Socket.SubProtocol.Should().Be("mqtt", "[MQTT-6.0.0-4]");

        // [MQTT-6.0.0-2]: CONNECT in three messages, the first holding only the fixed header's first byte.
        var connect = WebSocketMqttClient.Encode(RawMqttClient.Connect("sensor-001"), MqttProtocolVersion.V500);
        await client.SendMessageAsync(connect.AsMemory(0, 1));
        await client.SendMessageAsync(connect.AsMemory(1, 5));
        await client.SendMessageAsync(connect.AsMemory(6));
        (await client.ExpectAsync<ConnAckPacket>()).ReasonCode.Should().Be(MqttReasonCode.Success);

        // SUBSCRIBE, PINGREQ and half of a PUBLISH in one message, the rest of the PUBLISH in the next.
        var subscribe = new SubscribePacket { PacketId = 7 };
        subscribe.Subscriptions.Add(new TopicSubscription("devices/sensor-001/commands/#", new SubscriptionOptions(MqttQos.AtLeastOnce)));
        var publish = WebSocketMqttClient.Encode(RawMqttClient.Publish("devices/sensor-001/telemetry", "{\"t\":21.5}", MqttQos.AtLeastOnce, packetId: 9), MqttProtocolVersion.V500);
        var batch = WebSocketMqttClient.Encode(subscribe, MqttProtocolVersion.V500)
            .Concat(WebSocketMqttClient.Encode(PingReqPacket.Instance, MqttProtocolVersion.V500))
            .Concat(publish.Take(publish.Length / 2))
            .ToArray();
        await client.SendMessageAsync(batch);
        (await client.ExpectAsync<SubAckPacket>()).PacketId.Should().Be(7);
        await client.ExpectAsync<PingRespPacket>();
        await client.SendMessageAsync(publish.AsMemory(publish.Length / 2));
        var ack = await client.ExpectAsync<PubAckPacket>();
        ack.PacketId.Should().Be(9);
        ((byte)ack.ReasonCode).Should().BeLessThan(0x80, "the policy lets sensor-001 publish its telemetry (0x10: no subscriber yet)");
    }

    [Fact]
    public async Task Wss_TextMessage_ClosedWith1003AndBrokerKeepsServing()
    {
        await using (var ssl = await OpenTlsAsync())
        {
            (await RawWebSocket.UpgradeAsync(ssl)).Should().StartWith("HTTP/1.1 101").And.Contain("Sec-WebSocket-Protocol: mqtt");
            await ssl.WriteAsync(RawWebSocket.Frame(RawWebSocket.Binary, WebSocketMqttClient.Encode(RawMqttClient.Connect("sensor-001"), MqttProtocolVersion.V500)));
            var connAck = await RawWebSocket.ReadFrameAsync(ssl);
            connAck!.Value.Payload[0].Should().Be(0x20, "CONNACK");

            await ssl.WriteAsync(RawWebSocket.Frame(RawWebSocket.Text, Encoding.UTF8.GetBytes("{\"hello\":1}")));
            var (status, _) = await RawWebSocket.ReadUntilCloseAsync(ssl);
            status.Should().Be((ushort)WebSocketCloseStatus.InvalidMessageType, "[MQTT-6.0.0-1]: text frames close the connection");
            await ssl.WriteAsync(RawWebSocket.CloseFrame(1000));
            (await RawWebSocket.ServerClosesAsync(ssl)).Should().BeTrue();
        }

        _broker.Logs.WithEventId(6102).Should().ContainSingle();
        await AssertStillServingAsync();
    }

    public static TheoryData<string, byte[]> GarbageFrames => new()
    {
        { "reserved opcode 0xB", RawWebSocket.Frame(0xB, [1, 2, 3]) },
        { "RSV1 without an extension", RawWebSocket.Frame(RawWebSocket.Binary, [0xC0, 0x00], reservedBits: 0b100) },
        { "continuation without a start", RawWebSocket.Frame(RawWebSocket.Continuation, [0xC0, 0x00]) },
        { "fragmented control frame", RawWebSocket.Frame(0x9, [1], fin: false) },
        { "random bytes", [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] },
    };

    [Theory]
    [MemberData(nameof(GarbageFrames))]
    public async Task Wss_MalformedFrame_ClosedWithProtocolErrorAndBrokerKeepsServing(string description, byte[] frame)
    {
        await using (var ssl = await OpenTlsAsync())
        {
            (await RawWebSocket.UpgradeAsync(ssl)).Should().StartWith("HTTP/1.1 101");
            await ssl.WriteAsync(RawWebSocket.Frame(RawWebSocket.Binary, WebSocketMqttClient.Encode(RawMqttClient.Connect("sensor-001"), MqttProtocolVersion.V500)));
            (await RawWebSocket.ReadFrameAsync(ssl))!.Value.Payload[0].Should().Be(0x20, "CONNACK");

            await ssl.WriteAsync(frame);
            ushort status;
            try
            {
                (status, _) = await RawWebSocket.ReadUntilCloseAsync(ssl);
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException)
            {
                throw new InvalidOperationException($"no Close after {description}; log:\n{string.Join("\n", _broker.Logs.Entries.Where(e => e.EventId.Id >= 1000))}", ex);
            }
            status.Should().Be((ushort)WebSocketCloseStatus.ProtocolError, description);
            (await RawWebSocket.ServerClosesAsync(ssl)).Should().BeTrue("the broker ends the TCP connection after the Close");
        }

        (await _broker.Logs.WaitForAsync(e => e.EventId.Id == 6103)).Level.Should().Be(Microsoft.Extensions.Logging.LogLevel.Warning);
        // The MQTT session ended as a network failure: the client is gone from the engine.
        await WaitUntilAsync(() => _broker.App.Services.GetRequiredService<MqttBroker>().GetConnectedClients().Count == 0);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task Wss_UpgradeWithoutMqttSubprotocol_RefusedWith400()
    {
        await using var ssl = await OpenTlsAsync();

        var response = await RawWebSocket.UpgradeAsync(ssl, subProtocol: null);

        response.Should().StartWith("HTTP/1.1 400");
        (await _broker.Logs.WaitForAsync(e => e.EventId.Id == 6101)).Message.Should().Contain("subprotocol 'mqtt' must be offered");
    }

    [Theory]
    [InlineData("/healthz")]
    [InlineData("/api/clients")]
    [InlineData("/metrics")]
    [InlineData("/mqtt/")]
    public async Task Wss_OtherPaths_NotFoundAndNothingOfTheHttpListenerServed(string path)
    {
        await using var ssl = await OpenTlsAsync();

        var response = await RawWebSocket.UpgradeAsync(ssl, path);

        response.Should().StartWith("HTTP/1.1 404");
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V500)]
    [InlineData(MqttProtocolVersion.V311)]
    public async Task Wss_ConnectRefusedByPolicy_SameConnAckAsTcpAndClosedWithPolicyViolation(MqttProtocolVersion version)
    {
        // Sensors must use their CN as client id (policies/sensors.yaml): the same refusal on both listeners.
        await using var tcp = await StreamMqttClient.ConnectTlsAsync(_broker.MqttPort, _sensor, version);
        await tcp.SendAsync(RawMqttClient.Connect("sensor-002", version));
        var tcpConnAck = await tcp.ExpectAsync<ConnAckPacket>();

        await using var wss = await WebSocketMqttClient.ConnectAsync(_broker.WebSocketUrl(), _sensor, version);
        await wss.SendAsync(RawMqttClient.Connect("sensor-002", version));
        var wssConnAck = await wss.ExpectAsync<ConnAckPacket>();
        await wss.WaitForCloseAsync();

        tcpConnAck.ReasonCode.Should().Be(MqttReasonCode.NotAuthorized);
        wssConnAck.ReasonCode.Should().Be(tcpConnAck.ReasonCode);
        wss.Socket.CloseStatus.Should().Be(WebSocketCloseStatus.PolicyViolation);
        wss.Socket.CloseStatusDescription.Should().StartWith("MQTT CONNACK");
    }

    [Fact]
    public async Task Wss_ClientDisconnect_NormalClosure()
    {
        await using var wss = await WebSocketMqttClient.ConnectAsync(_broker.WebSocketUrl(), _sensor);
        await wss.SendAsync(RawMqttClient.Connect("sensor-001"));
        await wss.ExpectAsync<ConnAckPacket>();

        await wss.SendAsync(new DisconnectPacket { ReasonCode = MqttReasonCode.Success });

        (await wss.WaitForCloseAsync()).Should().BeEmpty();
        wss.Socket.CloseStatus.Should().Be(WebSocketCloseStatus.NormalClosure);
    }

    [Fact]
    public async Task Wss_MalformedMqttPacket_DisconnectMirroredAsProtocolError()
    {
        await using var wss = await WebSocketMqttClient.ConnectAsync(_broker.WebSocketUrl(), _sensor);
        await wss.SendAsync(RawMqttClient.Connect("sensor-001"));
        await wss.ExpectAsync<ConnAckPacket>();

        // Packet type 0 is reserved (5.0 §2.1.2).
        await wss.SendMessageAsync(new byte[] { 0x00, 0x00 });

        var packets = await wss.WaitForCloseAsync();
        var disconnect = packets.Should().ContainSingle().Which.Should().BeOfType<DisconnectPacket>().Subject;
        ((byte)disconnect.ReasonCode).Should().BeGreaterThanOrEqualTo(0x80);
        wss.Socket.CloseStatus.Should().Be(WebSocketCloseStatus.ProtocolError);
        wss.Socket.CloseStatusDescription.Should().Contain(disconnect.ReasonCode.ToString());
    }

    [Fact]
    public async Task Wss_IdentityRevokedWhileConnected_DisconnectAdministrativeActionAndPolicyViolation()
    {
        await using var wss = await WebSocketMqttClient.ConnectAsync(_broker.WebSocketUrl(), _sensor);
        await wss.SendAsync(RawMqttClient.Connect("sensor-001"));
        await wss.ExpectAsync<ConnAckPacket>();

        // What the revocation monitor does on a new CRL: the wss identity is registered like a TCP one.
        var identity = _broker.App.Services.GetRequiredService<IConnectedIdentityRegistry>().Snapshot()
            .Should().ContainSingle(i => i.Chain[0].Thumbprint == _sensor.Certificate.Thumbprint).Subject;
        identity.Revoke("revoked");

        var packets = await wss.WaitForCloseAsync();
        packets.OfType<DisconnectPacket>().Should().ContainSingle().Which.ReasonCode.Should().Be(MqttReasonCode.AdministrativeAction);
        wss.Socket.CloseStatus.Should().Be(WebSocketCloseStatus.PolicyViolation);
    }

    [Fact]
    public async Task Wss_BrokerStops_DisconnectServerShuttingDownAndEndpointUnavailable()
    {
        var wss = await WebSocketMqttClient.ConnectAsync(_broker.WebSocketUrl(), _sensor);
        try
        {
            await wss.SendAsync(RawMqttClient.Connect("sensor-001"));
            await wss.ExpectAsync<ConnAckPacket>();

            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            var stopping = _broker.App.StopAsync(stop.Token);
            var packets = await wss.WaitForCloseAsync();
            await stopping;

            packets.OfType<DisconnectPacket>().Should().ContainSingle().Which.ReasonCode.Should().Be(MqttReasonCode.ServerShuttingDown);
            wss.Socket.CloseStatus.Should().Be(WebSocketCloseStatus.EndpointUnavailable);
        }
        finally
        {
            await wss.DisposeAsync();
        }
    }

    [Fact]
    public async Task Wss_ClientWithoutCertificate_RefusedInTheTlsHandshakeLikeTcp()
    {
        using var client = new ClientWebSocket();
        client.Options.AddSubProtocol("mqtt");
        using var handler = new System.Net.Http.SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, chain, _) => WebSocketMqttClient.ChainsTo(certificate, chain, _sensor.Root),
            },
        };
        using var invoker = new System.Net.Http.HttpMessageInvoker(handler);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        var connect = () => client.ConnectAsync(_broker.WebSocketUrl(), invoker, timeout.Token);

        await connect.Should().ThrowAsync<WebSocketException>();
        var refusal = await _broker.Logs.WaitForAsync(e => e.EventId.Id == 2001);
        refusal.Value("Reason").Should().Be("no_cert");
        // The HTTP handler under ClientWebSocket retries a failed connection: every attempt is refused the same way.
        var wssRefusals = _broker.Logs.WithEventId(2001).Count;
        var tcp = await TlsTestClient.ConnectAsync(_broker.MqttPort, _sensor.Root, clientCertificate: null);
        tcp.Outcome.Should().NotBe(TlsClientOutcome.ConnAck);
        await WaitUntilAsync(() => _broker.Logs.WithEventId(2001).Count > wssRefusals);
        _broker.Logs.WithEventId(2001).Select(e => e.Value("Reason")).Should().OnlyContain(r => r == "no_cert");
    }

    private async Task<SslStream> OpenTlsAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return await TlsTestClient.HandshakeAsync(_broker.WebSocketPort(), _sensor.Root, _sensor.Certificate, _sensor.Chain, cancellationToken: timeout.Token);
    }

    private async Task AssertStillServingAsync()
    {
        await using var other = await WebSocketMqttClient.ConnectAsync(_broker.WebSocketUrl(), _sensor);
        await other.SendAsync(RawMqttClient.Connect("sensor-001"));
        (await other.ExpectAsync<ConnAckPacket>()).ReasonCode.Should().Be(MqttReasonCode.Success);
    }

    private async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("condition not met within 10 s; log:\n" + string.Join("\n", _broker.Logs.Entries));
            }
            await Task.Delay(20);
        }
    }
}
