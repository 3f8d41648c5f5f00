using System.Buffers;
using FluentAssertions;
using OmniBroker.Fuzz;
using OmniBroker.Mqtt;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.Support;
using Xunit;
using static OmniBroker.Tests.Codec.CodecAssertions;

namespace OmniBroker.Tests.Codec;

/// <summary>Decoding hand-written bytes: well-formed packets as real clients send them, and hostile ones.</summary>
public class MqttPacketReaderTests
{
    private const MqttProtocolVersion V3 = MqttProtocolVersion.V311;
    private const MqttProtocolVersion V5 = MqttProtocolVersion.V500;

    private static T Decode<T>(string hex, MqttProtocolVersion? version) where T : MqttPacket
    {
        byte[] bytes = Hex(hex);
        T? first = null;
        foreach (ReadOnlySequence<byte> input in SegmentedSequence.AllShapes(bytes))
        {
            var packet = DecodeWhole(input, version).Should().BeOfType<T>().Subject;
            first ??= packet;
        }
        return first!;
    }

    // ---- well-formed input ----

    [Fact]
    public void Connect_V311AsMosquittoSendsIt_Decodes()
    {
        var connect = Decode<ConnectPacket>("10 10 00 04 'MQTT' 04 02 00 3C 00 04 'test'", null);

        connect.ProtocolVersion.Should().Be(V3);
        connect.ClientId.Should().Be("test");
        connect.CleanStart.Should().BeTrue();
        connect.KeepAliveSeconds.Should().Be(60);
        connect.Will.Should().BeNull();
        connect.UserName.Should().BeNull();
        connect.Password.Should().BeNull();
        connect.Properties.Should().BeNull();
    }

    [Fact]
    public void Connect_V5WithPasswordButNoUserName_Decodes()
    {
        // 5.0 dropped 3.1.1's [MQTT-3.1.2-22]: a password alone is legal.
        var connect = Decode<ConnectPacket>("10 12 00 04 'MQTT' 05 42 00 00 00 00 01 'c' 00 02 'pw'", null);

        connect.ProtocolVersion.Should().Be(V5);
        connect.UserName.Should().BeNull();
        connect.Password!.Value.ToArray().Should().Equal("pw"u8.ToArray());
    }

    [Fact]
    public void Publish_V5EmptyTopicWithTopicAlias_Decodes()
    {
        var publish = Decode<PublishPacket>("30 08 00 00 03 23 00 05 'hi'", V5);

        publish.Topic.Should().BeEmpty();
        publish.Properties!.TopicAlias.Should().Be(5);
        publish.Payload.ToArray().Should().Equal("hi"u8.ToArray());
    }

    [Fact]
    public void Publish_Utf8MultiByteTopic_Decodes()
    {
        var publish = Decode<PublishPacket>("32 0C 00 08 'a/ü/€' 00 07", V3);

        publish.Topic.Should().Be("a/ü/€");
        publish.Qos.Should().Be(MqttQos.AtLeastOnce);
        publish.PacketId.Should().Be(7);
        publish.Payload.IsEmpty.Should().BeTrue();
    }

    [Theory]
    [InlineData("40 02 12 34", MqttReasonCode.Success)]
    [InlineData("40 03 12 34 10", MqttReasonCode.NoMatchingSubscribers)]
    [InlineData("40 04 12 34 87 00", MqttReasonCode.NotAuthorized)]
    public void PubAck_V5ShortForms_Decode(string hex, MqttReasonCode expected)
    {
        var ack = Decode<PubAckPacket>(hex, V5);

        ack.PacketId.Should().Be(0x1234);
        ack.ReasonCode.Should().Be(expected);
        ack.Properties.Should().BeNull();
    }

    [Fact]
    public void PubRel_FlagsOf0010_Decodes()
    {
        Decode<PubAckPacket>("62 02 00 01", V3).Type.Should().Be(MqttPacketType.PubRel);
    }

