using System.Buffers;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Codec;

// CONNECT and CONNACK bodies (the packets that carry the protocol version and the session).
public static partial class MqttPacketReader
{
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
}
