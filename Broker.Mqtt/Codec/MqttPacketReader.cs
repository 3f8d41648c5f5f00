using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Codec;

/// <summary>
/// Decodes MQTT 3.1.1 and 5.0 control packets from a pipe's buffer. Synchronous and allocation-light:
/// the caller owns the loop and calls <c>AdvanceTo(consumed, examined)</c> after every attempt.
/// </summary>
public static class MqttPacketReader
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

    // 5.0 §3.1, 3.1.1 §3.1.
    // [MQTT-3.1.2-1] protocol name "MQTT"; [MQTT-3.1.2-2] unsupported level -> CONNACK 0x01 (3.1.1) / 0x84 (5.0);
    // [MQTT-3.1.2-3] reserved flag 0; Will flags: 3.1.1 [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-14]
    // [MQTT-3.1.2-15], 5.0 [MQTT-3.1.2-11] [MQTT-3.1.2-12] [MQTT-3.1.2-13]; 3.1.1 password needs a user
    // name [MQTT-3.1.2-22]; strings are UTF-8 [MQTT-3.1.3-4]; the Will Topic is a Topic Name [MQTT-3.1.3-10].
    private static ConnectPacket ReadConnect(ref SequenceReader<byte> r)
    {
        MqttProtocolVersion version = ReadProtocolNameAndLevel(ref r);
        bool v5 = version == MqttProtocolVersion.V500;

        byte connectFlags = MqttWire.ReadByte(ref r);
        if ((connectFlags & 0x01) != 0)
        {
            MqttThrow.Malformed("CONNECT reserved flag is set [MQTT-3.1.2-3]");
        }
        bool cleanStart = (connectFlags & 0x02) != 0;
        bool hasWill = (connectFlags & 0x04) != 0;
        int willQos = (connectFlags >> 3) & 0x03;
        bool willRetain = (connectFlags & 0x20) != 0;
        bool hasPassword = (connectFlags & 0x40) != 0;
        bool hasUserName = (connectFlags & 0x80) != 0;

        if (willQos == 3)
        {
            MqttThrow.Malformed("CONNECT Will QoS 3 [MQTT-3.1.2-14]");
        }
        if (!hasWill && (willQos != 0 || willRetain))
        {
            MqttThrow.Malformed("CONNECT Will QoS or Will Retain set without the Will Flag [MQTT-3.1.2-11]");
        }
        if (!v5 && hasPassword && !hasUserName)
        {
            MqttThrow.Malformed("CONNECT Password Flag set without User Name Flag [MQTT-3.1.2-22]");
        }

        var connect = new ConnectPacket
        {
            ProtocolVersion = version,
            CleanStart = cleanStart,
            KeepAliveSeconds = MqttWire.ReadUInt16(ref r),
        };
        if (v5)
        {
            connect.Properties = MqttPropertyCodec.Read(ref r, MqttPropertyScope.Connect);
        }

        connect.ClientId = MqttWire.ReadString(ref r);

        if (hasWill)
        {
            MqttProperties? willProperties = v5 ? MqttPropertyCodec.Read(ref r, MqttPropertyScope.Will) : null;
            string willTopic = MqttWire.ReadString(ref r);
            if (!MqttTopic.IsValidTopicName(willTopic))
            {
                // 5.0 CONNACK 0x90 is defined for exactly this: "The Will Topic Name is not malformed, but is not accepted".
                MqttThrow.Violation(MqttReasonCode.TopicNameInvalid, "Will Topic is not a valid Topic Name [MQTT-3.1.3-10]");
            }
            connect.Will = new WillMessage
            {
                Topic = willTopic,
                Payload = MqttWire.ReadBinary(ref r),
                Qos = (MqttQos)willQos,
                Retain = willRetain,
                Properties = willProperties,
            };
        }
        if (hasUserName)
        {
            connect.UserName = MqttWire.ReadString(ref r);
        }
        if (hasPassword)
        {
            connect.Password = MqttWire.ReadBinary(ref r);
        }

        EnsureEnd(ref r, MqttPacketType.Connect);
        return connect;
    }

    private static MqttProtocolVersion ReadProtocolNameAndLevel(ref SequenceReader<byte> r)
    {
        int nameLength = MqttWire.ReadUInt16(ref r);
        if (r.Remaining < nameLength + 1)
        {
            MqttThrow.Malformed("CONNECT ends inside the protocol name");
        }

        Span<byte> name = stackalloc byte[6];
        bool knownLength = nameLength is 4 or 6;
        if (knownLength)
        {
            name = name[..nameLength];
            r.TryCopyTo(name);
        }
        r.Advance(nameLength);
        byte level = MqttWire.ReadByte(ref r);

        if (knownLength && name.SequenceEqual("MQTT"u8))
        {
            switch (level)
            {
                case (byte)MqttProtocolVersion.V311:
                    return MqttProtocolVersion.V311;
                case (byte)MqttProtocolVersion.V500:
                    return MqttProtocolVersion.V500;
            }
            MqttThrow.Violation(MqttReasonCode.UnsupportedProtocolVersion, $"unsupported MQTT protocol level {level} [MQTT-3.1.2-2]");
        }
        if (knownLength && level == 3 && name.SequenceEqual("MQIsdp"u8))
        {
            MqttThrow.Violation(MqttReasonCode.UnsupportedProtocolVersion, "MQTT 3.1 (MQIsdp) is not supported");
        }
        // 5.0 §3.1.2.1: a server that wants to reveal itself as MQTT MAY answer 0x84 to a foreign protocol name.
        MqttThrow.Violation(MqttReasonCode.UnsupportedProtocolVersion, "protocol name is not \"MQTT\" [MQTT-3.1.2-1]");
        return default;
    }

    // 5.0 §3.2, 3.1.1 §3.2. Reserved acknowledge flag bits are 0 [MQTT-3.2.2-1]; Session Present is 0 when the
    // connection is refused (3.1.1 [MQTT-3.2.2-4], 5.0 [MQTT-3.2.2-6]).
    private static ConnAckPacket ReadConnAck(ref SequenceReader<byte> r, MqttProtocolVersion version)
    {
        byte ackFlags = MqttWire.ReadByte(ref r);
        if ((ackFlags & 0xFE) != 0)
        {
            MqttThrow.Malformed("CONNACK reserved flags are set [MQTT-3.2.2-1]");
        }
        byte code = MqttWire.ReadByte(ref r);

        MqttReasonCode reasonCode;
        if (version == MqttProtocolVersion.V311)
        {
            if (!MqttReasonCodes.TryFromConnectReturnCode(code, out reasonCode))
            {
                MqttThrow.ProtocolError($"CONNACK return code 0x{code:X2} is reserved");
            }
        }
        else
        {
            reasonCode = CheckReasonCode(MqttPacketType.ConnAck, code);
        }

        bool sessionPresent = (ackFlags & 0x01) != 0;
        if (sessionPresent && reasonCode != MqttReasonCode.Success)
        {
            MqttThrow.ProtocolError("CONNACK refuses the connection but sets Session Present [MQTT-3.2.2-6]");
        }

        var connAck = new ConnAckPacket { SessionPresent = sessionPresent, ReasonCode = reasonCode };
        if (version == MqttProtocolVersion.V500)
        {
            connAck.Properties = MqttPropertyCodec.Read(ref r, MqttPropertyScope.ConnAck);
        }
        EnsureEnd(ref r, MqttPacketType.ConnAck);
        return connAck;
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

    // 5.0 §3.8, 3.1.1 §3.8. At least one filter ([MQTT-3.8.3-3], a Protocol Error in 5.0 §3.8.3); filters are
    // valid ([MQTT-4.7.1-2], [MQTT-4.7.1-3], shared [MQTT-4.8.2-1] [MQTT-4.8.2-2]). 3.1.1: the requested-QoS
    // byte has its upper 6 bits 0 [MQTT-3-8.3-4]. 5.0: options bits 6-7 are 0 [MQTT-3.8.3-5], Retain Handling 3
    // is a Protocol Error, and so is No Local on a shared subscription [MQTT-3.8.3-4].
    private static SubscribePacket ReadSubscribe(ref SequenceReader<byte> r, MqttProtocolVersion version)
    {
        var subscribe = new SubscribePacket { PacketId = ReadPacketId(ref r, MqttPacketType.Subscribe) };
        bool v5 = version == MqttProtocolVersion.V500;
        if (v5)
        {
            subscribe.Properties = MqttPropertyCodec.Read(ref r, MqttPropertyScope.Subscribe);
        }
        if (r.End)
        {
            MqttThrow.ProtocolError("SUBSCRIBE without a Topic Filter [MQTT-3.8.3-3]");
        }

        while (!r.End)
        {
            string filter = ReadTopicFilter(ref r, MqttPacketType.Subscribe);
            byte options = MqttWire.ReadByte(ref r);
            var qos = (MqttQos)(options & 0x03);
            if (!v5)
            {
                if ((options & 0xFC) != 0)
                {
                    MqttThrow.Malformed("SUBSCRIBE requested QoS byte has reserved bits set [MQTT-3-8.3-4]");
                }
                if ((byte)qos == 3)
                {
                    MqttThrow.Malformed("SUBSCRIBE requested QoS 3 [MQTT-3-8.3-4]");
                }
                subscribe.Subscriptions.Add(new TopicSubscription(filter, new SubscriptionOptions(qos)));
                continue;
            }

            if ((options & 0xC0) != 0)
            {
                MqttThrow.Malformed("SUBSCRIBE options have reserved bits set [MQTT-3.8.3-5]");
            }
            if ((byte)qos == 3)
            {
                MqttThrow.Malformed("SUBSCRIBE Maximum QoS 3");
            }
            int retainHandling = (options >> 4) & 0x03;
            if (retainHandling == 3)
            {
                MqttThrow.ProtocolError("SUBSCRIBE Retain Handling 3");
            }
            bool noLocal = (options & 0x04) != 0;
            if (noLocal && MqttTopic.IsShared(filter))
            {
                MqttThrow.ProtocolError("No Local on a shared subscription [MQTT-3.8.3-4]");
            }
            subscribe.Subscriptions.Add(new TopicSubscription(filter, new SubscriptionOptions(
                qos, noLocal, RetainAsPublished: (options & 0x08) != 0, (MqttRetainHandling)retainHandling)));
        }
        return subscribe;
    }

    // 5.0 §3.9, 3.1.1 §3.9. One return code per filter; 3.1.1 allows only 0x00-0x02 and 0x80.
    private static SubAckPacket ReadSubAck(ref SequenceReader<byte> r, MqttProtocolVersion version)
    {
        var subAck = new SubAckPacket { PacketId = ReadPacketId(ref r, MqttPacketType.SubAck) };
        bool v5 = version == MqttProtocolVersion.V500;
        if (v5)
        {
            subAck.Properties = MqttPropertyCodec.Read(ref r, MqttPropertyScope.SubAck);
        }
        if (r.End)
        {
            MqttThrow.ProtocolError("SUBACK without a return code");
        }
        while (!r.End)
        {
            byte code = MqttWire.ReadByte(ref r);
            if (!v5 && code is not (0x00 or 0x01 or 0x02 or 0x80))
            {
                MqttThrow.ProtocolError($"SUBACK return code 0x{code:X2} is not allowed in MQTT 3.1.1");
            }
            subAck.ReasonCodes.Add(CheckReasonCode(MqttPacketType.SubAck, code));
        }
        return subAck;
    }

    // 5.0 §3.10, 3.1.1 §3.10. Flags 0010 were checked in the fixed header [MQTT-3.10.1-1]; at least one
    // filter ([MQTT-3.10.3-2], a Protocol Error in 5.0 §3.10.3).
    private static UnsubscribePacket ReadUnsubscribe(ref SequenceReader<byte> r, MqttProtocolVersion version)
    {
        var unsubscribe = new UnsubscribePacket { PacketId = ReadPacketId(ref r, MqttPacketType.Unsubscribe) };
        if (version == MqttProtocolVersion.V500)
        {
            unsubscribe.Properties = MqttPropertyCodec.Read(ref r, MqttPropertyScope.Unsubscribe);
        }
        if (r.End)
        {
            MqttThrow.ProtocolError("UNSUBSCRIBE without a Topic Filter [MQTT-3.10.3-2]");
        }
        while (!r.End)
        {
            unsubscribe.Filters.Add(ReadTopicFilter(ref r, MqttPacketType.Unsubscribe));
        }
        return unsubscribe;
    }

    // 5.0 §3.11, 3.1.1 §3.11. 3.1.1 UNSUBACK is the Packet Identifier alone.
    private static UnsubAckPacket ReadUnsubAck(ref SequenceReader<byte> r, MqttProtocolVersion version)
    {
        var unsubAck = new UnsubAckPacket { PacketId = ReadPacketId(ref r, MqttPacketType.UnsubAck) };
        if (version == MqttProtocolVersion.V500)
        {
            unsubAck.Properties = MqttPropertyCodec.Read(ref r, MqttPropertyScope.UnsubAck);
            if (r.End)
            {
                MqttThrow.ProtocolError("UNSUBACK without a reason code");
            }
            while (!r.End)
            {
                unsubAck.ReasonCodes.Add(CheckReasonCode(MqttPacketType.UnsubAck, MqttWire.ReadByte(ref r)));
            }
        }
        EnsureEnd(ref r, MqttPacketType.UnsubAck);
        return unsubAck;
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

    private static string ReadTopicFilter(ref SequenceReader<byte> r, MqttPacketType type)
    {
        string filter = MqttWire.ReadString(ref r);
        if (!MqttTopic.IsValidTopicFilter(filter))
        {
            MqttThrow.Violation(MqttReasonCode.TopicFilterInvalid, $"{PacketName(type)} Topic Filter \"{filter}\" is not valid [MQTT-4.7.1-2] [MQTT-4.7.1-3]");
        }
        return filter;
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