    [Theory]
    [InlineData("E0 00", MqttReasonCode.Success)]
    [InlineData("E0 01 8E", MqttReasonCode.SessionTakenOver)]
    [InlineData("E0 02 04 00", MqttReasonCode.DisconnectWithWillMessage)]
    public void Disconnect_V5ShortForms_Decode(string hex, MqttReasonCode expected)
    {
        Decode<DisconnectPacket>(hex, V5).ReasonCode.Should().Be(expected);
    }

    [Fact]
    public void Auth_V5RemainingLengthZero_IsSuccess()
    {
        Decode<AuthPacket>("F0 00", V5).ReasonCode.Should().Be(MqttReasonCode.Success);
    }

    [Theory]
    [InlineData("20 02 00 00", false, MqttReasonCode.Success)]
    [InlineData("20 02 01 00", true, MqttReasonCode.Success)]
    [InlineData("20 02 00 01", false, MqttReasonCode.UnsupportedProtocolVersion)]
    [InlineData("20 02 00 02", false, MqttReasonCode.ClientIdentifierNotValid)]
    [InlineData("20 02 00 03", false, MqttReasonCode.ServerUnavailable)]
    [InlineData("20 02 00 04", false, MqttReasonCode.BadUserNameOrPassword)]
    [InlineData("20 02 00 05", false, MqttReasonCode.NotAuthorized)]
    public void ConnAck_V311ReturnCodes_MapToReasonCodes(string hex, bool sessionPresent, MqttReasonCode expected)
    {
        var connAck = Decode<ConnAckPacket>(hex, V3);

        connAck.SessionPresent.Should().Be(sessionPresent);
        connAck.ReasonCode.Should().Be(expected);
    }

    [Fact]
    public void SubAck_V311Failure_DecodesAsUnspecifiedError()
    {
        Decode<SubAckPacket>("90 04 00 0A 01 80", V3).ReasonCodes
            .Should().Equal(MqttReasonCode.GrantedQos1, MqttReasonCode.UnspecifiedError);
    }

    [Fact]
    public void Subscribe_V5Options_Decode()
    {
        // "a/#": QoS 2, No Local, Retain As Published, Retain Handling 2 = 0b0010_1110.
        var subscribe = Decode<SubscribePacket>("82 09 00 01 00 00 03 'a/#' 2E", V5);

        subscribe.Subscriptions.Should().Equal(new TopicSubscription("a/#",
            new SubscriptionOptions(MqttQos.ExactlyOnce, NoLocal: true, RetainAsPublished: true, MqttRetainHandling.DoNotSend)));
    }

    [Fact]
    public void TryRead_PacketExactlyAtTheLimit_Decodes()
    {
        byte[] bytes = Hex("30 05 00 03 'a/b'");
        DecodeWhole(new ReadOnlySequence<byte>(bytes), V3, maximumPacketSize: bytes.Length).Should().BeOfType<PublishPacket>();
    }

    [Fact]
    public void TryRead_EmptyInput_NeedsMoreBytes()
    {
        MqttPacketReader.TryRead(ReadOnlySequence<byte>.Empty, null, NoLimit, out MqttPacket? packet, out _, out _).Should().BeFalse();
        packet.Should().BeNull();
    }

    [Fact]
    public void TryRead_RemainingLengthStillIncomplete_NeedsMoreBytes()
    {
        // Three continuation bytes are legal so far; the fourth decides.
        MqttPacketReader.TryRead(new ReadOnlySequence<byte>(Hex("30 FF FF FF")), V3, NoLimit, out _, out _, out _).Should().BeFalse();
    }

    [Fact]
    public void TryRead_NonPositiveLimit_IsACallerBug()
    {
        Action read = () => MqttPacketReader.TryRead(new ReadOnlySequence<byte>(Hex("C0 00")), V3, 0, out _, out _, out _);
        read.Should().Throw<ArgumentOutOfRangeException>();
    }

    // ---- hostile input: size ----

