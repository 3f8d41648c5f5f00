using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

/// <summary>What the transport knows about the client's identity when its CONNECT arrives.</summary>
internal readonly record struct ConnectIdentityState(bool Present, bool Revoked, string? RevocationReason)
{
    public static ConnectIdentityState None => default;

    public static ConnectIdentityState Valid => new(true, false, null);
}

/// <summary>
/// The outcome of CONNECT negotiation (§3.1, §3.2): either a refusal (CONNACK reason code and a reason for the log)
/// or the values the connection runs with. Produced by <see cref="Negotiate"/>, a pure function of the CONNECT, the
/// options and the identity state, so every rule is tested without sockets. Authorization by policy is not part of
/// it: it needs the client's certificate and happens next, in the connection.
/// </summary>
internal sealed record ConnectNegotiation
{
    public MqttReasonCode? RefusalCode { get; init; }
    public string RefusalReason { get; init; } = "";
    public bool Refused => RefusalCode is not null;

    public string ClientId { get; init; } = "";
    /// <summary>The client sent an empty identifier and the broker assigned <see cref="ClientId"/> [MQTT-3.1.3-6].</summary>
    public bool AssignedClientId { get; init; }
    public ushort KeepAlive { get; init; }
    /// <summary>Announced as CONNACK Server Keep Alive when the broker overrides the client's value (5.0).</summary>
    public ushort? ServerKeepAlive { get; init; }
    public uint SessionExpiry { get; init; }
    /// <summary>The requested Session Expiry Interval was capped: CONNACK announces the value in force (5.0).</summary>
    public bool SessionExpiryChanged { get; init; }
    /// <summary>Outbound QoS 1/2 messages in flight: the lower of our limit and the client's Receive Maximum.</summary>
    public int OutboundWindow { get; init; } = 1;
    /// <summary>The client's Maximum Packet Size (5.0); 0 = no limit beyond the protocol's.</summary>
    public uint ClientMaximumPacketSize { get; init; }
    /// <summary>Topic aliases accepted from the client (5.0); 0 = none.</summary>
    public ushort TopicAliasMaximum { get; init; }
    /// <summary>Topic aliases the client accepts from us (5.0 Topic Alias Maximum in CONNECT); 0 = none.</summary>
    public ushort ClientTopicAliasMaximum { get; init; }
    public uint WillDelaySeconds { get; init; }

