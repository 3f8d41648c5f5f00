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

    /// <summary>Messages queued per session beyond the inflight window. When a connected subscriber's queue is
    /// full, publishers to it are held back (their input is not read, their acknowledgement waits) until there is
    /// room; see <see cref="SlowSubscriberTimeout"/>. For an offline session the oldest QoS 0 message makes room,
    /// and a QoS 1/2 message that does not fit is an overflow (5.0: PUBACK 0x97). Default 1000.</summary>
    public int MaxQueuedMessagesPerSession { get; set; } = 1000;

    /// <summary>Bytes (payload, topic and properties) queued per session; full like <see cref="MaxQueuedMessagesPerSession"/>.
    /// Default 16 MiB.</summary>
    public long MaxQueuedBytesPerSession { get; set; } = 16L * 1024 * 1024;

    /// <summary>Bytes queued in all sessions together. Above it every queue that holds anything counts as full.
    /// Default 1 GiB.</summary>
    public long MaxQueuedBytesTotal { get; set; } = 1024L * 1024 * 1024;

    /// <summary>How long a connected subscriber's queue may stay full, holding publishers back, before the subscriber
    /// is declared slow and <see cref="SlowSubscriberPolicy"/> applies. Default 10 s.</summary>
    public TimeSpan SlowSubscriberTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>What happens to a slow subscriber. Default <see cref="SlowSubscriberPolicy.Disconnect"/>.</summary>
    public SlowSubscriberPolicy SlowSubscriberPolicy { get; set; } = SlowSubscriberPolicy.Disconnect;

    /// <summary>With <see cref="SlowSubscriberPolicy.DropQos0"/>: bytes of QoS 1/2 messages a slow subscriber may
    /// hold queued; beyond it a QoS 1/2 message is an overflow (5.0 publisher: PUBACK 0x97). Default 64 MiB.</summary>
    public long SlowSubscriberMaxQueuedBytes { get; set; } = 64L * 1024 * 1024;

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

    /// <summary>Drop and deny log lines are aggregated: at most one per client and reason per interval, with the count
    /// since the previous one. Default 10 s.</summary>
    public TimeSpan LogAggregationInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Time allowed between accepting the connection and receiving a complete CONNECT. Default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest time a packet may stay incomplete: from its first byte to its last. A peer that starts a packet
    /// and stalls (even with Keep Alive 0, which disables the keep-alive timer) is closed after this. Default 30 s.</summary>
    public TimeSpan IncompletePacketTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest client identifier accepted (in UTF-16 code units); longer is CONNACK 0x85 / 0x02. Default 128.</summary>
    public int MaxClientIdLength { get; set; } = 128;

    /// <summary>Subscriptions one session may hold; filters beyond it are refused in SUBACK (5.0 0x97 Quota exceeded,
    /// 3.1.1 0x80). Replacing an existing filter is always allowed. 0: no limit. Default 1000.</summary>
    public int MaxSubscriptionsPerClient { get; set; } = 1000;

    /// <summary>Retained messages in total. A retained PUBLISH that would exceed a retained limit is still delivered to
    /// the current subscribers but not retained; a 5.0 QoS 1/2 publisher gets PUBACK/PUBREC 0x97 (Quota exceeded).
    /// Clearing (empty payload) is always allowed. 0: no limit. Default 100,000.</summary>
    public int MaxRetainedMessages { get; set; } = 100_000;

    /// <summary>Payload bytes of all retained messages. 0: no limit. Default 256 MiB.</summary>
    public long MaxRetainedBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>Retained messages one client (by client id) may own. 0: no limit. Default 1000.</summary>
    public int MaxRetainedMessagesPerClient { get; set; } = 1000;

    /// <summary>Payload bytes of the retained messages one client may own. 0: no limit. Default 16 MiB.</summary>
    public long MaxRetainedBytesPerClient { get; set; } = 16L * 1024 * 1024;

    /// <summary>Connected MQTT clients in total; a CONNECT beyond it is refused with CONNACK 0x97 Quota exceeded
    /// (3.1.1: 0x03 Server unavailable) after the TLS handshake, so the client learns why. 0: no limit. Default 100,000.</summary>
    public int MaxConnections { get; set; } = 100_000;

    /// <summary>A limit hit is logged at most once per client and limit in this interval (the others are counted in
    /// the next line and in omnibroker_limit_hits_total). Default 1 minute.</summary>
    public TimeSpan LimitLogInterval { get; set; } = TimeSpan.FromMinutes(1);

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
        if (MaxQueuedBytesPerSession < 1024)
        {
            errors.Add($"MaxQueuedBytesPerSession must be at least 1024 (was {MaxQueuedBytesPerSession})");
        }
        if (MaxQueuedBytesTotal < MaxQueuedBytesPerSession)
        {
            errors.Add($"MaxQueuedBytesTotal must be at least MaxQueuedBytesPerSession (was {MaxQueuedBytesTotal})");
        }
        if (SlowSubscriberTimeout <= TimeSpan.Zero)
        {
            errors.Add($"SlowSubscriberTimeout must be positive (was {SlowSubscriberTimeout})");
        }
        if (!Enum.IsDefined(SlowSubscriberPolicy))
        {
            errors.Add($"SlowSubscriberPolicy must be Disconnect or DropQos0 (was {SlowSubscriberPolicy})");
        }
        if (SlowSubscriberMaxQueuedBytes < 1024)
        {
            errors.Add($"SlowSubscriberMaxQueuedBytes must be at least 1024 (was {SlowSubscriberMaxQueuedBytes})");
        }
        if (LogAggregationInterval <= TimeSpan.Zero)
        {
            errors.Add($"LogAggregationInterval must be positive (was {LogAggregationInterval})");
        }
        if (ConnectTimeout <= TimeSpan.Zero)
        {
            errors.Add($"ConnectTimeout must be positive (was {ConnectTimeout})");
        }
        if (MaxSubscriptionsPerClient < 0 || MaxRetainedMessages < 0 || MaxRetainedBytes < 0 || MaxRetainedMessagesPerClient < 0
            || MaxRetainedBytesPerClient < 0 || MaxConnections < 0)
        {
            errors.Add("MaxSubscriptionsPerClient, MaxRetainedMessages, MaxRetainedBytes, MaxRetainedMessagesPerClient, MaxRetainedBytesPerClient and MaxConnections must be 0 (no limit) or positive");
        }
        if (LimitLogInterval <= TimeSpan.Zero)
        {
            errors.Add($"LimitLogInterval must be positive (was {LimitLogInterval})");
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

/// <summary>What the broker does with a subscriber whose queue stayed full for <see cref="MqttBrokerOptions.SlowSubscriberTimeout"/>.</summary>
public enum SlowSubscriberPolicy
{
    /// <summary>Disconnect it (5.0: DISCONNECT 0x97 Quota exceeded). A persistent session keeps its queue offline.</summary>
    Disconnect,

    /// <summary>Keep it connected; drop its queued and new QoS 0 messages while it is slow, and keep queueing its
    /// QoS 1/2 messages up to <see cref="MqttBrokerOptions.SlowSubscriberMaxQueuedBytes"/>. It stops being slow once its
    /// queue has drained to half.</summary>
    DropQos0,
}