    [Theory]
    [InlineData("30 FF FF 03", MqttProtocolVersion.V311)]   // PUBLISH announcing 65535 bytes
    [InlineData("30 FF FF FF 7F", MqttProtocolVersion.V500)] // PUBLISH announcing 256 MB
    [InlineData("10 80 80 01", null)]                        // CONNECT announcing 16 KB before anything else
    public void TryRead_RemainingLengthOverLimit_ThrowsPacketTooLargeFromTheFixedHeaderAlone(string header, MqttProtocolVersion? version)
    {
        // Only the fixed header is fed: the verdict must not wait for the body.
        DecodeFails(Hex(header), version, MqttReasonCode.PacketTooLarge, maximumPacketSize: 1024);
    }

    [Fact]
    public void TryRead_PacketOneByteOverTheLimit_ThrowsPacketTooLarge()
    {
        byte[] bytes = Hex("30 05 00 03 'a/b'");
        DecodeFails(bytes[..2], V3, MqttReasonCode.PacketTooLarge, maximumPacketSize: bytes.Length - 1);
    }

    // ---- hostile input: encodings ----

    [Theory]
    [InlineData("30 FF FF FF FF 01")] // 5 Remaining Length bytes
    [InlineData("30 FF FF FF FF")]    // the 4th byte still says "more": no need to wait for a 5th
    [InlineData("C0 80 00")]          // 0 encoded in 2 bytes [MQTT-1.5.5-1]
    public void TryRead_MalformedRemainingLength_ThrowsMalformed(string hex)
    {
        DecodeFails(Hex(hex), V5, MqttReasonCode.MalformedPacket);
    }

    [Fact]
    public void Publish_PropertyLengthOfFiveBytes_ThrowsMalformed()
    {
        DecodeFails(Hex("30 08 00 01 'a' FF FF FF FF 01"), V5, MqttReasonCode.MalformedPacket);
    }

    [Theory]
    [InlineData("30 05 00 03 'a' C3 28")]  // truncated 2-byte sequence
    [InlineData("30 05 00 03 ED A0 80")]   // UTF-16 surrogate D800 encoded in UTF-8
    [InlineData("30 04 00 02 C0 80")]      // overlong U+0000
    [InlineData("30 05 00 03 'a' FF 'b'")] // byte that never occurs in UTF-8
    [InlineData("30 05 00 03 'a' 00 'b'")] // U+0000 [MQTT-1.5.4-2]
    public void Publish_TopicNotWellFormedUtf8_ThrowsMalformed(string hex)
    {
        DecodeFails(Hex(hex), V3, MqttReasonCode.MalformedPacket);
        DecodeFails(Hex(hex), V5, MqttReasonCode.MalformedPacket);
    }

    [Fact]
    public void Connect_ClientIdWithNul_ThrowsMalformed()
    {
        DecodeFails(Hex("10 0F 00 04 'MQTT' 04 02 00 3C 00 03 'a' 00 'b'"), null, MqttReasonCode.MalformedPacket);
    }

    [Theory]
    [InlineData("30 04 00 05 'ab'")]      // topic claims 5 bytes, the packet has 2 left
    [InlineData("32 04 00 01 'a' 00")]    // packet ends inside the Packet Identifier
    [InlineData("82 06 00 01 00 03 'ab'")] // filter claims 3 bytes, 2 left
    [InlineData("82 05 00 01 00 01 'a'")]  // filter without its options byte
    [InlineData("10 04 00 04 'MQ'")]       // CONNECT ends inside the protocol name
    public void TryRead_FieldRunsPastRemainingLength_ThrowsMalformed(string hex)
    {
        DecodeFails(Hex(hex), hex.StartsWith("10", StringComparison.Ordinal) ? null : V3, MqttReasonCode.MalformedPacket);
    }

