using System.Buffers;
using FluentAssertions;
using OmniBroker.Fuzz;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Packets;
using Xunit;
using static OmniBroker.Tests.Codec.CodecAssertions;

namespace OmniBroker.Tests.Codec;

/// <summary>Exact encodings: what a real peer must see on the wire.</summary>
public class MqttPacketWriterTests
{
    private const MqttProtocolVersion V3 = MqttProtocolVersion.V311;
    private const MqttProtocolVersion V5 = MqttProtocolVersion.V500;

    [Fact]
    public void Connect_V311Minimal_EncodesLikeMosquitto()
    {
        var connect = new ConnectPacket { ClientId = "test", CleanStart = true, KeepAliveSeconds = 60 };

        Encode(connect, V3).Should().Equal(Hex("10 10 00 04 'MQTT' 04 02 00 3C 00 04 'test'"));
    }

    [Fact]
    public void Connect_V5WithWillUserAndPassword_EncodesFlagsAndFieldOrder()
    {
        var connect = new ConnectPacket
        {
            ClientId = "c",
            CleanStart = false,
            KeepAliveSeconds = 10,
            UserName = "u",
            Password = "p"u8.ToArray(),
            Will = new WillMessage { Topic = "w", Payload = "x"u8.ToArray(), Qos = MqttQos.AtLeastOnce, Retain = true },
            Properties = new MqttProperties { SessionExpiryInterval = 1 },
        };

        // Flags: user 0x80 | password 0x40 | will retain 0x20 | will QoS 1 0x08 | will 0x04 = 0xEC.
        Encode(connect, V5).Should().Equal(Hex(
            "10 20 00 04 'MQTT' 05 EC 00 0A 05 11 00 00 00 01 00 01 'c' 00 00 01 'w' 00 01 'x' 00 01 'u' 00 01 'p'"));
    }

    [Theory]
    [InlineData(MqttReasonCode.Success, 0x00)]
    [InlineData(MqttReasonCode.UnsupportedProtocolVersion, 0x01)]
    [InlineData(MqttReasonCode.ClientIdentifierNotValid, 0x02)]
    [InlineData(MqttReasonCode.ServerUnavailable, 0x03)]
    [InlineData(MqttReasonCode.ServerBusy, 0x03)]
    [InlineData(MqttReasonCode.ServerShuttingDown, 0x03)]
    [InlineData(MqttReasonCode.UseAnotherServer, 0x03)]
    [InlineData(MqttReasonCode.ConnectionRateExceeded, 0x03)]
    [InlineData(MqttReasonCode.BadUserNameOrPassword, 0x04)]
    [InlineData(MqttReasonCode.NotAuthorized, 0x05)]
    [InlineData(MqttReasonCode.Banned, 0x05)]
    [InlineData(MqttReasonCode.BadAuthenticationMethod, 0x05)]
    [InlineData(MqttReasonCode.UnspecifiedError, 0x05)]
    public void ConnAck_V311_MapsReasonCodeToReturnCode(MqttReasonCode reasonCode, byte returnCode)
    {
        Encode(new ConnAckPacket { ReasonCode = reasonCode }, V3).Should().Equal(0x20, 0x02, 0x00, returnCode);
    }

    [Fact]
    public void ConnAck_RefusedWithSessionPresent_ClearsSessionPresent()
    {
        // [MQTT-3.2.2-4] / [MQTT-3.2.2-6]: a refusal never claims a session.
        var refused = new ConnAckPacket { SessionPresent = true, ReasonCode = MqttReasonCode.NotAuthorized };

        Encode(refused, V3).Should().Equal(0x20, 0x02, 0x00, 0x05);
        Encode(refused, V5).Should().Equal(0x20, 0x03, 0x00, 0x87, 0x00);
    }

    [Fact]
    public void ConnAck_V5Accepted_EncodesSessionPresentAndProperties()
    {
        var connAck = new ConnAckPacket { SessionPresent = true, Properties = new MqttProperties { ReceiveMaximum = 10, MaximumQos = 1 } };

        Encode(connAck, V5).Should().Equal(Hex("20 08 01 00 05 21 00 0A 24 01"));
    }

    [Fact]
    public void SubAck_V311_WritesEveryFailureAs0x80()
    {
        var subAck = new SubAckPacket
        {
            PacketId = 7,
            ReasonCodes = [MqttReasonCode.GrantedQos2, MqttReasonCode.NotAuthorized, MqttReasonCode.Success,
                MqttReasonCode.QuotaExceeded, MqttReasonCode.GrantedQos1, MqttReasonCode.TopicFilterInvalid],
        };

        Encode(subAck, V3).Should().Equal(Hex("90 08 00 07 02 80 00 80 01 80"));
        Encode(subAck, V5).Should().Equal(Hex("90 09 00 07 00 02 87 00 97 01 8F"));
    }

