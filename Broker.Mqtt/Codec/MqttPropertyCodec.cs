using System.Buffers;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Codec;

/// <summary>Where a property block sits; each place admits its own set of identifiers (5.0 §2.2.2.2, Table 2-4).</summary>
internal enum MqttPropertyScope
{
    Connect,
    Will,
    ConnAck,
    Publish,
    PubAck,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

/// <summary>Property identifiers (5.0 §2.2.2.2).</summary>
internal static class MqttPropertyId
{
    public const byte PayloadFormatIndicator = 0x01;
    public const byte MessageExpiryInterval = 0x02;
    public const byte ContentType = 0x03;
    public const byte ResponseTopic = 0x08;
    public const byte CorrelationData = 0x09;
    public const byte SubscriptionIdentifier = 0x0B;
    public const byte SessionExpiryInterval = 0x11;
    public const byte AssignedClientIdentifier = 0x12;
    public const byte ServerKeepAlive = 0x13;
    public const byte AuthenticationMethod = 0x15;
    public const byte AuthenticationData = 0x16;
    public const byte RequestProblemInformation = 0x17;
    public const byte WillDelayInterval = 0x18;
    public const byte RequestResponseInformation = 0x19;
    public const byte ResponseInformation = 0x1A;
    public const byte ServerReference = 0x1C;
    public const byte ReasonString = 0x1F;
    public const byte ReceiveMaximum = 0x21;
    public const byte TopicAliasMaximum = 0x22;
    public const byte TopicAlias = 0x23;
    public const byte MaximumQos = 0x24;
    public const byte RetainAvailable = 0x25;
    public const byte UserProperty = 0x26;
    public const byte MaximumPacketSize = 0x27;
    public const byte WildcardSubscriptionAvailable = 0x28;
    public const byte SubscriptionIdentifierAvailable = 0x29;
    public const byte SharedSubscriptionAvailable = 0x2A;
}

/// <summary>
/// Reads and writes MQTT 5.0 property blocks (§2.2.2). Allowed identifiers are a 64-bit mask per scope
/// (every identifier is below 0x40), which also tracks duplicates while reading.
/// </summary>
internal static class MqttPropertyCodec
{
    private static ulong Bits(params ReadOnlySpan<byte> ids)
    {
        ulong mask = 0;
        foreach (byte id in ids)
        {
            mask |= 1UL << id;
        }
        return mask;
    }