    [Theory]
    [InlineData("40 03 00 01 00", MqttProtocolVersion.V311)] // 3.1.1 PUBACK is 2 bytes
    [InlineData("C0 01 00", MqttProtocolVersion.V311)]       // PINGREQ has no body
    [InlineData("E0 01 00", MqttProtocolVersion.V311)]       // 3.1.1 DISCONNECT has no body
    [InlineData("B0 03 00 01 00", MqttProtocolVersion.V311)] // 3.1.1 UNSUBACK has no payload
    [InlineData("20 04 00 00 00 00", MqttProtocolVersion.V311)]
    [InlineData("40 06 00 01 00 00 00 00", MqttProtocolVersion.V500)] // bytes after an empty property block
    public void TryRead_TrailingBytes_ThrowsMalformed(string hex, MqttProtocolVersion version)
    {
        DecodeFails(Hex(hex), version, MqttReasonCode.MalformedPacket);
    }

    // ---- hostile input: fixed header ----

    [Theory]
    [InlineData("C1 00")]          // PINGREQ
    [InlineData("D8 00")]          // PINGRESP
    [InlineData("E2 00")]          // DISCONNECT
    [InlineData("41 02 00 01")]    // PUBACK
    [InlineData("54 02 00 01")]    // PUBREC
    [InlineData("7F 02 00 01")]    // PUBCOMP
    [InlineData("23 02 00 00")]    // CONNACK
    [InlineData("80 06 00 01 00 01 'a' 00")] // SUBSCRIBE must be 0010 [MQTT-3.8.1-1]
    [InlineData("83 06 00 01 00 01 'a' 00")]
    [InlineData("A0 05 00 01 00 01 'a'")]    // UNSUBSCRIBE must be 0010 [MQTT-3.10.1-1]
    [InlineData("91 03 00 01 00")] // SUBACK
    [InlineData("00 00")]          // packet type 0 is reserved
    public void TryRead_ReservedFixedHeaderFlagsSet_ThrowsMalformed(string hex)
    {
        DecodeFails(Hex(hex), V3, MqttReasonCode.MalformedPacket);
        DecodeFails(Hex(hex), V5, MqttReasonCode.MalformedPacket);
    }

    [Theory]
    [InlineData("60 02 00 01")]
    [InlineData("63 02 00 01")]
    [InlineData("6A 02 00 01")]
    public void PubRel_FlagsOtherThan0010_ThrowsMalformed(string hex)
    {
        DecodeFails(Hex(hex), V3, MqttReasonCode.MalformedPacket);
        DecodeFails(Hex(hex), V5, MqttReasonCode.MalformedPacket);
    }

    [Fact]
    public void Connect_ReservedFixedHeaderFlag_ThrowsMalformed()
    {
        DecodeFails(Hex("11 10 00 04 'MQTT' 04 02 00 3C 00 04 'test'"), null, MqttReasonCode.MalformedPacket);
    }

    [Fact]
    public void Auth_InV311_ThrowsMalformedBecauseTheTypeIsReserved()
    {
        DecodeFails(Hex("F0 00"), V3, MqttReasonCode.MalformedPacket);
    }

    [Theory]
    [InlineData("36 05 00 03 'a/b'")] // QoS 3 [MQTT-3.3.1-4]
    [InlineData("3F 05 00 03 'a/b'")]
    public void Publish_Qos3_ThrowsMalformed(string hex)
    {
        DecodeFails(Hex(hex), V3, MqttReasonCode.MalformedPacket);
        DecodeFails(Hex(hex), V5, MqttReasonCode.MalformedPacket);
    }

    [Fact]
    public void Publish_DupOnQos0_ThrowsMalformed()
    {
        DecodeFails(Hex("38 05 00 03 'a/b'"), V3, MqttReasonCode.MalformedPacket);
    }

    // ---- hostile input: connection state ----

    [Theory]
    [InlineData("C0 00")]
    [InlineData("30 05 00 03 'a/b'")]
    [InlineData("82 06 00 01 00 01 'a' 00")]
    [InlineData("E0 00")]
    public void TryRead_FirstPacketNotConnect_ThrowsProtocolError(string hex)
    {
        DecodeFails(Hex(hex), null, MqttReasonCode.ProtocolError);
    }

    [Fact]
    public void TryRead_SecondConnect_ThrowsProtocolError()
    {
        DecodeFails(Hex("10 10 00 04 'MQTT' 04 02 00 3C 00 04 'test'"), V3, MqttReasonCode.ProtocolError);
    }

