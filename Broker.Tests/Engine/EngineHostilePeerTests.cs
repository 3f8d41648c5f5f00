using FluentAssertions;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.Support;
using Xunit;
using static OmniBroker.Tests.Engine.EngineTestHelpers;

namespace OmniBroker.Tests.Engine;

/// <summary>
/// Peers that break the protocol with raw bytes: each closes only its own connection, with the reason code
/// (5.0 DISCONNECT) where one is due, while a bystander pair keeps exchanging messages.
/// </summary>
public sealed class EngineHostilePeerTests : IAsyncLifetime
{
    private EngineServer _server = null!;
    private RawMqttClient _bystanderSubscriber = null!;
    private RawMqttClient _bystanderPublisher = null!;

    public async Task InitializeAsync()
    {
        _server = await EngineServer.StartAsync(o => o.MaximumPacketSize = 64 * 1024);
        _bystanderSubscriber = await _server.ConnectAsync("bystander-sub");
        await _bystanderSubscriber.SubscribeAsync("bystander/#", MqttQos.AtLeastOnce);
        _bystanderPublisher = await _server.ConnectAsync("bystander-pub");
    }

    public async Task DisposeAsync()
    {
        await _bystanderSubscriber.DisposeAsync();
        await _bystanderPublisher.DisposeAsync();
        await _server.DisposeAsync();
    }

    private async Task AssertBystandersStillWorkAsync()
    {
        var ack = await _bystanderPublisher.PublishAsync("bystander/x", "still here", MqttQos.AtLeastOnce);
        ack!.ReasonCode.Should().Be(MqttReasonCode.Success);
        var received = await _bystanderSubscriber.ExpectPublishAsync();
        RawMqttClient.PayloadText(received).Should().Be("still here");
        await AckAsync(_bystanderSubscriber, received);
    }

    private async Task<IReadOnlyList<MqttPacket>> SendAndWaitForCloseAsync(MqttProtocolVersion version, byte[] bytes, bool connectFirst = true)
    {
        RawMqttClient client;
        if (connectFirst)
        {
            client = await _server.ConnectAsync("hostile-" + Guid.NewGuid().ToString("N")[..6], version);
        }
        else
        {
            client = await RawMqttClient.OpenAsync(_server.Port, version);
        }
        await using var _ = client;
        await client.SendRawAsync(bytes);
        return await client.WaitForCloseAsync();
    }