    private static readonly ulong[] s_allowed =
    [
        // CONNECT §3.1.2.11
        Bits(MqttPropertyId.SessionExpiryInterval, MqttPropertyId.ReceiveMaximum, MqttPropertyId.MaximumPacketSize,
            MqttPropertyId.TopicAliasMaximum, MqttPropertyId.RequestResponseInformation, MqttPropertyId.RequestProblemInformation,
            MqttPropertyId.UserProperty, MqttPropertyId.AuthenticationMethod, MqttPropertyId.AuthenticationData),
        // Will §3.1.3.2
        Bits(MqttPropertyId.WillDelayInterval, MqttPropertyId.PayloadFormatIndicator, MqttPropertyId.MessageExpiryInterval,
            MqttPropertyId.ContentType, MqttPropertyId.ResponseTopic, MqttPropertyId.CorrelationData, MqttPropertyId.UserProperty),
        // CONNACK §3.2.2.3
        Bits(MqttPropertyId.SessionExpiryInterval, MqttPropertyId.ReceiveMaximum, MqttPropertyId.MaximumQos,
            MqttPropertyId.RetainAvailable, MqttPropertyId.MaximumPacketSize, MqttPropertyId.AssignedClientIdentifier,
            MqttPropertyId.TopicAliasMaximum, MqttPropertyId.ReasonString, MqttPropertyId.UserProperty,
            MqttPropertyId.WildcardSubscriptionAvailable, MqttPropertyId.SubscriptionIdentifierAvailable,
            MqttPropertyId.SharedSubscriptionAvailable, MqttPropertyId.ServerKeepAlive, MqttPropertyId.ResponseInformation,
            MqttPropertyId.ServerReference, MqttPropertyId.AuthenticationMethod, MqttPropertyId.AuthenticationData),
        // PUBLISH §3.3.2.3
        Bits(MqttPropertyId.PayloadFormatIndicator, MqttPropertyId.MessageExpiryInterval, MqttPropertyId.TopicAlias,
            MqttPropertyId.ResponseTopic, MqttPropertyId.CorrelationData, MqttPropertyId.UserProperty,
            MqttPropertyId.SubscriptionIdentifier, MqttPropertyId.ContentType),
        // PUBACK, PUBREC, PUBREL, PUBCOMP §3.4.2.2 - §3.7.2.2
        Bits(MqttPropertyId.ReasonString, MqttPropertyId.UserProperty),
        // SUBSCRIBE §3.8.2.1
        Bits(MqttPropertyId.SubscriptionIdentifier, MqttPropertyId.UserProperty),
        // SUBACK §3.9.2.1
        Bits(MqttPropertyId.ReasonString, MqttPropertyId.UserProperty),
        // UNSUBSCRIBE §3.10.2.1
        Bits(MqttPropertyId.UserProperty),
        // UNSUBACK §3.11.2.1
        Bits(MqttPropertyId.ReasonString, MqttPropertyId.UserProperty),
        // DISCONNECT §3.14.2.2
        Bits(MqttPropertyId.SessionExpiryInterval, MqttPropertyId.ReasonString, MqttPropertyId.UserProperty,
            MqttPropertyId.ServerReference),
        // AUTH §3.15.2.2
        Bits(MqttPropertyId.AuthenticationMethod, MqttPropertyId.AuthenticationData, MqttPropertyId.ReasonString,
            MqttPropertyId.UserProperty),
    ];

    private static string Name(MqttPropertyScope scope) => scope switch
    {
        MqttPropertyScope.Connect => "CONNECT",
        MqttPropertyScope.Will => "Will Properties",
        MqttPropertyScope.ConnAck => "CONNACK",
        MqttPropertyScope.Publish => "PUBLISH",
        MqttPropertyScope.PubAck => "PUBACK/PUBREC/PUBREL/PUBCOMP",
        MqttPropertyScope.Subscribe => "SUBSCRIBE",
        MqttPropertyScope.SubAck => "SUBACK",
        MqttPropertyScope.Unsubscribe => "UNSUBSCRIBE",
        MqttPropertyScope.UnsubAck => "UNSUBACK",
        MqttPropertyScope.Disconnect => "DISCONNECT",
        _ => "AUTH",
    };

    private static bool Allows(MqttPropertyScope scope, byte id) => (s_allowed[(int)scope] & (1UL << id)) != 0;

    /// <summary>
    /// Reads Property Length and the properties. Returns null for an empty block so a packet without
    /// properties costs no allocation.
    /// </summary>
    public static MqttProperties? Read(ref SequenceReader<byte> reader, MqttPropertyScope scope)
    {
        int length = MqttWire.ReadVariableByteInteger(ref reader);
        if (length == 0)
        {
            return null;
        }
        if (reader.Remaining < length)
        {
            MqttThrow.Malformed($"Property Length {length} exceeds the rest of the {Name(scope)} packet");
        }

        var block = new SequenceReader<byte>(reader.Sequence.Slice(reader.Position, length));
        reader.Advance(length);

        var properties = new MqttProperties();
        ulong seen = 0;
        while (!block.End)
        {
            // The identifier is a Variable Byte Integer (§2.2.2.2) even though every defined one fits a byte.
            int id = MqttWire.ReadVariableByteInteger(ref block);

            // §2.2.2.2: "A Control Packet which contains an Identifier which is not valid for its packet
            // type ... is a Malformed Packet."
            if (id >= 64 || !Allows(scope, (byte)id))
            {
                MqttThrow.Malformed($"property 0x{id:X2} is not valid in {Name(scope)}");
            }

            ulong bit = 1UL << id;
            bool repeatable = id == MqttPropertyId.UserProperty
                || (id == MqttPropertyId.SubscriptionIdentifier && scope == MqttPropertyScope.Publish);
            if ((seen & bit) != 0 && !repeatable)
            {
                // Every property description in §3 says "It is a Protocol Error to include ... more than once".
                MqttThrow.ProtocolError($"property 0x{id:X2} appears more than once in {Name(scope)}");
            }
            seen |= bit;

            ReadOne(ref block, (byte)id, properties);
        }

        // §3.1.2.11.10, §3.15.2.2.3: Authentication Data means nothing without a method.
        if (properties.AuthenticationData is not null && properties.AuthenticationMethod is null)
        {
            MqttThrow.ProtocolError("Authentication Data without Authentication Method");
        }
        return properties;
    }