    // ---- hostile input: CONNECT ----

    [Theory]
    [InlineData("10 10 00 04 'MQTT' 03 02 00 3C 00 04 'test'")]   // level 3 under the 3.1.1 name
    [InlineData("10 10 00 04 'MQTT' 06 02 00 3C 00 04 'test'")]   // a future level
    [InlineData("10 12 00 06 'MQIsdp' 03 02 00 3C 00 04 'test'")] // MQTT 3.1
    [InlineData("10 10 00 04 'MQTX' 04 02 00 3C 00 04 'test'")]   // not MQTT at all
    [InlineData("10 0F 00 03 'MQT' 04 02 00 3C 00 04 'test'")]
    public void Connect_UnsupportedProtocol_ThrowsUnsupportedProtocolVersion(string hex)
    {
        DecodeFails(Hex(hex), null, MqttReasonCode.UnsupportedProtocolVersion);
    }

    [Theory]
    [InlineData("10 10 00 04 'MQTT' 04 03 00 3C 00 04 'test'")] // reserved flag [MQTT-3.1.2-3]
    [InlineData("10 10 00 04 'MQTT' 04 08 00 3C 00 04 'test'")] // Will QoS 1 without Will Flag
    [InlineData("10 10 00 04 'MQTT' 04 20 00 3C 00 04 'test'")] // Will Retain without Will Flag
    [InlineData("10 10 00 04 'MQTT' 04 42 00 3C 00 04 'test'")] // 3.1.1 password without user name [MQTT-3.1.2-22]
    [InlineData("10 13 00 04 'MQTT' 04 1C 00 3C 00 01 'c' 00 01 'w' 00 01 'p'")] // Will QoS 3
    public void Connect_InconsistentFlags_ThrowsMalformed(string hex)
    {
        DecodeFails(Hex(hex), null, MqttReasonCode.MalformedPacket);
    }

    [Theory]
    [InlineData("10 14 00 04 'MQTT' 04 04 00 3C 00 01 'c' 00 03 'a/#' 00 00")]
    [InlineData("10 11 00 04 'MQTT' 04 04 00 3C 00 01 'c' 00 00 00 00")]
    public void Connect_WillTopicNotATopicName_ThrowsTopicNameInvalid(string hex)
    {
        DecodeFails(Hex(hex), null, MqttReasonCode.TopicNameInvalid);
    }

    [Fact]
    public void Connect_V5AuthenticationDataWithoutMethod_ThrowsProtocolError()
    {
        DecodeFails(Hex("10 12 00 04 'MQTT' 05 02 00 3C 04 16 00 01 'x' 00 01 'c'"), null, MqttReasonCode.ProtocolError);
    }

    [Fact]
    public void Connect_V5ReceiveMaximumZero_ThrowsProtocolError()
    {
        DecodeFails(Hex("10 11 00 04 'MQTT' 05 02 00 3C 03 21 00 00 00 01 'c'"), null, MqttReasonCode.ProtocolError);
    }

    // ---- hostile input: PUBLISH ----

    [Theory]
    [InlineData("30 05 00 03 'a/#'")]
    [InlineData("30 05 00 03 'a/+'")]
    [InlineData("30 03 00 01 '#'")]
    [InlineData("30 05 00 03 'a+b'")]
    public void Publish_WildcardInTopic_ThrowsTopicNameInvalid(string hex)
    {
        DecodeFails(Hex(hex), V3, MqttReasonCode.TopicNameInvalid);
        DecodeFails(Hex(hex + " 00"), V5, MqttReasonCode.TopicNameInvalid);
    }

    [Fact]
    public void Publish_V5EmptyTopicWithoutAlias_ThrowsProtocolError()
    {
        DecodeFails(Hex("30 03 00 00 00"), V5, MqttReasonCode.ProtocolError);
    }

    [Fact]
    public void Publish_V311EmptyTopic_ThrowsTopicNameInvalid()
    {
        DecodeFails(Hex("30 02 00 00"), V3, MqttReasonCode.TopicNameInvalid);
    }

