using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Codec;

/// <summary>
/// Which reason codes each 5.0 packet may carry (§2.4, Table 2-6), and the 3.1.1 return-code mapping
/// (3.1.1 §3.2.2.3, §3.9.3) so the engine only ever speaks <see cref="MqttReasonCode"/>.
/// </summary>
internal static class MqttReasonCodes
{
    public static bool IsValid(MqttPacketType type, byte code) => type switch
    {
        MqttPacketType.ConnAck => code is 0x00 or 0x80 or 0x81 or 0x82 or 0x83 or 0x84 or 0x85 or 0x86 or 0x87 or 0x88
            or 0x89 or 0x8A or 0x8C or 0x90 or 0x95 or 0x97 or 0x99 or 0x9A or 0x9B or 0x9C or 0x9D or 0x9F,
        MqttPacketType.PubAck or MqttPacketType.PubRec =>
            code is 0x00 or 0x10 or 0x80 or 0x83 or 0x87 or 0x90 or 0x91 or 0x97 or 0x99,
        MqttPacketType.PubRel or MqttPacketType.PubComp => code is 0x00 or 0x92,
        MqttPacketType.SubAck => code is 0x00 or 0x01 or 0x02 or 0x80 or 0x83 or 0x87 or 0x8F or 0x91 or 0x97 or 0x9E
            or 0xA1 or 0xA2,
        MqttPacketType.UnsubAck => code is 0x00 or 0x11 or 0x80 or 0x83 or 0x87 or 0x8F or 0x91,
        MqttPacketType.Disconnect => code is 0x00 or 0x04 or 0x80 or 0x81 or 0x82 or 0x83 or 0x87 or 0x89 or 0x8B
            or 0x8D or 0x8E or 0x8F or 0x90 or 0x93 or 0x94 or 0x95 or 0x96 or 0x97 or 0x98 or 0x99 or 0x9A or 0x9B
            or 0x9C or 0x9D or 0x9E or 0x9F or 0xA0 or 0xA1 or 0xA2,
        MqttPacketType.Auth => code is 0x00 or 0x18 or 0x19,
        _ => false,
    };

    /// <summary>3.1.1 CONNACK Return Code (§3.2.2.3) for a 5.0 reason code.</summary>
    public static byte ToConnectReturnCode(MqttReasonCode code) => code switch
    {
        MqttReasonCode.Success => 0x00,
        MqttReasonCode.UnsupportedProtocolVersion => 0x01,
        MqttReasonCode.ClientIdentifierNotValid => 0x02,
        // "The Network Connection has been made but the MQTT service is unavailable": conditions on our side.
        MqttReasonCode.ServerUnavailable or MqttReasonCode.ServerBusy or MqttReasonCode.ServerShuttingDown
            or MqttReasonCode.UseAnotherServer or MqttReasonCode.ServerMoved or MqttReasonCode.ConnectionRateExceeded
            or MqttReasonCode.QuotaExceeded => 0x03,
        MqttReasonCode.BadUserNameOrPassword => 0x04,
        // Every other refusal: 3.1.1 has nothing closer than "not authorized".
        _ => 0x05,
    };

    /// <summary>5.0 reason code for a 3.1.1 CONNACK Return Code; false for the reserved values 6-255.</summary>
    public static bool TryFromConnectReturnCode(byte code, out MqttReasonCode reasonCode)
    {
        reasonCode = code switch
        {
            0x00 => MqttReasonCode.Success,
            0x01 => MqttReasonCode.UnsupportedProtocolVersion,
            0x02 => MqttReasonCode.ClientIdentifierNotValid,
            0x03 => MqttReasonCode.ServerUnavailable,
            0x04 => MqttReasonCode.BadUserNameOrPassword,
            0x05 => MqttReasonCode.NotAuthorized,
            _ => MqttReasonCode.UnspecifiedError,
        };
        return code <= 0x05;
    }

    /// <summary>3.1.1 SUBACK Return Code (§3.9.3): granted QoS 0-2, or 0x80 for any failure.</summary>
    public static byte ToSubscribeReturnCode(MqttReasonCode code) => (byte)code <= 0x02 ? (byte)code : (byte)0x80;
}
