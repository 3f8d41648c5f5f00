using System.Buffers;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Codec;

/// <summary>
/// Encodes MQTT 3.1.1 and 5.0 control packets into an <see cref="IBufferWriter{T}"/>. Every length is
/// computed first, so each packet is written front to back without back-patching or intermediate arrays.
/// For 3.1.1, properties and 5.0-only fields are left out and reason codes become 3.1.1 return codes.
/// Writing does not flush: callers batch packets and flush once.
/// </summary>
public static class MqttPacketWriter
{
    // A PUBLISH up to this size is requested as one span; above it the payload streams through smaller ones.
    private const int SingleSpanLimit = 4096;

    public static void Write(IBufferWriter<byte> output, MqttPacket packet, MqttProtocolVersion version)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(packet);

        var layout = Measure(packet, version);
        int headerSize = 1 + MqttWire.VariableByteIntegerSize(layout.RemainingLength);
        int total = headerSize + layout.RemainingLength;
        int sizeHint = total <= SingleSpanLimit ? total : total - layout.PayloadLength;

        var w = new MqttBufferWriter(output, sizeHint);
        switch (packet)
        {
            case PublishPacket publish:
                WritePublish(ref w, publish, version, layout);
                break;
            case PubAckPacket ack:
                WritePubAck(ref w, ack, version, layout);
                break;
            case ConnectPacket connect:
                WriteConnect(ref w, connect, version, layout);
                break;
            case ConnAckPacket connAck:
                WriteConnAck(ref w, connAck, version, layout);
                break;
            case SubscribePacket subscribe:
                WriteSubscribe(ref w, subscribe, version, layout);
                break;
            case SubAckPacket subAck:
                WriteSubAck(ref w, subAck, version, layout);
                break;
            case UnsubscribePacket unsubscribe:
                WriteUnsubscribe(ref w, unsubscribe, version, layout);
                break;
            case UnsubAckPacket unsubAck:
                WriteUnsubAck(ref w, unsubAck, version, layout);
                break;
            case PingReqPacket:
                w.WriteFixedHeader((byte)MqttPacketType.PingReq << 4, 0);
                break;
            case PingRespPacket:
                w.WriteFixedHeader((byte)MqttPacketType.PingResp << 4, 0);
                break;
            case DisconnectPacket disconnect:
                WriteReasonAndProperties(ref w, MqttPacketType.Disconnect, disconnect.ReasonCode, disconnect.Properties, MqttPropertyScope.Disconnect, layout);
                break;
            case AuthPacket auth:
                WriteReasonAndProperties(ref w, MqttPacketType.Auth, auth.ReasonCode, auth.Properties, MqttPropertyScope.Auth, layout);
                break;
        }
        w.Commit();
    }

    /// <summary>Total encoded size (fixed header included); the engine uses it to honour a client's Maximum Packet Size.</summary>
    public static int GetEncodedSize(MqttPacket packet, MqttProtocolVersion version)
    {
        ArgumentNullException.ThrowIfNull(packet);
        int remaining = Measure(packet, version).RemainingLength;
        return 1 + MqttWire.VariableByteIntegerSize(remaining) + remaining;
    }

    /// <summary>Lengths computed once and used both for the headers and for the writes.</summary>
    private readonly record struct Layout(int RemainingLength, int PropertiesLength, int WillPropertiesLength = 0, int PayloadLength = 0);

    private static Layout Measure(MqttPacket packet, MqttProtocolVersion version)
    {
        if (version is not (MqttProtocolVersion.V311 or MqttProtocolVersion.V500))
        {
            throw new ArgumentOutOfRangeException(nameof(version), version, "unknown MQTT protocol version");
        }
        bool v5 = version == MqttProtocolVersion.V500;

        Layout layout = packet switch
        {
            PublishPacket p => MeasurePublish(p, v5),
            PubAckPacket p => MeasureReasonAck(p.ReasonCode, p.Properties, MqttPropertyScope.PubAck, v5, fixedPart: 2),
            ConnectPacket p => MeasureConnect(p, v5),
            ConnAckPacket p => WithProperties(2, p.Properties, MqttPropertyScope.ConnAck, v5),
            SubscribePacket p => MeasureSubscribe(p, v5),
            SubAckPacket p => MeasureSubAck(p, v5),
            UnsubscribePacket p => MeasureUnsubscribe(p, v5),
            UnsubAckPacket p => v5
                ? WithProperties(2 + RequireNonEmpty(p.ReasonCodes.Count, "UNSUBACK reason codes"), p.Properties, MqttPropertyScope.UnsubAck, v5)
                : new Layout(2, 0),
            PingReqPacket or PingRespPacket => new Layout(0, 0),
            DisconnectPacket p => v5 ? MeasureReasonAck(p.ReasonCode, p.Properties, MqttPropertyScope.Disconnect, v5, fixedPart: 0) : new Layout(0, 0),
            AuthPacket p => v5 ? MeasureAuth(p) : throw new ArgumentException("AUTH does not exist in MQTT 3.1.1", nameof(packet)),
            _ => throw new ArgumentException($"unknown packet {packet.GetType().Name}", nameof(packet)),
        };

        if (layout.RemainingLength > MqttWire.MaxVariableByteInteger)
        {
            throw new ArgumentException($"Remaining Length {layout.RemainingLength} exceeds the MQTT maximum {MqttWire.MaxVariableByteInteger}", nameof(packet));
        }
        return layout;
    }

    private static Layout WithProperties(int fixedPart, MqttProperties? properties, MqttPropertyScope scope, bool v5)
    {
        if (!v5)
        {
            return new Layout(fixedPart, 0);
        }
        int propertiesLength = MqttPropertyCodec.GetLength(properties, scope);
        return new Layout(checked(fixedPart + MqttWire.VariableByteIntegerSize(propertiesLength) + propertiesLength), propertiesLength);
    }

    // 5.0 short forms (§3.4.2.1, §3.14.2.1): drop the properties when empty, and the reason code too when Success.
    private static Layout MeasureReasonAck(MqttReasonCode reasonCode, MqttProperties? properties, MqttPropertyScope scope, bool v5, int fixedPart)
    {
        if (!v5)
        {
            return new Layout(fixedPart, 0);
        }
        int propertiesLength = MqttPropertyCodec.GetLength(properties, scope);
        if (propertiesLength == 0)
        {
            return new Layout(reasonCode == MqttReasonCode.Success ? fixedPart : fixedPart + 1, 0);
        }
        return new Layout(fixedPart + 1 + MqttWire.VariableByteIntegerSize(propertiesLength) + propertiesLength, propertiesLength);
    }

    // §3.15.2.1: both Reason Code and Property Length are omitted, or neither.
    private static Layout MeasureAuth(AuthPacket auth)
    {
        int propertiesLength = MqttPropertyCodec.GetLength(auth.Properties, MqttPropertyScope.Auth);
        if (propertiesLength == 0 && auth.ReasonCode == MqttReasonCode.Success)
        {
            return new Layout(0, 0);
        }
        return new Layout(1 + MqttWire.VariableByteIntegerSize(propertiesLength) + propertiesLength, propertiesLength);
    }

    private static Layout MeasurePublish(PublishPacket p, bool v5)
    {
        long payloadLength = p.Payload.Length;
        if (payloadLength > MqttWire.MaxVariableByteInteger)
        {
            throw new ArgumentException($"PUBLISH payload of {payloadLength} bytes exceeds the MQTT maximum", nameof(p));
        }
        int size = MqttWire.StringSize(p.Topic) + (p.Qos == MqttQos.AtMostOnce ? 0 : 2);
        Layout layout = WithProperties(size, p.Properties, MqttPropertyScope.Publish, v5);
        return layout with { RemainingLength = checked(layout.RemainingLength + (int)payloadLength), PayloadLength = (int)payloadLength };
    }

    private static Layout MeasureConnect(ConnectPacket p, bool v5)
    {
        // Protocol Name (6), Protocol Level (1), Connect Flags (1), Keep Alive (2).
        int size = 10 + MqttWire.StringSize(p.ClientId);
        int propertiesLength = 0;
        int willPropertiesLength = 0;
        if (v5)
        {
            propertiesLength = MqttPropertyCodec.GetLength(p.Properties, MqttPropertyScope.Connect);
            size += MqttWire.VariableByteIntegerSize(propertiesLength) + propertiesLength;
        }
        if (p.Will is { } will)
        {
            size += MqttWire.StringSize(will.Topic) + MqttWire.BinarySize(will.Payload.Span);
            if (v5)
            {
                willPropertiesLength = MqttPropertyCodec.GetLength(will.Properties, MqttPropertyScope.Will);
                size += MqttWire.VariableByteIntegerSize(willPropertiesLength) + willPropertiesLength;
            }
        }
        if (p.UserName is { } userName)
        {
            size += MqttWire.StringSize(userName);
        }
        if (p.Password is { } password)
        {
            size += MqttWire.BinarySize(password.Span);
        }
        return new Layout(size, propertiesLength, willPropertiesLength);
    }

    private static Layout MeasureSubscribe(SubscribePacket p, bool v5)
    {
        int size = 2;
        foreach (TopicSubscription subscription in p.Subscriptions)
        {
            size = checked(size + MqttWire.StringSize(subscription.Filter) + 1);
        }
        RequireNonEmpty(p.Subscriptions.Count, "SUBSCRIBE subscriptions");
        return WithProperties(size, p.Properties, MqttPropertyScope.Subscribe, v5);
    }

    private static Layout MeasureSubAck(SubAckPacket p, bool v5) =>
        WithProperties(2 + RequireNonEmpty(p.ReasonCodes.Count, "SUBACK reason codes"), p.Properties, MqttPropertyScope.SubAck, v5);

    private static Layout MeasureUnsubscribe(UnsubscribePacket p, bool v5)
    {
        int size = 2;
        foreach (string filter in p.Filters)
        {
            size = checked(size + MqttWire.StringSize(filter));
        }
        RequireNonEmpty(p.Filters.Count, "UNSUBSCRIBE filters");
        return WithProperties(size, p.Properties, MqttPropertyScope.Unsubscribe, v5);
    }

    // An empty list would encode a packet the peer must treat as a protocol error.
    private static int RequireNonEmpty(int count, string what) =>
        count > 0 ? count : throw new ArgumentException($"{what} must not be empty");

    private static void WriteConnect(ref MqttBufferWriter w, ConnectPacket p, MqttProtocolVersion version, Layout layout)
    {
        w.WriteFixedHeader((byte)MqttPacketType.Connect << 4, layout.RemainingLength);
        w.WriteString("MQTT");
        w.WriteByte((byte)version);

        WillMessage? will = p.Will;
        int flags = p.CleanStart ? 0x02 : 0;
        if (will is not null)
        {
            flags |= 0x04 | ((int)will.Qos << 3) | (will.Retain ? 0x20 : 0);
        }
        if (p.Password is not null)
        {
            flags |= 0x40;
        }
        if (p.UserName is not null)
        {
            flags |= 0x80;
        }
        w.WriteByte((byte)flags);
        w.WriteUInt16(p.KeepAliveSeconds);

        bool v5 = version == MqttProtocolVersion.V500;
        if (v5)
        {
            MqttPropertyCodec.Write(ref w, p.Properties, MqttPropertyScope.Connect, layout.PropertiesLength);
        }
        w.WriteString(p.ClientId);
        if (will is not null)
        {
            if (v5)
            {
                MqttPropertyCodec.Write(ref w, will.Properties, MqttPropertyScope.Will, layout.WillPropertiesLength);
            }
            w.WriteString(will.Topic);
            w.WriteBinary(will.Payload.Span);
        }
        if (p.UserName is { } userName)
        {
            w.WriteString(userName);
        }
        if (p.Password is { } password)
        {
            w.WriteBinary(password.Span);
        }
    }

    private static void WriteConnAck(ref MqttBufferWriter w, ConnAckPacket p, MqttProtocolVersion version, Layout layout)
    {
        w.WriteFixedHeader((byte)MqttPacketType.ConnAck << 4, layout.RemainingLength);
        // Session Present only accompanies an accepted connection (5.0 [MQTT-3.2.2-6], 3.1.1 [MQTT-3.2.2-4]).
        w.WriteByte(p.SessionPresent && p.ReasonCode == MqttReasonCode.Success ? (byte)1 : (byte)0);
        if (version == MqttProtocolVersion.V311)
        {
            w.WriteByte(MqttReasonCodes.ToConnectReturnCode(p.ReasonCode));
            return;
        }
        w.WriteByte((byte)p.ReasonCode);
        MqttPropertyCodec.Write(ref w, p.Properties, MqttPropertyScope.ConnAck, layout.PropertiesLength);
    }

    private static void WritePublish(ref MqttBufferWriter w, PublishPacket p, MqttProtocolVersion version, Layout layout)
    {
        int flags = ((int)p.Qos << 1) | (p.Retain ? 0x01 : 0) | (p.Dup && p.Qos != MqttQos.AtMostOnce ? 0x08 : 0);
        w.WriteFixedHeader((byte)(((int)MqttPacketType.Publish << 4) | flags), layout.RemainingLength);
        w.WriteString(p.Topic);
        if (p.Qos != MqttQos.AtMostOnce)
        {
            w.WriteUInt16(p.PacketId);
        }
        if (version == MqttProtocolVersion.V500)
        {
            MqttPropertyCodec.Write(ref w, p.Properties, MqttPropertyScope.Publish, layout.PropertiesLength);
        }
        w.Write(p.Payload);
    }

    private static void WritePubAck(ref MqttBufferWriter w, PubAckPacket p, MqttProtocolVersion version, Layout layout)
    {
        // [MQTT-3.6.1-1]: PUBREL carries flags 0010.
        int flags = p.Type == MqttPacketType.PubRel ? 0x02 : 0;
        w.WriteFixedHeader((byte)(((int)p.Type << 4) | flags), layout.RemainingLength);
        w.WriteUInt16(p.PacketId);
        if (version == MqttProtocolVersion.V500 && layout.RemainingLength > 2)
        {
            w.WriteByte((byte)p.ReasonCode);
            if (layout.RemainingLength > 3)
            {
                MqttPropertyCodec.Write(ref w, p.Properties, MqttPropertyScope.PubAck, layout.PropertiesLength);
            }
        }
    }

    private static void WriteSubscribe(ref MqttBufferWriter w, SubscribePacket p, MqttProtocolVersion version, Layout layout)
    {
        w.WriteFixedHeader(((byte)MqttPacketType.Subscribe << 4) | 0x02, layout.RemainingLength);
        w.WriteUInt16(p.PacketId);
        bool v5 = version == MqttProtocolVersion.V500;
        if (v5)
        {
            MqttPropertyCodec.Write(ref w, p.Properties, MqttPropertyScope.Subscribe, layout.PropertiesLength);
        }
        foreach (TopicSubscription subscription in p.Subscriptions)
        {
            w.WriteString(subscription.Filter);
            SubscriptionOptions o = subscription.Options;
            int options = (int)o.MaximumQos;
            if (v5)
            {
                options |= (o.NoLocal ? 0x04 : 0) | (o.RetainAsPublished ? 0x08 : 0) | ((int)o.RetainHandling << 4);
            }
            w.WriteByte((byte)options);
        }
    }

    private static void WriteSubAck(ref MqttBufferWriter w, SubAckPacket p, MqttProtocolVersion version, Layout layout)
    {
        w.WriteFixedHeader((byte)MqttPacketType.SubAck << 4, layout.RemainingLength);
        w.WriteUInt16(p.PacketId);
        bool v5 = version == MqttProtocolVersion.V500;
        if (v5)
        {
            MqttPropertyCodec.Write(ref w, p.Properties, MqttPropertyScope.SubAck, layout.PropertiesLength);
        }
        foreach (MqttReasonCode code in p.ReasonCodes)
        {
            w.WriteByte(v5 ? (byte)code : MqttReasonCodes.ToSubscribeReturnCode(code));
        }
    }

    private static void WriteUnsubscribe(ref MqttBufferWriter w, UnsubscribePacket p, MqttProtocolVersion version, Layout layout)
    {
        w.WriteFixedHeader(((byte)MqttPacketType.Unsubscribe << 4) | 0x02, layout.RemainingLength);
        w.WriteUInt16(p.PacketId);
        if (version == MqttProtocolVersion.V500)
        {
            MqttPropertyCodec.Write(ref w, p.Properties, MqttPropertyScope.Unsubscribe, layout.PropertiesLength);
        }
        foreach (string filter in p.Filters)
        {
            w.WriteString(filter);
        }
    }

    private static void WriteUnsubAck(ref MqttBufferWriter w, UnsubAckPacket p, MqttProtocolVersion version, Layout layout)
    {
        w.WriteFixedHeader((byte)MqttPacketType.UnsubAck << 4, layout.RemainingLength);
        w.WriteUInt16(p.PacketId);
        if (version == MqttProtocolVersion.V500)
        {
            MqttPropertyCodec.Write(ref w, p.Properties, MqttPropertyScope.UnsubAck, layout.PropertiesLength);
            foreach (MqttReasonCode code in p.ReasonCodes)
            {
                w.WriteByte((byte)code);
            }
        }
    }

    // DISCONNECT and AUTH: reason code and properties, each present only when the layout says so.
    private static void WriteReasonAndProperties(ref MqttBufferWriter w, MqttPacketType type, MqttReasonCode reasonCode,
        MqttProperties? properties, MqttPropertyScope scope, Layout layout)
    {
        w.WriteFixedHeader((byte)((int)type << 4), layout.RemainingLength);
        if (layout.RemainingLength > 0)
        {
            w.WriteByte((byte)reasonCode);
            if (layout.RemainingLength > 1)
            {
                MqttPropertyCodec.Write(ref w, properties, scope, layout.PropertiesLength);
            }
        }
    }
}
