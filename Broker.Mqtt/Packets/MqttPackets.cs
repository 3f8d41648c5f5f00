using System.Buffers;

namespace OmniBroker.Mqtt.Packets;

/// <summary>Base of all control packets. Decoded packets may reference the input buffer
/// (see <see cref="PublishPacket.Payload"/>) and are valid only until the reader advances.</summary>
public abstract class MqttPacket
{
    public abstract MqttPacketType Type { get; }
}

public sealed class ConnectPacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.Connect;
    public MqttProtocolVersion ProtocolVersion { get; set; } = MqttProtocolVersion.V311;
    public string ClientId { get; set; } = "";
    /// <summary>Clean Session (3.1.1) / Clean Start (5.0).</summary>
    public bool CleanStart { get; set; } = true;
    public ushort KeepAliveSeconds { get; set; }
    public string? UserName { get; set; }
    public ReadOnlyMemory<byte>? Password { get; set; }
    public WillMessage? Will { get; set; }
    public MqttProperties? Properties { get; set; }
}

public sealed class WillMessage
{
    public string Topic { get; set; } = "";
    public ReadOnlyMemory<byte> Payload { get; set; }
    public MqttQos Qos { get; set; }
    public bool Retain { get; set; }
    /// <summary>Will Properties (5.0 §3.1.3.2), including WillDelayInterval.</summary>
    public MqttProperties? Properties { get; set; }
}

public sealed class ConnAckPacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.ConnAck;
    public bool SessionPresent { get; set; }
    /// <summary>5.0 reason code; the codec maps it to a 3.1.1 return code when writing 3.1.1.</summary>
    public MqttReasonCode ReasonCode { get; set; }
    public MqttProperties? Properties { get; set; }
}

public sealed class PublishPacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.Publish;
    public string Topic { get; set; } = "";
    public MqttQos Qos { get; set; }
    public bool Retain { get; set; }
    public bool Dup { get; set; }
    /// <summary>Zero for QoS 0.</summary>
    public ushort PacketId { get; set; }
    /// <summary>A slice of the input when decoded: copy it before the reader advances if it must outlive the call.</summary>
    public ReadOnlySequence<byte> Payload { get; set; }
    public MqttProperties? Properties { get; set; }
}

/// <summary>PUBACK, PUBREC, PUBREL, PUBCOMP: same layout (5.0 §3.4-3.7).</summary>
public sealed class PubAckPacket : MqttPacket
{
    public PubAckPacket(MqttPacketType type)
    {
        if (type is not (MqttPacketType.PubAck or MqttPacketType.PubRec or MqttPacketType.PubRel or MqttPacketType.PubComp))
        {
            throw new ArgumentOutOfRangeException(nameof(type));
        }
        PacketType = type;
    }

    public MqttPacketType PacketType { get; }
    public override MqttPacketType Type => PacketType;
    public ushort PacketId { get; set; }
    public MqttReasonCode ReasonCode { get; set; }
    public MqttProperties? Properties { get; set; }
}

public readonly record struct SubscriptionOptions(
    MqttQos MaximumQos,
    bool NoLocal = false,
    bool RetainAsPublished = false,
    MqttRetainHandling RetainHandling = MqttRetainHandling.SendAtSubscribe);

public sealed record TopicSubscription(string Filter, SubscriptionOptions Options);

public sealed class SubscribePacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.Subscribe;
    public ushort PacketId { get; set; }
    public List<TopicSubscription> Subscriptions { get; set; } = new();
    public MqttProperties? Properties { get; set; }
}

public sealed class SubAckPacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.SubAck;
    public ushort PacketId { get; set; }
    /// <summary>Granted QoS (0x00-0x02) or a failure code; 3.1.1 writes every failure as 0x80.</summary>
    public List<MqttReasonCode> ReasonCodes { get; set; } = new();
    public MqttProperties? Properties { get; set; }
}

public sealed class UnsubscribePacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.Unsubscribe;
    public ushort PacketId { get; set; }
    public List<string> Filters { get; set; } = new();
    public MqttProperties? Properties { get; set; }
}

public sealed class UnsubAckPacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.UnsubAck;
    public ushort PacketId { get; set; }
    /// <summary>5.0 only; 3.1.1 UNSUBACK carries no payload.</summary>
    public List<MqttReasonCode> ReasonCodes { get; set; } = new();
    public MqttProperties? Properties { get; set; }
}

public sealed class PingReqPacket : MqttPacket
{
    public static readonly PingReqPacket Instance = new();
    public override MqttPacketType Type => MqttPacketType.PingReq;
}

public sealed class PingRespPacket : MqttPacket
{
    public static readonly PingRespPacket Instance = new();
    public override MqttPacketType Type => MqttPacketType.PingResp;
}

public sealed class DisconnectPacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.Disconnect;
    public MqttReasonCode ReasonCode { get; set; }
    public MqttProperties? Properties { get; set; }
}

/// <summary>AUTH (5.0 only, §3.15).</summary>
public sealed class AuthPacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.Auth;
    public MqttReasonCode ReasonCode { get; set; }
    public MqttProperties? Properties { get; set; }
}
