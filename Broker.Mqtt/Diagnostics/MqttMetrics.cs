using System.Diagnostics.Metrics;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Diagnostics;

/// <summary>
/// The MQTT engine's instruments, on the meter <see cref="MeterName"/> created from an <see cref="IMeterFactory"/>
/// (one per host; the host exports every meter named <c>OmniBroker.*</c>). Only engine vocabulary lives here:
/// connections, messages, drops and the engine's authorization decisions. TLS and revocation instruments are in
/// Broker.Auth, policy instruments in Broker.Policy. System.Diagnostics.Metrics only: the engine does not depend on
/// an exporter. Label values are fixed sets of cached tags, so hot-path calls allocate nothing and the label
/// cardinality stays bounded whatever a caller passes. The Prometheus name of each instrument is in its comment.
/// </summary>
public sealed class MqttMetrics : IPrimedMetrics, IDisposable
{
    public const string MeterName = "OmniBroker.Mqtt";

    private static readonly KeyValuePair<string, object?>[] s_qosTags = [Tag("qos", "0"), Tag("qos", "1"), Tag("qos", "2")];
    private static readonly KeyValuePair<string, object?> s_protocol311 = Tag("protocol", "3.1.1");
    private static readonly KeyValuePair<string, object?> s_protocol500 = Tag("protocol", "5.0");
    private static readonly KeyValuePair<string, object?> s_protocolOther = Tag("protocol", "other");
    private static readonly KeyValuePair<string, object?> s_allow = Tag("result", "allow");
    private static readonly KeyValuePair<string, object?> s_deny = Tag("result", "deny");
    private static readonly Dictionary<string, KeyValuePair<string, object?>> s_actionTags = Tags("action",
        [Actions.Connect, Actions.Publish, Actions.Subscribe, Actions.Receive, "other"]);
    private static readonly Dictionary<string, KeyValuePair<string, object?>> s_dropTags = Tags("reason",
        [DropReasons.QueueFull, DropReasons.Expired, DropReasons.Denied, DropReasons.TooLarge, DropReasons.SessionEnded,
            DropReasons.SlowSubscriber, DropReasons.Overflow, "other"]);
    private static readonly KeyValuePair<string, object?> s_policyDisconnect = Tag("policy", "disconnect");
    private static readonly KeyValuePair<string, object?> s_policyDropQos0 = Tag("policy", "drop_qos0");

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly UpDownCounter<long> _connectionsActive;
    private readonly Counter<long> _connections;
    private readonly Counter<long> _authorizationDecisions;
    private readonly Counter<long> _messagesReceived;
    private readonly Counter<long> _bytesReceived;
    private readonly Counter<long> _messagesSent;
    private readonly Counter<long> _bytesSent;
    private readonly Counter<long> _messagesDropped;
    private readonly Counter<double> _publishersHeldBack;
    private readonly Counter<long> _slowSubscribers;
    private IMqttStateSource? _state;

    /// <summary>Creates the instruments on a meter from <paramref name="meterFactory"/>; without one (unit tests,
    /// benchmarks) the meter is owned and disposed by this instance.</summary>
    public MqttMetrics(IMeterFactory? meterFactory = null)
    {
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);

