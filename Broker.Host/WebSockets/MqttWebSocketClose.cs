using System.Globalization;
using System.Net.WebSockets;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Host.WebSockets;

/// <summary>The WebSocket Close frame (RFC 6455 §5.5.1, §7.4) sent when the MQTT connection on it ends.</summary>
internal readonly record struct MqttWebSocketClose(WebSocketCloseStatus Status, string Description)
{
    /// <summary>
    /// Mirrors how MQTT ended: the broker's DISCONNECT (5.0) or refusing CONNACK decides the status; a DISCONNECT from
    /// the client is a normal closure; a fixed header no MQTT version allows is a protocol error. A 3.1.1 connection
    /// the broker closes without a packet (3.1.1 has no server DISCONNECT) ends with a normal closure.
    /// </summary>
    public static MqttWebSocketClose Mirror(MqttPacketBoundaryTracker sent, MqttPacketBoundaryTracker received)
    {
        if (sent.LastIsDisconnect)
        {
            // 5.0 §3.14.2.1: no Reason Code byte means 0x00 Normal disconnection.
            var reason = sent.LastLength == 0 ? (byte)0 : sent.LastBody0;
            return new MqttWebSocketClose(FromReasonCode(reason), $"MQTT DISCONNECT {Name(reason)}");
        }
        if (sent.LastIsConnAck && sent.LastLength >= 2 && sent.LastBody1 != 0)
        {
            // 3.1.1 return codes are 1-5, 5.0 reason codes 0x80 and above: one table covers both.
            var code = sent.LastBody1;
            return new MqttWebSocketClose(code switch
            {
                0x01 or 0x02 => WebSocketCloseStatus.ProtocolError,
                0x03 => WebSocketCloseStatus.InternalServerError,
                0x04 or 0x05 => WebSocketCloseStatus.PolicyViolation,
                _ => FromReasonCode(code),
            }, $"MQTT CONNACK {(code < 0x80 ? "0x" + code.ToString("X2", CultureInfo.InvariantCulture) : Name(code))}");
        }
        if (received.LastIsDisconnect)
        {
            return new MqttWebSocketClose(WebSocketCloseStatus.NormalClosure, "MQTT DISCONNECT from the client");
        }
        if (received.Malformed)
        {
            return new MqttWebSocketClose(WebSocketCloseStatus.ProtocolError, "malformed MQTT packet");
        }
        return new MqttWebSocketClose(WebSocketCloseStatus.NormalClosure, "MQTT connection closed");
    }

    /// <summary>MQTT 5.0 reason code (§2.4) to close status.</summary>
    public static WebSocketCloseStatus FromReasonCode(byte reasonCode) => (MqttReasonCode)reasonCode switch
    {
        < MqttReasonCode.UnspecifiedError => WebSocketCloseStatus.NormalClosure,
        MqttReasonCode.SessionTakenOver => WebSocketCloseStatus.NormalClosure,
        MqttReasonCode.ServerShuttingDown or MqttReasonCode.UseAnotherServer or MqttReasonCode.ServerMoved
            or MqttReasonCode.MaximumConnectTime => WebSocketCloseStatus.EndpointUnavailable,
        MqttReasonCode.PacketTooLarge => WebSocketCloseStatus.MessageTooBig,
        MqttReasonCode.MalformedPacket or MqttReasonCode.ProtocolError or MqttReasonCode.UnsupportedProtocolVersion
            or MqttReasonCode.ClientIdentifierNotValid or MqttReasonCode.TopicFilterInvalid or MqttReasonCode.TopicNameInvalid
            or MqttReasonCode.PacketIdentifierInUse or MqttReasonCode.PacketIdentifierNotFound or MqttReasonCode.ReceiveMaximumExceeded
            or MqttReasonCode.TopicAliasInvalid or MqttReasonCode.PayloadFormatInvalid or MqttReasonCode.RetainNotSupported
            or MqttReasonCode.QosNotSupported or MqttReasonCode.SharedSubscriptionsNotSupported
            or MqttReasonCode.SubscriptionIdentifiersNotSupported or MqttReasonCode.WildcardSubscriptionsNotSupported
            => WebSocketCloseStatus.ProtocolError,
        MqttReasonCode.UnspecifiedError or MqttReasonCode.ImplementationSpecificError or MqttReasonCode.ServerUnavailable
            or MqttReasonCode.ServerBusy => WebSocketCloseStatus.InternalServerError,
        // Not authorized, banned, administrative action (revoked), quota, rate, keep alive broken: the client broke a rule.
        _ => WebSocketCloseStatus.PolicyViolation,
    };

    private static string Name(byte reasonCode)
    {
        var hex = "0x" + reasonCode.ToString("X2", CultureInfo.InvariantCulture);
        return Enum.IsDefined((MqttReasonCode)reasonCode) ? $"{(MqttReasonCode)reasonCode} ({hex})" : hex;
    }
}
