using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Codec;

/// <summary>
/// Decodes MQTT 3.1.1 and 5.0 control packets from a pipe's buffer. Synchronous and allocation-light:
/// the caller owns the loop and calls <c>AdvanceTo(consumed, examined)</c> after every attempt.
/// </summary>
public static partial class MqttPacketReader
{
    /// <summary>
    /// Decodes one control packet. Returns false when more bytes are needed (consumed = input.Start,
    /// examined = input.End); true with the packet when a whole one was decoded (consumed = examined =
    /// its end). Throws <see cref="MqttProtocolException"/> on any protocol violation.
    /// A decoded PUBLISH payload is a slice of <paramref name="input"/>: copy it before advancing past it.
    /// </summary>
    /// <param name="version">null: nothing received yet on this connection; only CONNECT is legal
    /// ([MQTT-3.1.0-1]) and CONNECT decoding sets the version (<see cref="ConnectPacket.ProtocolVersion"/>).</param>
    /// <param name="maximumPacketSize">Limit on the whole packet, fixed header included; it is checked as soon
    /// as the fixed header is readable, before any of the body is waited for.</param>
    public static bool TryRead(in ReadOnlySequence<byte> input, MqttProtocolVersion? version, int maximumPacketSize,
        [NotNullWhen(true)] out MqttPacket? packet, out SequencePosition consumed, out SequencePosition examined)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maximumPacketSize);

        packet = null;
        consumed = input.Start;
        examined = input.End;

        var reader = new SequenceReader<byte>(input);
        if (!reader.TryRead(out byte header))
        {
            return false;
        }

        var type = (MqttPacketType)(header >> 4);
        int flags = header & 0x0F;
        ValidateFixedHeader(type, flags, version);

        if (!TryReadRemainingLength(ref reader, out int remainingLength))
        {
            return false;
        }

        // Refuse before buffering: a peer must not make us hold a body we are going to reject anyway.
        long packetSize = reader.Consumed + remainingLength;
        if (packetSize > maximumPacketSize)
        {
            MqttThrow.PacketTooLarge(packetSize, maximumPacketSize);
        }
        if (reader.Remaining < remainingLength)
        {
            return false;
        }

        ReadOnlySequence<byte> body = input.Slice(reader.Position, remainingLength);
        packet = ReadBody(type, flags, body, version);
        consumed = body.End;
        examined = body.End;
        return true;
    }

    // 5.0 §2.1.2-2.1.3, 3.1.1 §2.2. The reserved flag bits must hold the listed values
    // ([MQTT-2.1.3-1] 5.0, [MQTT-2.2.2-1] 3.1.1); anything else is a Malformed Packet ([MQTT-2.2.2-2]).
    // [MQTT-3.1.0-1] the first packet is CONNECT; [MQTT-3.1.0-2] a second CONNECT is a Protocol Error.
    private static void ValidateFixedHeader(MqttPacketType type, int flags, MqttProtocolVersion? version)
    {
        if (version is null)
        {
            if (type != MqttPacketType.Connect)
            {
                MqttThrow.ProtocolError($"first packet is {PacketName(type)}, not CONNECT [MQTT-3.1.0-1]");
            }
        }
        else if (type == MqttPacketType.Connect)
        {
            MqttThrow.ProtocolError("second CONNECT on one connection [MQTT-3.1.0-2]");
        }

        switch (type)
        {
            case 0:
                MqttThrow.Malformed("packet type 0 is reserved");
                break;
            case MqttPacketType.Auth when version == MqttProtocolVersion.V311:
                MqttThrow.Malformed("packet type 15 is reserved in MQTT 3.1.1");
                break;
            case MqttPacketType.Publish:
                int qos = (flags >> 1) & 0x03;
                if (qos == 3)
                {
                    MqttThrow.Malformed("PUBLISH with QoS 3 [MQTT-3.3.1-4]");
                }
                if (qos == 0 && (flags & 0x08) != 0)
                {
                    MqttThrow.Malformed("PUBLISH QoS 0 with DUP set [MQTT-3.3.1-2]");
                }
                break;
            case MqttPacketType.PubRel or MqttPacketType.Subscribe or MqttPacketType.Unsubscribe:
                if (flags != 0x02)
                {
                    // [MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1]
                    MqttThrow.Malformed($"{PacketName(type)} fixed header flags must be 0010, got {Convert.ToString(flags, 2).PadLeft(4, '0')}");
                }
                break;
            default:
                if (flags != 0)
                {
                    MqttThrow.Malformed($"{PacketName(type)} fixed header flags must be 0000, got {Convert.ToString(flags, 2).PadLeft(4, '0')}");
                }
                break;
        }
    }

    // 5.0 §2.1.4 / 3.1.1 §2.2.3: a Variable Byte Integer of at most 4 bytes, minimal [MQTT-1.5.5-1].
    // Unlike MqttWire.ReadVariableByteInteger this one can run out of input, which means "wait".
    private static bool TryReadRemainingLength(ref SequenceReader<byte> reader, out int value)
    {
        OperationStatus status = MqttWire.TryReadVariableByteInteger(ref reader, out value);
        if (status == OperationStatus.InvalidData)
        {
            MqttThrow.Malformed("Remaining Length longer than 4 bytes or not encoded in the minimum number of bytes [MQTT-1.5.5-1]");
        }
        return status == OperationStatus.Done;
    }

    private static MqttPacket ReadBody(MqttPacketType type, int flags, in ReadOnlySequence<byte> body, MqttProtocolVersion? version)
    {
        var reader = new SequenceReader<byte>(body);
        if (version is not { } v)
        {
            return ReadConnect(ref reader);
        }

        MqttPacket packet = type switch
        {
            MqttPacketType.ConnAck => ReadConnAck(ref reader, v),
            MqttPacketType.Publish => ReadPublish(ref reader, flags, body, v),
            MqttPacketType.PubAck or MqttPacketType.PubRec or MqttPacketType.PubRel or MqttPacketType.PubComp =>
                ReadPubAck(ref reader, type, v),
            MqttPacketType.Subscribe => ReadSubscribe(ref reader, v),
            MqttPacketType.SubAck => ReadSubAck(ref reader, v),
            MqttPacketType.Unsubscribe => ReadUnsubscribe(ref reader, v),
            MqttPacketType.UnsubAck => ReadUnsubAck(ref reader, v),
            MqttPacketType.PingReq => ReadEmpty(ref reader, PingReqPacket.Instance),
            MqttPacketType.PingResp => ReadEmpty(ref reader, PingRespPacket.Instance),
            MqttPacketType.Disconnect => ReadDisconnect(ref reader, v),
            MqttPacketType.Auth => ReadAuth(ref reader),
            // CONNECT and type 0 were refused by ValidateFixedHeader.
            _ => throw new InvalidOperationException($"unexpected packet type {type}"),
        };
        return packet;
    }

    // 5.0 §3.3, 3.1.1 §3.3. Topic Name is UTF-8 without wildcards ([MQTT-3.3.2-1], [MQTT-3.3.2-2]);
    // QoS > 0 needs a non-zero Packet Identifier (5.0 [MQTT-2.2.1-3], 3.1.1 [MQTT-2.3.1-1]); in 5.0 an empty
    // Topic Name is legal only with a Topic Alias (§3.3.2.3.4). The payload is the rest of the packet, unparsed.
    private static PublishPacket ReadPublish(ref SequenceReader<byte> r, int flags, in ReadOnlySequence<byte> body, MqttProtocolVersion version)
    {
        var qos = (MqttQos)((flags >> 1) & 0x03);
        string topic = MqttWire.ReadString(ref r);
        if (topic.AsSpan().IndexOfAny('+', '#') >= 0)
        {
            MqttThrow.Violation(MqttReasonCode.TopicNameInvalid, $"PUBLISH Topic Name \"{topic}\" contains a wildcard [MQTT-3.3.2-2]");
        }

        ushort packetId = qos == MqttQos.AtMostOnce ? (ushort)0 : ReadPacketId(ref r, MqttPacketType.Publish);
        MqttProperties? properties = version == MqttProtocolVersion.V500
            ? MqttPropertyCodec.Read(ref r, MqttPropertyScope.Publish)
            : null;

        if (topic.Length == 0)
        {
            if (version == MqttProtocolVersion.V311)
            {
                MqttThrow.Violation(MqttReasonCode.TopicNameInvalid, "PUBLISH with an empty Topic Name [MQTT-4.7.3-1]");
            }
            if (properties?.TopicAlias is null)
            {
                MqttThrow.ProtocolError("PUBLISH with an empty Topic Name and no Topic Alias");
            }
        }

        return new PublishPacket
        {
            Topic = topic,
            Qos = qos,
            Retain = (flags & 0x01) != 0,
            Dup = (flags & 0x08) != 0,
            PacketId = packetId,
            Properties = properties,
            Payload = body.Slice(r.Position),
        };
    }

    // 5.0 §3.4-3.7, 3.1.1 §3.4-3.7. 3.1.1 has exactly the Packet Identifier. In 5.0 the Reason Code may be
    // omitted (Remaining Length 2, meaning Success) and so may the properties (Remaining Length < 4).
    // PUBREL flags were checked in the fixed header [MQTT-3.6.1-1].
    private static PubAckPacket ReadPubAck(ref SequenceReader<byte> r, MqttPacketType type, MqttProtocolVersion version)
    {
        var ack = new PubAckPacket(type) { PacketId = ReadPacketId(ref r, type) };
        if (version == MqttProtocolVersion.V500 && !r.End)
        {
            ack.ReasonCode = CheckReasonCode(type, MqttWire.ReadByte(ref r));
            if (!r.End)
            {
                ack.Properties = MqttPropertyCodec.Read(ref r, MqttPropertyScope.PubAck);
            }
        }
        EnsureEnd(ref r, type);
        return ack;
    }

    // 5.0 §3.12-3.13, 3.1.1 §3.12-3.13: no variable header, no payload.
    private static MqttPacket ReadEmpty(ref SequenceReader<byte> r, MqttPacket packet)
    {
        EnsureEnd(ref r, packet.Type);
        return packet;
    }

    // 5.0 §3.14, 3.1.1 §3.14. 3.1.1 DISCONNECT is empty. 5.0: Remaining Length 0 means Normal disconnection,
    // and "if the Remaining Length is less than 2, a value of 0 is used" for Property Length (§3.14.2.2.1).
    private static DisconnectPacket ReadDisconnect(ref SequenceReader<byte> r, MqttProtocolVersion version)
    {
        var disconnect = new DisconnectPacket();
        if (version == MqttProtocolVersion.V500 && !r.End)
        {
            disconnect.ReasonCode = CheckReasonCode(MqttPacketType.Disconnect, MqttWire.ReadByte(ref r));
            if (!r.End)
            {
                disconnect.Properties = MqttPropertyCodec.Read(ref r, MqttPropertyScope.Disconnect);
            }
        }
        EnsureEnd(ref r, MqttPacketType.Disconnect);
        return disconnect;
    }

    // 5.0 §3.15 (3.1.1 refused it in the fixed header). Reason Code and Property Length are omitted together
    // (Remaining Length 0, Success) or both present (§3.15.2.1).
    private static AuthPacket ReadAuth(ref SequenceReader<byte> r)
    {
        var auth = new AuthPacket();
        if (!r.End)
        {
            auth.ReasonCode = CheckReasonCode(MqttPacketType.Auth, MqttWire.ReadByte(ref r));
            if (r.End)
            {
                MqttThrow.Malformed("AUTH has a Reason Code but no Property Length");
            }
            auth.Properties = MqttPropertyCodec.Read(ref r, MqttPropertyScope.Auth);
        }
        EnsureEnd(ref r, MqttPacketType.Auth);
        return auth;
    }

    // 5.0 [MQTT-2.2.1-3], 3.1.1 [MQTT-2.3.1-1]: identifiers are non-zero, and an acknowledgement echoes one.
    private static ushort ReadPacketId(ref SequenceReader<byte> r, MqttPacketType type)
    {
        ushort packetId = MqttWire.ReadUInt16(ref r);
        if (packetId == 0)
        {
            MqttThrow.ProtocolError($"{PacketName(type)} with Packet Identifier 0 [MQTT-2.2.1-3]");
        }
        return packetId;
    }

    // Each packet's description in 5.0 §3 lists the reason codes it may carry (e.g. [MQTT-3.4.2-1]).
    private static MqttReasonCode CheckReasonCode(MqttPacketType type, byte code)
    {
        if (!MqttReasonCodes.IsValid(type, code))
        {
            MqttThrow.ProtocolError($"reason code 0x{code:X2} is not valid in {PacketName(type)}");
        }
        return (MqttReasonCode)code;
    }

    // Bytes left over mean the Remaining Length and the content disagree.
    private static void EnsureEnd(ref SequenceReader<byte> r, MqttPacketType type)
    {
        if (!r.End)
        {
            MqttThrow.Malformed($"{PacketName(type)} has {r.Remaining} unexpected trailing bytes");
        }
    }

    internal static string PacketName(MqttPacketType type) => type switch
    {
        MqttPacketType.Connect => "CONNECT",
        MqttPacketType.ConnAck => "CONNACK",
        MqttPacketType.Publish => "PUBLISH",
        MqttPacketType.PubAck => "PUBACK",
        MqttPacketType.PubRec => "PUBREC",
        MqttPacketType.PubRel => "PUBREL",
        MqttPacketType.PubComp => "PUBCOMP",
        MqttPacketType.Subscribe => "SUBSCRIBE",
        MqttPacketType.SubAck => "SUBACK",
        MqttPacketType.Unsubscribe => "UNSUBSCRIBE",
        MqttPacketType.UnsubAck => "UNSUBACK",
        MqttPacketType.PingReq => "PINGREQ",
        MqttPacketType.PingResp => "PINGRESP",
        MqttPacketType.Disconnect => "DISCONNECT",
        MqttPacketType.Auth => "AUTH",
        _ => $"packet type {(int)type}",
    };
}