    /// <summary>Applies the rules of §3.1 to <paramref name="connect"/>. Throws <see cref="MqttProtocolException"/>
    /// for a malformed CONNECT (e.g. an invalid will topic); returns a refusal for an acceptable packet the broker
    /// declines. <paramref name="newClientId"/> makes a unique identifier for an empty one.</summary>
    public static ConnectNegotiation Negotiate(ConnectPacket connect, MqttBrokerOptions options, ConnectIdentityState identity,
        Func<string> newClientId)
    {
        var v5 = connect.ProtocolVersion == MqttProtocolVersion.V500;
        var properties = v5 ? connect.Properties : null;

        if (!identity.Present && options.RequireClientIdentity)
        {
            return Refuse(connect.ClientId, MqttReasonCode.NotAuthorized, "no validated client certificate on the connection");
        }
        if (identity.Present && identity.Revoked)
        {
            return Refuse(connect.ClientId, MqttReasonCode.NotAuthorized, $"client certificate no longer valid ({identity.RevocationReason})");
        }
        if (properties?.AuthenticationMethod is not null)
        {
            // Enhanced authentication (§4.12) is not offered: identity comes from the TLS client certificate.
            return Refuse(connect.ClientId, MqttReasonCode.BadAuthenticationMethod, "enhanced authentication is not supported");
        }

        var clientId = connect.ClientId;
        var assigned = false;
        if (clientId.Length == 0)
        {
            if (!v5 && !connect.CleanStart)
            {
                // [MQTT-3.1.3-8]: 3.1.1 zero-length ClientId with CleanSession=0 is refused with 0x02.
                return Refuse(clientId, MqttReasonCode.ClientIdentifierNotValid, "empty client identifier requires a clean session");
            }
            // [MQTT-3.1.3-6]: assign a unique ClientId; 5.0 returns it as Assigned Client Identifier [MQTT-3.1.3-7].
            clientId = newClientId();
            assigned = true;
        }
        else if (clientId.Length > options.MaxClientIdLength)
        {
            return Refuse(clientId, MqttReasonCode.ClientIdentifierNotValid, $"client identifier longer than {options.MaxClientIdLength}");
        }

        if (connect.Will is { } will)
        {
            if (!MqttTopic.IsValidTopicName(will.Topic))
            {
                MqttThrow.Violation(MqttReasonCode.TopicNameInvalid, "invalid will topic");
            }
            if (will.Retain && !options.RetainAvailable)
            {
                // 5.0 §3.2.2.3.5: a will with RETAIN while Retain Available is 0 is refused with 0x9A.
                return Refuse(clientId, MqttReasonCode.RetainNotSupported, "retained will while retain is not available");
            }
        }

        // Keep alive: 5.0 lets the server impose its own through Server Keep Alive [MQTT-3.2.2-21].
        var keepAlive = connect.KeepAliveSeconds;
        ushort? serverKeepAlive = null;
        if (v5 && options.ServerKeepAlive is { } forced)
        {
            keepAlive = forced;
            serverKeepAlive = forced;
        }
        else if (v5 && options.MaximumKeepAlive is { } maximum && maximum > 0 && (keepAlive == 0 || keepAlive > maximum))
        {
            keepAlive = maximum;
            serverKeepAlive = maximum;
        }

        uint expiry;
        var expiryChanged = false;
        if (v5)
        {
            expiry = properties?.SessionExpiryInterval ?? 0;
            if (expiry > options.MaximumSessionExpiryInterval)
            {
                expiry = options.MaximumSessionExpiryInterval;
                expiryChanged = true;
            }
        }
        else
        {
            // 3.1.1: CleanSession=0 keeps the session until cleaned; bounded by the configured maximum.
            expiry = connect.CleanStart ? 0 : options.MaximumSessionExpiryInterval;
        }

        var receiveMaximum = properties?.ReceiveMaximum ?? ushort.MaxValue;
        return new ConnectNegotiation
        {
            ClientId = clientId,
            AssignedClientId = assigned,
            KeepAlive = keepAlive,
            ServerKeepAlive = serverKeepAlive,
            SessionExpiry = expiry,
            SessionExpiryChanged = expiryChanged,
            OutboundWindow = Math.Max(1, Math.Min(options.MaxInflightPerClient, receiveMaximum == 0 ? ushort.MaxValue : receiveMaximum)),
            ClientMaximumPacketSize = properties?.MaximumPacketSize ?? 0,
            TopicAliasMaximum = v5 ? options.TopicAliasMaximum : (ushort)0,
            ClientTopicAliasMaximum = v5 ? properties?.TopicAliasMaximum ?? 0 : (ushort)0,
            WillDelaySeconds = v5 ? connect.Will?.Properties?.WillDelayInterval ?? 0 : 0,
        };
    }

    /// <summary>The successful CONNACK (§3.2) for this negotiation.</summary>
    public ConnAckPacket BuildConnAck(MqttProtocolVersion version, MqttBrokerOptions options, bool sessionPresent,
        IReadOnlyList<KeyValuePair<string, string>>? userProperties = null)
    {
        var connAck = new ConnAckPacket { SessionPresent = sessionPresent, ReasonCode = MqttReasonCode.Success };
        if (version == MqttProtocolVersion.V500)
        {
            connAck.Properties = new MqttProperties
            {
                ReceiveMaximum = options.ReceiveMaximum == ushort.MaxValue ? null : options.ReceiveMaximum,
                TopicAliasMaximum = options.TopicAliasMaximum > 0 ? options.TopicAliasMaximum : null,
                MaximumPacketSize = (uint)options.MaximumPacketSize,
                RetainAvailable = options.RetainAvailable ? (byte)1 : (byte)0,
                WildcardSubscriptionAvailable = 1,
                SubscriptionIdentifiersAvailable = 1,
                SharedSubscriptionAvailable = 1,
                AssignedClientIdentifier = AssignedClientId ? ClientId : null,
                ServerKeepAlive = ServerKeepAlive,
                SessionExpiryInterval = SessionExpiryChanged ? SessionExpiry : null,
                UserProperties = userProperties is { Count: > 0 } user ? [.. user] : null,
            };
        }
        return connAck;
    }

    private static ConnectNegotiation Refuse(string clientId, MqttReasonCode code, string reason) =>
        new() { ClientId = clientId, RefusalCode = code, RefusalReason = reason };
}