        // omnibroker_connections_active{protocol}
        _connectionsActive = _meter.CreateUpDownCounter<long>("omnibroker.connections.active", "{connection}",
            "MQTT connections currently open, by protocol version.");
        // omnibroker_connections_total{protocol}
        _connections = _meter.CreateCounter<long>("omnibroker.connections", "{connection}",
            "MQTT connections accepted (CONNACK success), by protocol version.");
        // omnibroker_authorization_decisions_total{action,result}
        _authorizationDecisions = _meter.CreateCounter<long>("omnibroker.authorization.decisions", "{decision}",
            "Authorization decisions of the engine (connect, publish, subscribe, receive), by action and result.");
        // omnibroker_messages_received_total{qos}, omnibroker_messages_received_bytes_total{qos}
        _messagesReceived = _meter.CreateCounter<long>("omnibroker.messages.received", "{message}", "PUBLISH packets received from clients, by QoS.");
        _bytesReceived = _meter.CreateCounter<long>("omnibroker.messages.received.bytes", "By", "Payload bytes of PUBLISH packets received from clients, by QoS.");
        // omnibroker_messages_sent_total{qos}, omnibroker_messages_sent_bytes_total{qos}
        _messagesSent = _meter.CreateCounter<long>("omnibroker.messages.sent", "{message}", "PUBLISH packets sent to subscribers, by QoS.");
        _bytesSent = _meter.CreateCounter<long>("omnibroker.messages.sent.bytes", "By", "Payload bytes of PUBLISH packets sent to subscribers, by QoS.");
        // omnibroker_messages_dropped_total{reason}
        _messagesDropped = _meter.CreateCounter<long>("omnibroker.messages.dropped", "{message}", "Messages dropped by the broker, by reason.");
        // omnibroker_publishers_held_back_seconds_total
        _publishersHeldBack = _meter.CreateCounter<double>("omnibroker.publishers.held_back", "s",
            "Time publishers spent held back (not read, acknowledgement withheld) waiting for room in a subscriber's queue.");
        // omnibroker_slow_subscribers_total{policy}
        _slowSubscribers = _meter.CreateCounter<long>("omnibroker.slow_subscribers", "{event}",
            "Subscribers declared slow after their queue stayed congested, by policy applied.");
        // omnibroker_queue_messages, omnibroker_queue_bytes
        _meter.CreateObservableGauge("omnibroker.queue.messages", () => Observe(static s => s.QueuedMessageCount), "{message}",
            "Messages queued for subscribers (beyond the inflight windows), all sessions together.");
        _meter.CreateObservableGauge("omnibroker.queue.bytes", () => Observe(static s => s.QueuedBytes), "By",
            "Bytes queued for subscribers, all sessions together (bounded by MaxQueuedBytesTotal).");