    private static void ReadOne(ref SequenceReader<byte> r, byte id, MqttProperties p)
    {
        switch (id)
        {
            case MqttPropertyId.PayloadFormatIndicator:
                p.PayloadFormatIndicator = ReadFlag(ref r, "Payload Format Indicator");
                break;
            case MqttPropertyId.MessageExpiryInterval:
                p.MessageExpiryInterval = MqttWire.ReadUInt32(ref r);
                break;
            case MqttPropertyId.ContentType:
                p.ContentType = MqttWire.ReadString(ref r);
                break;
            case MqttPropertyId.ResponseTopic:
                string responseTopic = MqttWire.ReadString(ref r);
                // [MQTT-3.3.2-14] the Response Topic is a Topic Name: it is published to, so no wildcards.
                if (!MqttTopic.IsValidTopicName(responseTopic))
                {
                    MqttThrow.ProtocolError("Response Topic is not a valid Topic Name [MQTT-3.3.2-14]");
                }
                p.ResponseTopic = responseTopic;
                break;
            case MqttPropertyId.CorrelationData:
                p.CorrelationData = MqttWire.ReadBinary(ref r);
                break;
            case MqttPropertyId.SubscriptionIdentifier:
                int subscriptionId = MqttWire.ReadVariableByteInteger(ref r);
                if (subscriptionId == 0)
                {
                    // §3.8.2.1.2: "It is a Protocol Error if the Subscription Identifier has a value of 0."
                    MqttThrow.ProtocolError("Subscription Identifier 0");
                }
                (p.SubscriptionIdentifiers ??= new List<uint>(1)).Add((uint)subscriptionId);
                break;
            case MqttPropertyId.SessionExpiryInterval:
                p.SessionExpiryInterval = MqttWire.ReadUInt32(ref r);
                break;
            case MqttPropertyId.AssignedClientIdentifier:
                p.AssignedClientIdentifier = MqttWire.ReadString(ref r);
                break;
            case MqttPropertyId.ServerKeepAlive:
                p.ServerKeepAlive = MqttWire.ReadUInt16(ref r);
                break;
            case MqttPropertyId.AuthenticationMethod:
                p.AuthenticationMethod = MqttWire.ReadString(ref r);
                break;
            case MqttPropertyId.AuthenticationData:
                p.AuthenticationData = MqttWire.ReadBinary(ref r);
                break;
            case MqttPropertyId.RequestProblemInformation:
                p.RequestProblemInformation = ReadFlag(ref r, "Request Problem Information");
                break;
            case MqttPropertyId.WillDelayInterval:
                p.WillDelayInterval = MqttWire.ReadUInt32(ref r);
                break;
            case MqttPropertyId.RequestResponseInformation:
                p.RequestResponseInformation = ReadFlag(ref r, "Request Response Information");
                break;
            case MqttPropertyId.ResponseInformation:
                p.ResponseInformation = MqttWire.ReadString(ref r);
                break;
            case MqttPropertyId.ServerReference:
                p.ServerReference = MqttWire.ReadString(ref r);
                break;
            case MqttPropertyId.ReasonString:
                p.ReasonString = MqttWire.ReadString(ref r);
                break;
            case MqttPropertyId.ReceiveMaximum:
                p.ReceiveMaximum = ReadNonZeroUInt16(ref r, "Receive Maximum");
                break;
            case MqttPropertyId.TopicAliasMaximum:
                p.TopicAliasMaximum = MqttWire.ReadUInt16(ref r);
                break;
            case MqttPropertyId.TopicAlias:
                ushort alias = MqttWire.ReadUInt16(ref r);
                if (alias == 0)
                {
                    // §3.3.2.3.4: "A Topic Alias of 0 is not permitted" [MQTT-3.3.2-8].
                    MqttThrow.Violation(MqttReasonCode.TopicAliasInvalid, "Topic Alias 0 [MQTT-3.3.2-8]");
                }
                p.TopicAlias = alias;
                break;
            case MqttPropertyId.MaximumQos:
                p.MaximumQos = ReadFlag(ref r, "Maximum QoS");
                break;
            case MqttPropertyId.RetainAvailable:
                p.RetainAvailable = ReadFlag(ref r, "Retain Available");
                break;
            case MqttPropertyId.UserProperty:
                string key = MqttWire.ReadString(ref r);
                string value = MqttWire.ReadString(ref r);
                (p.UserProperties ??= new List<KeyValuePair<string, string>>()).Add(new(key, value));
                break;
            case MqttPropertyId.MaximumPacketSize:
                uint maximumPacketSize = MqttWire.ReadUInt32(ref r);
                if (maximumPacketSize == 0)
                {
                    MqttThrow.ProtocolError("Maximum Packet Size 0");
                }
                p.MaximumPacketSize = maximumPacketSize;
                break;
            case MqttPropertyId.WildcardSubscriptionAvailable:
                p.WildcardSubscriptionAvailable = ReadFlag(ref r, "Wildcard Subscription Available");
                break;
            case MqttPropertyId.SubscriptionIdentifierAvailable:
                p.SubscriptionIdentifiersAvailable = ReadFlag(ref r, "Subscription Identifiers Available");
                break;
            case MqttPropertyId.SharedSubscriptionAvailable:
                p.SharedSubscriptionAvailable = ReadFlag(ref r, "Shared Subscription Available");
                break;
            default:
                // Unreachable: the scope masks only contain the identifiers handled above.
                MqttThrow.Malformed($"property 0x{id:X2} is not defined");
                break;
        }
    }