    [Fact]
    public void Publish_Qos1WithPacketIdZero_ThrowsProtocolError()
    {
        DecodeFails(Hex("32 07 00 03 'a/b' 00 00"), V3, MqttReasonCode.ProtocolError);
    }

    [Fact]
    public void Publish_TopicAliasZero_ThrowsTopicAliasInvalid()
    {
        DecodeFails(Hex("30 07 00 01 'a' 03 23 00 00"), V5, MqttReasonCode.TopicAliasInvalid);
    }

    [Fact]
    public void Publish_PayloadFormatIndicatorTwo_ThrowsProtocolError()
    {
        DecodeFails(Hex("30 06 00 01 'a' 02 01 02"), V5, MqttReasonCode.ProtocolError);
    }

    [Fact]
    public void Publish_ResponseTopicWithWildcard_ThrowsProtocolError()
    {
        DecodeFails(Hex("30 0A 00 01 'a' 06 08 00 03 'r/#'"), V5, MqttReasonCode.ProtocolError);
    }

    // ---- hostile input: properties ----

    [Theory]
    [InlineData("40 07 00 01 00 03 05 00 00")]    // 0x05 is not a property
    [InlineData("40 06 00 01 00 02 7F 00")]       // neither is 0x7F
    [InlineData("40 07 00 01 00 03 23 00 01")]    // Topic Alias exists, but not in PUBACK
    [InlineData("30 09 00 01 'a' 05 11 00 00 00 01")] // Session Expiry Interval is not a PUBLISH property
    public void Properties_IdentifierNotValidForThePacket_ThrowsMalformed(string hex)
    {
        DecodeFails(Hex(hex), V5, MqttReasonCode.MalformedPacket);
    }

    [Theory]
    [InlineData("30 0E 00 01 'a' 0A 02 00 00 00 01 02 00 00 00 02")] // Message Expiry Interval twice
    [InlineData("40 0C 00 01 00 08 1F 00 01 'x' 1F 00 01 'y'")]      // Reason String twice
    [InlineData("82 0B 00 01 04 0B 01 0B 02 00 01 'a' 00")]          // Subscription Identifier twice in SUBSCRIBE
    public void Properties_SingleValuedPropertyRepeated_ThrowsProtocolError(string hex)
    {
        DecodeFails(Hex(hex), V5, MqttReasonCode.ProtocolError);
    }

    [Fact]
    public void Properties_LengthBeyondThePacket_ThrowsMalformed()
    {
        DecodeFails(Hex("40 06 00 01 00 09 1F 00"), V5, MqttReasonCode.MalformedPacket);
    }

    [Fact]
    public void Properties_ValueCutShortByPropertyLength_ThrowsMalformed()
    {
        // Property Length 2 ends inside the Reason String, though the packet has bytes after it.
        DecodeFails(Hex("40 08 00 01 00 02 1F 00 01 'x'"), V5, MqttReasonCode.MalformedPacket);
    }

    // ---- hostile input: acknowledgements ----

    [Theory]
    [InlineData("40 03 00 01 05")] // not a PUBACK reason code
    [InlineData("70 03 00 01 10")] // No matching subscribers is for PUBACK/PUBREC, not PUBCOMP
    [InlineData("90 04 00 01 00 03")] // SUBACK code 3
    [InlineData("F0 02 87 00")]    // AUTH only knows 0x00, 0x18, 0x19
    [InlineData("20 03 00 10 00")] // CONNACK code 0x10
    public void TryRead_ReasonCodeNotValidForThePacket_ThrowsProtocolError(string hex)
    {
        DecodeFails(Hex(hex), V5, MqttReasonCode.ProtocolError);
    }

    [Theory]
    [InlineData("40 02 00 00")]
    [InlineData("B0 02 00 00")]
    public void Acknowledgement_PacketIdZero_ThrowsProtocolError(string hex)
    {
        DecodeFails(Hex(hex), V3, MqttReasonCode.ProtocolError);
    }