        // omnibroker_sessions, omnibroker_subscriptions, omnibroker_retained_messages
        _meter.CreateObservableGauge("omnibroker.sessions", () => Observe(static s => s.SessionCount), "{session}",
            "Sessions held by the broker (connected and persistent).");
        _meter.CreateObservableGauge("omnibroker.subscriptions", () => Observe(static s => s.SubscriptionCount), "{subscription}",
            "Subscriptions held by the broker.");
        _meter.CreateObservableGauge("omnibroker.retained.messages", () => Observe(static s => s.RetainedMessageCount), "{message}",
            "Retained messages stored.");
        PrimeSeries();
    }

    /// <summary>Values of the <c>reason</c> label of dropped messages.</summary>
    public static class DropReasons
    {
        public const string QueueFull = "queue_full";
        public const string Expired = "expired";
        public const string Denied = "denied";
        public const string TooLarge = "too_large";

        /// <summary>Queued messages lost because their session ended (expired, taken over with clean start, revoked).</summary>
        public const string SessionEnded = "session_ended";

        /// <summary>QoS 0 messages of a subscriber declared slow under the DropQos0 policy.</summary>
        public const string SlowSubscriber = "slow_subscriber";

        /// <summary>QoS 1/2 messages an offline or slow session could not absorb (5.0 publishers got PUBACK 0x97).</summary>
        public const string Overflow = "overflow";
    }

    /// <summary>Values of the <c>action</c> label of authorization decisions.</summary>
    public static class Actions
    {
        public const string Connect = "connect";
        public const string Publish = "publish";
        public const string Subscribe = "subscribe";
        public const string Receive = "receive";
    }

    /// <summary>The engine whose state the gauges report; set once by <see cref="Engine.MqttBroker"/>.</summary>
    internal void Observe(IMqttStateSource state) => Interlocked.CompareExchange(ref _state, state, null);

    /// <summary>Call once per accepted CONNECT (CONNACK success); pair with exactly one <see cref="ConnectionClosed"/>.</summary>
    public void ConnectionOpened(MqttProtocolVersion version)
    {
        var tag = ProtocolTag(version);
        _connections.Add(1, tag);
        _connectionsActive.Add(1, tag);
    }

    public void ConnectionClosed(MqttProtocolVersion version) => _connectionsActive.Add(-1, ProtocolTag(version));

    /// <summary><paramref name="action"/> is one of <see cref="Actions"/>; others count as "other".</summary>
    public void AuthorizationDecision(string action, bool allowed) =>
        _authorizationDecisions.Add(1, Lookup(s_actionTags, action), allowed ? s_allow : s_deny);

    /// <summary>A PUBLISH received from a client; <paramref name="payloadBytes"/> is its payload length.</summary>
    public void MessageIn(MqttQos qos, int payloadBytes)
    {
        var tag = QosTag(qos);
        _messagesReceived.Add(1, tag);
        _bytesReceived.Add(payloadBytes, tag);
    }

    /// <summary>A PUBLISH written to a subscriber; <paramref name="payloadBytes"/> is its payload length.</summary>
    public void MessageOut(MqttQos qos, int payloadBytes)
    {
        var tag = QosTag(qos);
        _messagesSent.Add(1, tag);
        _bytesSent.Add(payloadBytes, tag);
    }

    /// <summary><paramref name="reason"/> is one of <see cref="DropReasons"/>; others count as "other".</summary>
    public void MessageDropped(string reason, int count = 1) => _messagesDropped.Add(count, Lookup(s_dropTags, reason));

    /// <summary>A publisher was held back for <paramref name="seconds"/> waiting for room in subscribers' queues.</summary>
    public void PublisherHeldBack(double seconds) => _publishersHeldBack.Add(seconds);

    /// <summary>A subscriber was declared slow; <paramref name="disconnected"/> tells the policy applied.</summary>
    public void SlowSubscriber(bool disconnected) => _slowSubscribers.Add(1, disconnected ? s_policyDisconnect : s_policyDropQos0);

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    /// <inheritdoc/>
    public void PrimeSeries()
    {
        LimitMetrics.Prime();
        foreach (var tag in new[] { s_protocol311, s_protocol500 })
        {
            _connections.Add(0, tag);
            _connectionsActive.Add(0, tag);
        }

        foreach (var (action, tag) in s_actionTags)
        {
            if (action != "other")
            {
                _authorizationDecisions.Add(0, tag, s_allow);
                _authorizationDecisions.Add(0, tag, s_deny);
            }
        }

        foreach (var qos in s_qosTags)
        {
            _messagesReceived.Add(0, qos);
            _bytesReceived.Add(0, qos);
            _messagesSent.Add(0, qos);
            _bytesSent.Add(0, qos);
        }

        foreach (var (reason, tag) in s_dropTags)
        {
            if (reason != "other")
            {
                _messagesDropped.Add(0, tag);
            }
        }
        _slowSubscribers.Add(0, s_policyDisconnect);
        _slowSubscribers.Add(0, s_policyDropQos0);
        _publishersHeldBack.Add(0);
    }

    private IEnumerable<Measurement<long>> Observe(Func<IMqttStateSource, long> read) =>
        Volatile.Read(ref _state) is { } state ? [new Measurement<long>(read(state))] : [];

    private static KeyValuePair<string, object?> ProtocolTag(MqttProtocolVersion version) => version switch
    {
        MqttProtocolVersion.V311 => s_protocol311,
        MqttProtocolVersion.V500 => s_protocol500,
        _ => s_protocolOther,
    };

    private static KeyValuePair<string, object?> QosTag(MqttQos qos) => s_qosTags[(int)qos <= 2 ? (int)qos : 2];

    private static KeyValuePair<string, object?> Lookup(Dictionary<string, KeyValuePair<string, object?>> tags, string value) =>
        tags.TryGetValue(value, out var tag) ? tag : tags["other"];

    private static KeyValuePair<string, object?> Tag(string key, string value) => new(key, value);

    private static Dictionary<string, KeyValuePair<string, object?>> Tags(string key, string[] values) =>
        values.ToDictionary(static v => v, v => Tag(key, v), StringComparer.Ordinal);
}

/// <summary>The engine state read by the gauges of <see cref="MqttMetrics"/>; called on the scrape thread.</summary>
internal interface IMqttStateSource
{
    long SessionCount { get; }

    long SubscriptionCount { get; }

    long RetainedMessageCount { get; }

    /// <summary>Messages queued for subscribers: omnibroker_queue_messages.</summary>
    long QueuedMessageCount => 0;

    /// <summary>Bytes queued for subscribers: omnibroker_queue_bytes.</summary>
    long QueuedBytes => 0;
}