    [Fact]
    public void UnsubAck_V311_HasNoPayload()
    {
        var unsubAck = new UnsubAckPacket { PacketId = 11, ReasonCodes = [MqttReasonCode.NoSubscriptionExisted] };

        Encode(unsubAck, V3).Should().Equal(0xB0, 0x02, 0x00, 0x0B);
        Encode(unsubAck, V5).Should().Equal(0xB0, 0x04, 0x00, 0x0B, 0x00, 0x11);
    }

    [Theory]
    [InlineData(MqttPacketType.PubAck, 0x40)]
    [InlineData(MqttPacketType.PubRec, 0x50)]
    [InlineData(MqttPacketType.PubRel, 0x62)] // [MQTT-3.6.1-1]
    [InlineData(MqttPacketType.PubComp, 0x70)]
    public void PubAck_V5SuccessWithoutProperties_UsesTheTwoByteForm(MqttPacketType type, byte firstByte)
    {
        var ack = new PubAckPacket(type) { PacketId = 0x1234 };

        Encode(ack, V5).Should().Equal(firstByte, 0x02, 0x12, 0x34);
        Encode(ack, V3).Should().Equal(firstByte, 0x02, 0x12, 0x34);
    }

    [Fact]
    public void PubAck_V5FailureWithoutProperties_OmitsThePropertyLength()
    {
        var ack = new PubAckPacket(MqttPacketType.PubAck) { PacketId = 1, ReasonCode = MqttReasonCode.NotAuthorized };

        Encode(ack, V5).Should().Equal(0x40, 0x03, 0x00, 0x01, 0x87);
        Encode(ack, V3).Should().Equal(0x40, 0x02, 0x00, 0x01);
    }

    [Fact]
    public void PubAck_V5SuccessWithReasonString_WritesTheFullForm()
    {
        var ack = new PubAckPacket(MqttPacketType.PubAck) { PacketId = 1, Properties = new MqttProperties { ReasonString = "ok" } };

        Encode(ack, V5).Should().Equal(Hex("40 09 00 01 00 05 1F 00 02 'ok'"));
    }

    [Fact]
    public void Properties_NotAllowedInThePacket_AreLeftOut()
    {
        // Topic Alias and Session Expiry Interval mean nothing in PUBACK; writing them would make the peer disconnect us.
        var ack = new PubAckPacket(MqttPacketType.PubAck)
        {
            PacketId = 1,
            Properties = new MqttProperties { TopicAlias = 3, SessionExpiryInterval = 9, ReasonString = "x" },
        };

        Encode(ack, V5).Should().Equal(Hex("40 08 00 01 00 04 1F 00 01 'x'"));
    }

    [Theory]
    [InlineData(MqttReasonCode.Success, "E0 00")]
    [InlineData(MqttReasonCode.ServerShuttingDown, "E0 01 8B")]
    public void Disconnect_V5WithoutProperties_UsesTheShortForms(MqttReasonCode reasonCode, string expected)
    {
        Encode(new DisconnectPacket { ReasonCode = reasonCode }, V5).Should().Equal(Hex(expected));
    }

    [Fact]
    public void Disconnect_V311_IsJustTheFixedHeader()
    {
        Encode(new DisconnectPacket { ReasonCode = MqttReasonCode.ServerShuttingDown, Properties = new() { ReasonString = "x" } }, V3)
            .Should().Equal(0xE0, 0x00);
    }

    [Fact]
    public void Auth_V5_OmitsReasonAndPropertiesOnlyTogether()
    {
        Encode(new AuthPacket(), V5).Should().Equal(0xF0, 0x00);
        Encode(new AuthPacket { ReasonCode = MqttReasonCode.ReAuthenticate }, V5).Should().Equal(0xF0, 0x02, 0x19, 0x00);
    }

    [Fact]
    public void Auth_V311_IsRefused()
    {
        Action write = () => Encode(new AuthPacket(), V3);
        write.Should().Throw<ArgumentException>();
    }

    [Fact]
    public void Pings_EncodeAsTwoBytes()
    {
        Encode(PingReqPacket.Instance, V3).Should().Equal(0xC0, 0x00);
        Encode(PingRespPacket.Instance, V5).Should().Equal(0xD0, 0x00);
    }

    [Fact]
    public void Publish_Qos0WithDup_NeverSetsDup()
    {
        // [MQTT-3.3.1-2]: a retransmission flag on a message that is never retransmitted.
        var publish = new PublishPacket { Topic = "t", Qos = MqttQos.AtMostOnce, Dup = true, Retain = true };

        Encode(publish, V3).Should().Equal(Hex("31 03 00 01 't'"));
    }

    [Fact]
    public void Publish_V311_LeavesPropertiesOut()
    {
        var publish = new PublishPacket
        {
            Topic = "t",
            Qos = MqttQos.AtLeastOnce,
            PacketId = 2,
            Payload = new ReadOnlySequence<byte>("p"u8.ToArray()),
            Properties = new MqttProperties { MessageExpiryInterval = 5 },
        };

        Encode(publish, V3).Should().Equal(Hex("32 06 00 01 't' 00 02 'p'"));
        Encode(publish, V5).Should().Equal(Hex("32 0C 00 01 't' 00 02 05 02 00 00 00 05 'p'"));
    }

