using System.Diagnostics.CodeAnalysis;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt;

/// <summary>
/// The one exception for a protocol violation by the peer. Caught once per connection and
/// mapped to a DISCONNECT with <see cref="ReasonCode"/> (5.0) or a plain close (3.1.1).
/// </summary>
public sealed class MqttProtocolException : Exception
{
    public MqttProtocolException(MqttReasonCode reasonCode, string message) : base(message)
    {
        ReasonCode = reasonCode;
    }

    public MqttReasonCode ReasonCode { get; }
}

internal static class MqttThrow
{
    [DoesNotReturn]
    public static void Malformed(string message) => throw new MqttProtocolException(MqttReasonCode.MalformedPacket, message);

    [DoesNotReturn]
    public static void ProtocolError(string message) => throw new MqttProtocolException(MqttReasonCode.ProtocolError, message);

    [DoesNotReturn]
    public static void PacketTooLarge(long size, long limit) =>
        throw new MqttProtocolException(MqttReasonCode.PacketTooLarge, $"packet of {size} bytes exceeds the maximum packet size {limit}");

    [DoesNotReturn]
    public static void Violation(MqttReasonCode code, string message) => throw new MqttProtocolException(code, message);
}