    private async Task AssertViolationAsync(MqttProtocolVersion version, byte[] bytes, MqttReasonCode expected, bool connectFirst = true)
    {
        var beforeClose = await SendAndWaitForCloseAsync(version, bytes, connectFirst);
        if (version == MqttProtocolVersion.V500 && connectFirst)
        {
            beforeClose.Should().ContainSingle().Which.Should().BeOfType<DisconnectPacket>().Which.ReasonCode.Should().Be(expected);
        }
        else
        {
            beforeClose.Should().BeEmpty("3.1.1 (and anything before CONNACK) is closed without a DISCONNECT");
        }
        (await _server.Logs.WaitForAsync(l => l.EventId.Id == 1002 && l.Value("ReasonCode") == expected.ToString()))
            .Should().NotBeNull();
        await AssertBystandersStillWorkAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task PublishBeforeConnect_ClosedWithoutAnswer(MqttProtocolVersion version)
    {
        // PUBLISH QoS 0 "a/b" payload "x" as the first packet [MQTT-3.1.0-1].
        await AssertViolationAsync(version, Bytes(0x30, 0x06, 0x00, 0x03, (byte)'a', (byte)'/', (byte)'b', (byte)'x'),
            MqttReasonCode.ProtocolError, connectFirst: false);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task SecondConnect_ProtocolError(MqttProtocolVersion version)
    {
        var bytes = new System.Buffers.ArrayBufferWriter<byte>();
        OmniBroker.Mqtt.Codec.MqttPacketWriter.Write(bytes, RawMqttClient.Connect("again", version), version);
        await AssertViolationAsync(version, bytes.WrittenSpan.ToArray(), MqttReasonCode.ProtocolError);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task WildcardInPublishTopic_TopicNameInvalid(MqttProtocolVersion version)
    {
        // PUBLISH QoS 0 "a/+" (5.0 adds an empty property length), payload "x".
        var bytes = version == MqttProtocolVersion.V500
            ? Bytes(0x30, 0x07, 0x00, 0x03, (byte)'a', (byte)'/', (byte)'+', 0x00, (byte)'x')
            : Bytes(0x30, 0x06, 0x00, 0x03, (byte)'a', (byte)'/', (byte)'+', (byte)'x');
        await AssertViolationAsync(version, bytes, MqttReasonCode.TopicNameInvalid);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task OversizeRemainingLength_PacketTooLargeBeforeTheBodyArrives(MqttProtocolVersion version)
    {
        // Remaining Length 268,435,455 announced, no body sent: refused from the fixed header alone.
        await AssertViolationAsync(version, Bytes(0x30, 0xFF, 0xFF, 0xFF, 0x7F), MqttReasonCode.PacketTooLarge);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task ReservedFixedHeaderFlags_MalformedPacket(MqttProtocolVersion version)
    {
        // SUBSCRIBE must have flags 0010; 0000 is malformed [MQTT-3.8.1-1].
        var body = version == MqttProtocolVersion.V500
            ? Bytes(0x00, 0x01, 0x00, 0x00, 0x01, (byte)'t', 0x00)
            : Bytes(0x00, 0x01, 0x00, 0x01, (byte)'t', 0x00);
        await AssertViolationAsync(version, [0x80, (byte)body.Length, .. body], MqttReasonCode.MalformedPacket);
    }

    [Fact]
    public async Task ServerOnlyPacket_FromClient_ProtocolError()
    {
        // CONNACK sent by a client.
        await AssertViolationAsync(MqttProtocolVersion.V500, Bytes(0x20, 0x03, 0x00, 0x00, 0x00), MqttReasonCode.ProtocolError);
    }

    [Fact]
    public async Task NoLocalOnSharedSubscription_ProtocolError()
    {
        // SUBSCRIBE id 1, no properties, "$share/g/t" with No Local (0x04) [MQTT-3.8.3-4].
        byte[] filter = [.. "$share/g/t"u8];
        byte[] body = [0x00, 0x01, 0x00, 0x00, (byte)filter.Length, .. filter, 0x04];
        await AssertViolationAsync(MqttProtocolVersion.V500, [0x82, (byte)body.Length, .. body], MqttReasonCode.ProtocolError);
    }

    [Fact]
    public async Task ReceiveMaximumExceeded_Disconnect0x93()
    {
        await using var server = await EngineServer.StartAsync(o => o.ReceiveMaximum = 2);
        await using var client = await server.ConnectAsync("greedy");

        for (ushort id = 1; id <= 2; id++)
        {
            await client.SendAsync(RawMqttClient.Publish("rm/x", "x", MqttQos.ExactlyOnce, packetId: id));
            await client.ExpectAckAsync(MqttPacketType.PubRec, id);
        }
        await client.SendAsync(RawMqttClient.Publish("rm/x", "x", MqttQos.ExactlyOnce, packetId: 3));

        (await client.WaitForCloseAsync()).Should().ContainSingle().Which.Should().BeOfType<DisconnectPacket>()
            .Which.ReasonCode.Should().Be(MqttReasonCode.ReceiveMaximumExceeded);
    }

    [Fact]
    public async Task UnsupportedProtocolLevel_ConnAck0x01ThenClose()
    {
        await using var client = await RawMqttClient.OpenAsync(_server.Port, MqttProtocolVersion.V311);
        // CONNECT "MQTT" level 6, clean start, keep alive 60, client id "x".
        await client.SendRawAsync(Bytes(0x10, 0x0D, 0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 0x06, 0x02, 0x00, 0x3C, 0x00, 0x01, (byte)'x'));

        var packets = await client.WaitForCloseAsync();

        packets.Should().ContainSingle().Which.Should().BeOfType<ConnAckPacket>()
            .Which.ReasonCode.Should().Be(MqttReasonCode.UnsupportedProtocolVersion);
        await AssertBystandersStillWorkAsync();
    }

    [Fact]
    public async Task ClosedInsideAPacket_AbnormalCloseWillPublished()
    {
        await _bystanderSubscriber.SubscribeAsync("wills/#", MqttQos.AtLeastOnce);
        var client = await _server.ConnectAsync("half", will: Will("wills/half", "gone"));
        // Half a PUBLISH, then FIN.
        await client.SendRawAsync(Bytes(0x30, 0x10, 0x00, 0x03));
        await client.DisposeAsync();

        RawMqttClient.PayloadText(await _bystanderSubscriber.ExpectPublishAsync()).Should().Be("gone");
    }
}
