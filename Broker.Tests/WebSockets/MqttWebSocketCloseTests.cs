using System.Net.WebSockets;
using FluentAssertions;
using OmniBroker.Fuzz;
using OmniBroker.Host.WebSockets;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.WebSockets;

/// <summary>The packet-boundary tracker behind the mirrored Close, fed the way WebSocket messages cut a stream.</summary>
public sealed class MqttWebSocketCloseTests
{
    private static byte[] Encode(MqttPacket packet, MqttProtocolVersion version = MqttProtocolVersion.V500) => WebSocketMqttClient.Encode(packet, version);

    private static MqttPacketBoundaryTracker Track(byte[] stream, int seed)
    {
        var tracker = new MqttPacketBoundaryTracker();
        tracker.Observe(SegmentedSequence.RandomSegments(stream, seed));
        return tracker;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Observe_ServerDisconnectAfterLargePublish_ReasonFoundWhateverTheSegmentation(int seed)
    {
        var publish = Encode(RawMqttClient.Publish("devices/x/telemetry", new string('p', 300), MqttQos.AtLeastOnce, packetId: 1));
        var stream = publish.Concat(Encode(new DisconnectPacket { ReasonCode = MqttReasonCode.NotAuthorized })).ToArray();

        var close = MqttWebSocketClose.Mirror(Track(stream, seed), new MqttPacketBoundaryTracker());

        close.Status.Should().Be(WebSocketCloseStatus.PolicyViolation);
        close.Description.Should().Be("MQTT DISCONNECT NotAuthorized (0x87)");
    }

    [Fact]
    public void Mirror_ConnAckRefusal311_ReturnCodeMapped()
    {
        var sent = Track(Encode(new ConnAckPacket { ReasonCode = MqttReasonCode.NotAuthorized }, MqttProtocolVersion.V311), seed: 4);

        var close = MqttWebSocketClose.Mirror(sent, new MqttPacketBoundaryTracker());

        close.Status.Should().Be(WebSocketCloseStatus.PolicyViolation);
        close.Description.Should().Be("MQTT CONNACK 0x05");
    }

    [Fact]
    public void Mirror_ConnAckSuccessThenClientDisconnect_NormalClosure()
    {
        var sent = Track(Encode(new ConnAckPacket { ReasonCode = MqttReasonCode.Success }), seed: 5);
        var received = Track(Encode(RawMqttClient.Connect("c")).Concat(Encode(new DisconnectPacket())).ToArray(), seed: 6);

        MqttWebSocketClose.Mirror(sent, received).Status.Should().Be(WebSocketCloseStatus.NormalClosure);
        received.LastIsDisconnect.Should().BeTrue();
    }

    [Fact]
    public void Observe_ReservedPacketType_Malformed()
    {
        var received = Track([.. Encode(RawMqttClient.Connect("c")), 0x00, 0x00], seed: 7);

        received.Malformed.Should().BeTrue();
        MqttWebSocketClose.Mirror(new MqttPacketBoundaryTracker(), received).Status.Should().Be(WebSocketCloseStatus.ProtocolError);
    }

    [Fact]
    public void Observe_RemainingLengthOverFourBytes_Malformed()
    {
        var received = Track([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], seed: 8);

        received.Malformed.Should().BeTrue();
    }

    [Theory]
    [InlineData(MqttReasonCode.ServerShuttingDown, WebSocketCloseStatus.EndpointUnavailable)]
    [InlineData(MqttReasonCode.PacketTooLarge, WebSocketCloseStatus.MessageTooBig)]
    [InlineData(MqttReasonCode.MalformedPacket, WebSocketCloseStatus.ProtocolError)]
    [InlineData(MqttReasonCode.AdministrativeAction, WebSocketCloseStatus.PolicyViolation)]
    [InlineData(MqttReasonCode.SessionTakenOver, WebSocketCloseStatus.NormalClosure)]
    [InlineData(MqttReasonCode.ServerBusy, WebSocketCloseStatus.InternalServerError)]
    [InlineData(MqttReasonCode.Success, WebSocketCloseStatus.NormalClosure)]
    public void FromReasonCode_Mapped(MqttReasonCode reason, WebSocketCloseStatus expected)
    {
        MqttWebSocketClose.FromReasonCode((byte)reason).Should().Be(expected);
    }
}
