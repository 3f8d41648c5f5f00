using System.Buffers;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Codec;

// SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK bodies and their topic filters.
public static partial class MqttPacketReader
{
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

    private static string ReadTopicFilter(ref SequenceReader<byte> r, MqttPacketType type)
    {
        string filter = MqttWire.ReadString(ref r);
        if (!MqttTopic.IsValidTopicFilter(filter))
        {
            MqttThrow.Violation(MqttReasonCode.TopicFilterInvalid, $"{PacketName(type)} Topic Filter \"{filter}\" is not valid [MQTT-4.7.1-2] [MQTT-4.7.1-3]");
        }
        return filter;
    }
}