    [Fact]
    public void ConnAck_V311ReservedReturnCode_ThrowsProtocolError()
    {
        DecodeFails(Hex("20 02 00 06"), V3, MqttReasonCode.ProtocolError);
    }

    [Fact]
    public void ConnAck_ReservedAcknowledgeFlags_ThrowsMalformed()
    {
        DecodeFails(Hex("20 02 02 00"), V3, MqttReasonCode.MalformedPacket);
    }

    [Fact]
    public void ConnAck_SessionPresentOnRefusal_ThrowsProtocolError()
    {
        DecodeFails(Hex("20 02 01 05"), V3, MqttReasonCode.ProtocolError);
    }

    [Fact]
    public void Auth_ReasonCodeWithoutPropertyLength_ThrowsMalformed()
    {
        DecodeFails(Hex("F0 01 18"), V5, MqttReasonCode.MalformedPacket);
    }

    // ---- hostile input: SUBSCRIBE / UNSUBSCRIBE ----

    [Theory]
    [InlineData("82 02 00 01", MqttProtocolVersion.V311)]
    [InlineData("82 03 00 01 00", MqttProtocolVersion.V500)]
    [InlineData("A2 02 00 01", MqttProtocolVersion.V311)]
    [InlineData("A2 03 00 01 00", MqttProtocolVersion.V500)]
    public void Subscribe_NoTopicFilter_ThrowsProtocolError(string hex, MqttProtocolVersion version)
    {
        DecodeFails(Hex(hex), version, MqttReasonCode.ProtocolError);
    }

    [Theory]
    [InlineData("04")] // upper bits of the requested-QoS byte [MQTT-3-8.3-4]
    [InlineData("80")]
    [InlineData("03")] // QoS 3
    public void Subscribe_V311BadRequestedQosByte_ThrowsMalformed(string qosByte)
    {
        DecodeFails(Hex("82 06 00 01 00 01 'a' " + qosByte), V3, MqttReasonCode.MalformedPacket);
    }

    [Theory]
    [InlineData("40", MqttReasonCode.MalformedPacket)] // reserved bit 6 [MQTT-3.8.3-5]
    [InlineData("80", MqttReasonCode.MalformedPacket)] // reserved bit 7
    [InlineData("03", MqttReasonCode.MalformedPacket)] // QoS 3
    [InlineData("30", MqttReasonCode.ProtocolError)]   // Retain Handling 3
    public void Subscribe_V5BadOptions_Throws(string options, MqttReasonCode expected)
    {
        DecodeFails(Hex("82 07 00 01 00 00 01 'a' " + options), V5, expected);
    }

    [Fact]
    public void Subscribe_V5NoLocalOnSharedSubscription_ThrowsProtocolError()
    {
        DecodeFails(Hex("82 10 00 01 00 00 0A '$share/g/a' 04"), V5, MqttReasonCode.ProtocolError);
    }

    [Fact]
    public void Subscribe_V5SubscriptionIdentifierZero_ThrowsProtocolError()
    {
        DecodeFails(Hex("82 09 00 01 02 0B 00 00 01 'a' 00"), V5, MqttReasonCode.ProtocolError);
    }

    [Theory]
    [InlineData("00 05 'a/#/b'")]
    [InlineData("00 02 'a+'")]
    [InlineData("00 02 '#a'")]
    [InlineData("00 00")]
    [InlineData("00 09 '$share//a'")]
    [InlineData("00 08 '$share/g'")]
    [InlineData("00 0B '$share/g+/a'")]
    public void Subscribe_InvalidTopicFilter_ThrowsTopicFilterInvalid(string filter)
    {
        byte[] f = Hex(filter);
        DecodeFails([0x82, (byte)(2 + f.Length + 1), 0x00, 0x01, .. f, 0x00], V3, MqttReasonCode.TopicFilterInvalid);
        DecodeFails([0xA2, (byte)(2 + f.Length), 0x00, 0x01, .. f], V3, MqttReasonCode.TopicFilterInvalid);
    }
}