    // The byte-valued properties are all booleans; §3 makes any other value a Protocol Error.
    private static byte ReadFlag(ref SequenceReader<byte> r, string name)
    {
        byte value = MqttWire.ReadByte(ref r);
        if (value > 1)
        {
            MqttThrow.ProtocolError($"{name} must be 0 or 1, got {value}");
        }
        return value;
    }

    private static ushort ReadNonZeroUInt16(ref SequenceReader<byte> r, string name)
    {
        ushort value = MqttWire.ReadUInt16(ref r);
        if (value == 0)
        {
            MqttThrow.ProtocolError($"{name} 0");
        }
        return value;
    }

    /// <summary>Size of the properties themselves, without the Property Length prefix.</summary>
    public static int GetLength(MqttProperties? p, MqttPropertyScope scope)
    {
        if (p is null)
        {
            return 0;
        }

        ulong allowed = s_allowed[(int)scope];
        int size = 0;
        if (p.PayloadFormatIndicator is not null && Has(allowed, MqttPropertyId.PayloadFormatIndicator)) size += 2;
        if (p.MessageExpiryInterval is not null && Has(allowed, MqttPropertyId.MessageExpiryInterval)) size += 5;
        if (p.ContentType is { } contentType && Has(allowed, MqttPropertyId.ContentType)) size += 1 + MqttWire.StringSize(contentType);
        if (p.ResponseTopic is { } responseTopic && Has(allowed, MqttPropertyId.ResponseTopic)) size += 1 + MqttWire.StringSize(responseTopic);
        if (p.CorrelationData is { } correlation && Has(allowed, MqttPropertyId.CorrelationData)) size += 1 + MqttWire.BinarySize(correlation.Span);
        if (p.SubscriptionIdentifiers is { } ids && Has(allowed, MqttPropertyId.SubscriptionIdentifier))
        {
            foreach (uint id in ids)
            {
                size += 1 + MqttWire.VariableByteIntegerSize(CheckSubscriptionIdentifier(id));
            }
        }
        if (p.SessionExpiryInterval is not null && Has(allowed, MqttPropertyId.SessionExpiryInterval)) size += 5;
        if (p.AssignedClientIdentifier is { } assigned && Has(allowed, MqttPropertyId.AssignedClientIdentifier)) size += 1 + MqttWire.StringSize(assigned);
        if (p.ServerKeepAlive is not null && Has(allowed, MqttPropertyId.ServerKeepAlive)) size += 3;
        if (p.AuthenticationMethod is { } method && Has(allowed, MqttPropertyId.AuthenticationMethod)) size += 1 + MqttWire.StringSize(method);
        if (p.AuthenticationData is { } authData && Has(allowed, MqttPropertyId.AuthenticationData)) size += 1 + MqttWire.BinarySize(authData.Span);
        if (p.RequestProblemInformation is not null && Has(allowed, MqttPropertyId.RequestProblemInformation)) size += 2;
        if (p.WillDelayInterval is not null && Has(allowed, MqttPropertyId.WillDelayInterval)) size += 5;
        if (p.RequestResponseInformation is not null && Has(allowed, MqttPropertyId.RequestResponseInformation)) size += 2;
        if (p.ResponseInformation is { } responseInfo && Has(allowed, MqttPropertyId.ResponseInformation)) size += 1 + MqttWire.StringSize(responseInfo);
        if (p.ServerReference is { } serverReference && Has(allowed, MqttPropertyId.ServerReference)) size += 1 + MqttWire.StringSize(serverReference);
        if (p.ReasonString is { } reason && Has(allowed, MqttPropertyId.ReasonString)) size += 1 + MqttWire.StringSize(reason);
        if (p.ReceiveMaximum is not null && Has(allowed, MqttPropertyId.ReceiveMaximum)) size += 3;
        if (p.TopicAliasMaximum is not null && Has(allowed, MqttPropertyId.TopicAliasMaximum)) size += 3;
        if (p.TopicAlias is not null && Has(allowed, MqttPropertyId.TopicAlias)) size += 3;
        if (p.MaximumQos is not null && Has(allowed, MqttPropertyId.MaximumQos)) size += 2;
        if (p.RetainAvailable is not null && Has(allowed, MqttPropertyId.RetainAvailable)) size += 2;
        if (p.MaximumPacketSize is not null && Has(allowed, MqttPropertyId.MaximumPacketSize)) size += 5;
        if (p.WildcardSubscriptionAvailable is not null && Has(allowed, MqttPropertyId.WildcardSubscriptionAvailable)) size += 2;
        if (p.SubscriptionIdentifiersAvailable is not null && Has(allowed, MqttPropertyId.SubscriptionIdentifierAvailable)) size += 2;
        if (p.SharedSubscriptionAvailable is not null && Has(allowed, MqttPropertyId.SharedSubscriptionAvailable)) size += 2;
        if (p.UserProperties is { } userProperties && Has(allowed, MqttPropertyId.UserProperty))
        {
            foreach (KeyValuePair<string, string> pair in userProperties)
            {
                size += 1 + MqttWire.StringSize(pair.Key) + MqttWire.StringSize(pair.Value);
            }
        }
        return size;
    }