    [Theory]
    [MemberData(nameof(MqttVariableByteIntegerTests.EncodingBoundaries), MemberType = typeof(MqttVariableByteIntegerTests))]
    public void Publish_RemainingLengthAtEncodingBoundaries_IsEncodedMinimally(int remainingLength, string expected)
    {
        // Topic "t" takes 3 bytes of the Remaining Length; the payload the rest.
        var publish = new PublishPacket { Topic = "t", Payload = new ReadOnlySequence<byte>(new byte[remainingLength - 3]) };

        byte[] encoded = Encode(publish, V3);

        byte[] header = Hex(expected);
        encoded.AsSpan(1, header.Length).ToArray().Should().Equal(header);
        encoded.Length.Should().Be(1 + header.Length + remainingLength);
        MqttPacketWriter.GetEncodedSize(publish, V3).Should().Be(encoded.Length);
    }

    [Fact]
    public void Publish_MultiSegmentPayload_IsWrittenInOrder()
    {
        byte[] all = Enumerable.Range(0, 10_000).Select(i => (byte)(i * 7)).ToArray();
        var publish = new PublishPacket
        {
            Topic = "t",
            Qos = MqttQos.AtLeastOnce,
            PacketId = 1,
            Payload = SegmentedSequence.RandomSegments(all, seed: 1, maxSegment: 999),
        };

        byte[] encoded = Encode(publish, V3);

        encoded.AsSpan(encoded.Length - all.Length).ToArray().Should().Equal(all);
    }

    [Theory]
    [MemberData(nameof(MqttCodecRoundTripTests.AllPackets), MemberType = typeof(MqttCodecRoundTripTests))]
    public void Write_IntoOneByteSpans_ProducesTheSameBytes(string name, MqttProtocolVersion version)
    {
        MqttPacket packet = PacketSamples.Create(name, version);
        var tiny = new TinySpanWriter();

        MqttPacketWriter.Write(tiny, packet, version);

        tiny.Written.Should().Equal(Encode(packet, version));
    }

    [Fact]
    public void Write_LargePublishIntoSmallSpans_StreamsThePayload()
    {
        byte[] payload = new byte[20_000];
        new Random(3).NextBytes(payload);
        var publish = new PublishPacket { Topic = "big", Payload = new ReadOnlySequence<byte>(payload) };
        var tiny = new TinySpanWriter();

        MqttPacketWriter.Write(tiny, publish, V5);

        tiny.Written.Should().Equal(Encode(publish, V5));
        tiny.LargestRequest.Should().BeLessThan(4096, "the payload is not requested as one contiguous span");
    }

    [Fact]
    public void Write_SeveralPackets_AppendsToTheSameOutput()
    {
        var output = new ArrayBufferWriter<byte>();
        MqttPacketWriter.Write(output, PingRespPacket.Instance, V3);
        MqttPacketWriter.Write(output, new PubAckPacket(MqttPacketType.PubAck) { PacketId = 1 }, V3);

        output.WrittenSpan.ToArray().Should().Equal(0xD0, 0x00, 0x40, 0x02, 0x00, 0x01);
    }

    [Fact]
    public void Write_StringLongerThan65535Bytes_IsRefused()
    {
        var publish = new PublishPacket { Topic = new string('a', 65_536) };

        Action write = () => Encode(publish, V3);
        write.Should().Throw<ArgumentException>();
    }

    [Fact]
    public void GetEncodedSize_PayloadBeyondTheProtocolMaximum_IsRefused()
    {
        // 257 references to one 1 MiB buffer: a 257 MiB payload without allocating it.
        var chunk = new byte[1 << 20];
        var sizes = Enumerable.Repeat(chunk.Length, 257).ToList();
        var payload = SegmentedSequence.Repeated(chunk, 257);
        var publish = new PublishPacket { Topic = "t", Payload = payload };

        Action measure = () => MqttPacketWriter.GetEncodedSize(publish, V3);
        measure.Should().Throw<ArgumentException>();
        sizes.Sum().Should().BeGreaterThan(268_435_455);
    }

    [Fact]
    public void Write_EmptySubscribe_IsRefused()
    {
        Action write = () => Encode(new SubscribePacket { PacketId = 1 }, V5);
        write.Should().Throw<ArgumentException>();
    }

    /// <summary>Hands out spans no bigger than asked for (one byte when asked for "any"), like a nearly full pipe segment.</summary>
    private sealed class TinySpanWriter : IBufferWriter<byte>
    {
        private readonly List<byte> _written = new();
        private byte[] _current = [];

        public byte[] Written => _written.ToArray();

        public int LargestRequest { get; private set; }

        public void Advance(int count)
        {
            count.Should().BeLessThanOrEqualTo(_current.Length);
            _written.AddRange(_current.AsSpan(0, count).ToArray());
            _current = [];
        }

        public Memory<byte> GetMemory(int sizeHint = 0)
        {
            LargestRequest = Math.Max(LargestRequest, sizeHint);
            _current = new byte[Math.Max(sizeHint, 1)];
            return _current;
        }

        public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;
    }
}
