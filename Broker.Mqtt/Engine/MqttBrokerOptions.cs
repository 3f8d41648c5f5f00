namespace OmniBroker.Mqtt.Engine;

/// <summary>Limits and capabilities of the MQTT engine. Read once when <see cref="MqttBroker"/> is created.</summary>
public sealed class MqttBrokerOptions
{
    /// <summary>Largest packet (fixed header included) the broker accepts from a client, in bytes.
    /// Announced to 5.0 clients as CONNACK Maximum Packet Size; a larger packet closes the connection
    /// (5.0: DISCONNECT 0x95). Default 1 MiB.</summary>
    public int MaximumPacketSize { get; set; } = 1024 * 1024;

    /// <summary>Server Receive Maximum: QoS 1/2 PUBLISH packets a client may have unacknowledged towards the
    /// broker (5.0 CONNACK Receive Maximum; exceeding it is DISCONNECT 0x93). Default 64.</summary>
    public ushort ReceiveMaximum { get; set; } = 64;

    /// <summary>Outbound QoS 1/2 messages in flight per client before further messages are queued;
    /// additionally capped by the client's own Receive Maximum (5.0). Default 32.</summary>
    public int MaxInflightPerClient { get; set; } = 32;

    /// <summary>Messages queued per session beyond the inflight window (offline or slow clients). When full, the
    /// oldest QoS 0 message is dropped first, otherwise the new message; every drop is counted and logged.
    /// Default 1000.</summary>
    public int MaxQueuedMessagesPerSession { get; set; } = 1000;

    /// <summary>Upper bound, in seconds, for the 5.0 Session Expiry Interval requested by clients. 3.1.1
    /// persistent sessions (Clean Session = 0) are kept until cleaned, but no longer than this either, so an
    /// abandoned device cannot hold memory forever. Default 7 days.</summary>
    public uint MaximumSessionExpiryInterval { get; set; } = 7 * 24 * 3600;

    /// <summary>If set and above 0, the largest Keep Alive (seconds) a 5.0 client may use: a larger or zero Keep Alive
    /// is replaced and announced as CONNACK Server Keep Alive, and the broker enforces that value [MQTT-3.2.2-21].
    /// 0 or unset: no maximum. 3.1.1 clients cannot be told, so they keep their value.</summary>
    public ushort? MaximumKeepAlive { get; set; }

    /// <summary>If set, forced on every 5.0 client as CONNACK Server Keep Alive (takes precedence over
    /// <see cref="MaximumKeepAlive"/>).</summary>
    public ushort? ServerKeepAlive { get; set; }

    /// <summary>Topic aliases a 5.0 client may use towards the broker (CONNACK Topic Alias Maximum). 0 disables. Default 16.</summary>
    public ushort TopicAliasMaximum { get; set; } = 16;

    /// <summary>Topic aliases the broker may assign to the PUBLISH packets it sends to one 5.0 client, further capped by
    /// the client's CONNECT Topic Alias Maximum (5.0 §3.3.2.3.4); the first topics sent get them. 0 disables outbound
    /// aliases. Default 16.</summary>
    public ushort OutboundTopicAliasMaximum { get; set; } = 16;

    /// <summary>Whether retained messages are supported (CONNACK Retain Available). When false a 5.0 PUBLISH
    /// with RETAIN=1 is a protocol violation (DISCONNECT 0x9A). Default true.</summary>
    public bool RetainAvailable { get; set; } = true;

    /// <summary>3.1.1 has no negative PUBACK: a denied PUBLISH is acknowledged and dropped. When true the
    /// connection is also closed, as 3.1.1 §4.13 permits. Default false.</summary>
    public bool DisconnectOnDeniedPublishV311 { get; set; }

    /// <summary>Refuse a CONNECT (CONNACK Not Authorized) on a connection without an
    /// <see cref="Abstractions.IClientIdentityFeature"/> (no validated client certificate). Default true.</summary>
    public bool RequireClientIdentity { get; set; } = true;

    /// <summary>Time allowed between accepting the connection and receiving a complete CONNECT. Default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest time a packet may stay incomplete: from its first byte to its last. A peer that starts a packet
    /// and stalls (even with Keep Alive 0, which disables the keep-alive timer) is closed after this. Default 30 s.</summary>
    public TimeSpan IncompletePacketTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest client identifier accepted (in UTF-16 code units); longer is CONNACK 0x85 / 0x02. Default 128.</summary>
    public int MaxClientIdLength { get; set; } = 128;

    /// <summary>Every problem with the current values (empty when usable), for configuration loaders that report all
    /// errors at once. <see cref="MqttBroker"/> refuses options with errors.</summary>
    public IReadOnlyList<string> GetValidationErrors()
    {
        var errors = new List<string>();
        if (MaximumPacketSize is < 64 or > 268_435_460)
        {
            errors.Add($"MaximumPacketSize must be between 64 and 268435460 bytes (was {MaximumPacketSize})");
        }
        if (ReceiveMaximum == 0)
        {
            errors.Add("ReceiveMaximum must be at least 1");
        }
        if (MaxInflightPerClient is < 1 or > ushort.MaxValue)
        {
            errors.Add($"MaxInflightPerClient must be between 1 and 65535 (was {MaxInflightPerClient})");
        }
        if (MaxQueuedMessagesPerSession < 1)
        {
            errors.Add($"MaxQueuedMessagesPerSession must be at least 1 (was {MaxQueuedMessagesPerSession})");
        }
        if (ConnectTimeout <= TimeSpan.Zero)
        {
            errors.Add($"ConnectTimeout must be positive (was {ConnectTimeout})");
        }
        if (IncompletePacketTimeout <= TimeSpan.Zero)
        {
            errors.Add($"IncompletePacketTimeout must be positive (was {IncompletePacketTimeout})");
        }
        if (MaxClientIdLength is < 1 or > 65535)
        {
            errors.Add($"MaxClientIdLength must be between 1 and 65535 (was {MaxClientIdLength})");
        }
        return errors;
    }

    internal void Validate()
    {
        var errors = GetValidationErrors();
        if (errors.Count > 0)
        {
            throw new ArgumentException("Invalid MQTT broker options: " + string.Join("; ", errors));
        }
    }
}