    private static bool Has(ulong allowed, byte id) => (allowed & (1UL << id)) != 0;

    private static int CheckSubscriptionIdentifier(uint id)
    {
        if (id is 0 or > MqttWire.MaxVariableByteInteger)
        {
            throw new ArgumentOutOfRangeException(nameof(id), id, "Subscription Identifier must be 1..268435455");
        }
        return (int)id;
    }

    /// <summary>Writes Property Length and the properties; <paramref name="length"/> comes from <see cref="GetLength"/>.</summary>
    public static void Write(ref MqttBufferWriter w, MqttProperties? p, MqttPropertyScope scope, int length)
    {
        w.WriteVariableByteInteger(length);
        if (p is null || length == 0)
        {
            return;
        }

        // Identifier order, user properties last and in their given order ([MQTT-3.3.2-18] keeps it).
        ulong allowed = s_allowed[(int)scope];
        if (p.PayloadFormatIndicator is { } pfi && Has(allowed, MqttPropertyId.PayloadFormatIndicator)) WriteByte(ref w, MqttPropertyId.PayloadFormatIndicator, pfi);
        if (p.MessageExpiryInterval is { } expiry && Has(allowed, MqttPropertyId.MessageExpiryInterval)) WriteUInt32(ref w, MqttPropertyId.MessageExpiryInterval, expiry);
        if (p.ContentType is { } contentType && Has(allowed, MqttPropertyId.ContentType)) WriteString(ref w, MqttPropertyId.ContentType, contentType);
        if (p.ResponseTopic is { } responseTopic && Has(allowed, MqttPropertyId.ResponseTopic)) WriteString(ref w, MqttPropertyId.ResponseTopic, responseTopic);
        if (p.CorrelationData is { } correlation && Has(allowed, MqttPropertyId.CorrelationData)) WriteBinary(ref w, MqttPropertyId.CorrelationData, correlation.Span);
        if (p.SubscriptionIdentifiers is { } ids && Has(allowed, MqttPropertyId.SubscriptionIdentifier))
        {
            foreach (uint id in ids)
            {
                w.WriteByte(MqttPropertyId.SubscriptionIdentifier);
                w.WriteVariableByteInteger((int)id);
            }
        }
        if (p.SessionExpiryInterval is { } sessionExpiry && Has(allowed, MqttPropertyId.SessionExpiryInterval)) WriteUInt32(ref w, MqttPropertyId.SessionExpiryInterval, sessionExpiry);
        if (p.AssignedClientIdentifier is { } assigned && Has(allowed, MqttPropertyId.AssignedClientIdentifier)) WriteString(ref w, MqttPropertyId.AssignedClientIdentifier, assigned);
        if (p.ServerKeepAlive is { } keepAlive && Has(allowed, MqttPropertyId.ServerKeepAlive)) WriteUInt16(ref w, MqttPropertyId.ServerKeepAlive, keepAlive);
        if (p.AuthenticationMethod is { } method && Has(allowed, MqttPropertyId.AuthenticationMethod)) WriteString(ref w, MqttPropertyId.AuthenticationMethod, method);
        if (p.AuthenticationData is { } authData && Has(allowed, MqttPropertyId.AuthenticationData)) WriteBinary(ref w, MqttPropertyId.AuthenticationData, authData.Span);
        if (p.RequestProblemInformation is { } rpi && Has(allowed, MqttPropertyId.RequestProblemInformation)) WriteByte(ref w, MqttPropertyId.RequestProblemInformation, rpi);
        if (p.WillDelayInterval is { } willDelay && Has(allowed, MqttPropertyId.WillDelayInterval)) WriteUInt32(ref w, MqttPropertyId.WillDelayInterval, willDelay);
        if (p.RequestResponseInformation is { } rri && Has(allowed, MqttPropertyId.RequestResponseInformation)) WriteByte(ref w, MqttPropertyId.RequestResponseInformation, rri);
        if (p.ResponseInformation is { } responseInfo && Has(allowed, MqttPropertyId.ResponseInformation)) WriteString(ref w, MqttPropertyId.ResponseInformation, responseInfo);
        if (p.ServerReference is { } serverReference && Has(allowed, MqttPropertyId.ServerReference)) WriteString(ref w, MqttPropertyId.ServerReference, serverReference);
        if (p.ReasonString is { } reason && Has(allowed, MqttPropertyId.ReasonString)) WriteString(ref w, MqttPropertyId.ReasonString, reason);
        if (p.ReceiveMaximum is { } receiveMaximum && Has(allowed, MqttPropertyId.ReceiveMaximum)) WriteUInt16(ref w, MqttPropertyId.ReceiveMaximum, receiveMaximum);
        if (p.TopicAliasMaximum is { } aliasMaximum && Has(allowed, MqttPropertyId.TopicAliasMaximum)) WriteUInt16(ref w, MqttPropertyId.TopicAliasMaximum, aliasMaximum);
        if (p.TopicAlias is { } alias && Has(allowed, MqttPropertyId.TopicAlias)) WriteUInt16(ref w, MqttPropertyId.TopicAlias, alias);
        if (p.MaximumQos is { } maximumQos && Has(allowed, MqttPropertyId.MaximumQos)) WriteByte(ref w, MqttPropertyId.MaximumQos, maximumQos);
        if (p.RetainAvailable is { } retainAvailable && Has(allowed, MqttPropertyId.RetainAvailable)) WriteByte(ref w, MqttPropertyId.RetainAvailable, retainAvailable);
        if (p.MaximumPacketSize is { } maximumPacketSize && Has(allowed, MqttPropertyId.MaximumPacketSize)) WriteUInt32(ref w, MqttPropertyId.MaximumPacketSize, maximumPacketSize);
        if (p.WildcardSubscriptionAvailable is { } wildcard && Has(allowed, MqttPropertyId.WildcardSubscriptionAvailable)) WriteByte(ref w, MqttPropertyId.WildcardSubscriptionAvailable, wildcard);
        if (p.SubscriptionIdentifiersAvailable is { } subIds && Has(allowed, MqttPropertyId.SubscriptionIdentifierAvailable)) WriteByte(ref w, MqttPropertyId.SubscriptionIdentifierAvailable, subIds);
        if (p.SharedSubscriptionAvailable is { } shared && Has(allowed, MqttPropertyId.SharedSubscriptionAvailable)) WriteByte(ref w, MqttPropertyId.SharedSubscriptionAvailable, shared);
        if (p.UserProperties is { } userProperties && Has(allowed, MqttPropertyId.UserProperty))
        {
            foreach (KeyValuePair<string, string> pair in userProperties)
            {
                w.WriteByte(MqttPropertyId.UserProperty);
                w.WriteString(pair.Key);
                w.WriteString(pair.Value);
            }
        }
    }

    private static void WriteByte(ref MqttBufferWriter w, byte id, byte value)
    {
        w.WriteByte(id);
        w.WriteByte(value);
    }

    private static void WriteUInt16(ref MqttBufferWriter w, byte id, ushort value)
    {
        w.WriteByte(id);
        w.WriteUInt16(value);
    }

    private static void WriteUInt32(ref MqttBufferWriter w, byte id, uint value)
    {
        w.WriteByte(id);
        w.WriteUInt32(value);
    }

    private static void WriteString(ref MqttBufferWriter w, byte id, string value)
    {
        w.WriteByte(id);
        w.WriteString(value);
    }

    private static void WriteBinary(ref MqttBufferWriter w, byte id, ReadOnlySpan<byte> value)
    {
        w.WriteByte(id);
        w.WriteBinary(value);
    }
}
