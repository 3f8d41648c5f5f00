using System.Buffers;
using Microsoft.Extensions.Logging;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Diagnostics;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// Routes application messages: the subscription index, retained messages, delivery to sessions (merged overlapping
/// subscriptions, shared-subscription groups) and the message counters. Sessions themselves live in
/// <see cref="SessionRegistry"/>; persistent queues write their rows from <see cref="MqttSession.Enqueue"/>.
/// </summary>
internal sealed class MessageRouter
{
    [ThreadStatic]
    private static List<Subscription>? t_matches;

    [ThreadStatic]
    private static List<SharedGroup>? t_groups;
    [ThreadStatic]
    private static List<SharedGroupKey>? t_groupKeys;

    private readonly SubscriptionIndex _subscriptions = new();
    private readonly RetainedMessageStore _retained = new();
    // Orders the in-memory retained store and its persisted rows alike when two publishers race on one topic.
    private readonly Lock _retainedSync = new();
    private readonly MqttBrokerOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly MqttMetrics _metrics;
    private readonly ISessionStore? _store;
    private readonly AggregatedLog _dropLog;
    private readonly EngineLimits _limits;
    private long _messagesReceived;
    private long _messagesSent;
    private long _messagesDropped;

    public MessageRouter(MqttBrokerOptions options, ILogger logger, TimeProvider time, MqttMetrics metrics, ISessionStore? store,
        AggregatedLog dropLog, EngineLimits limits)
    {
        _dropLog = dropLog;
        _limits = limits;
        _metrics = metrics;
        _options = options;
        _logger = logger;
        _time = time;
        _store = store;
    }

    public SubscriptionIndex Subscriptions => _subscriptions;

    /// <summary>The other nodes of a cluster; null on a single node. Set before the listeners start.</summary>
    public IClusterLink? Cluster
    {
        get => _subscriptions.Observer;
        set => _subscriptions.Observer = value;
    }

    public RetainedMessageStore Retained => _retained;

    public long MessagesReceived => Interlocked.Read(ref _messagesReceived);

    public long MessagesSent => Interlocked.Read(ref _messagesSent);

    public long MessagesDropped => Interlocked.Read(ref _messagesDropped);

    public void CountSent() => Interlocked.Increment(ref _messagesSent);

    public void CountDropped(int count = 1) => Interlocked.Add(ref _messagesDropped, count);

    /// <summary>Counts, meters and logs (aggregated) <paramref name="count"/> dropped messages of a client.</summary>
    public void RecordDrop(string clientId, string reason, string? topic, int count = 1)
    {
        _metrics.MessageDropped(reason, count);
        CountDropped(count);
        _dropLog.Record(clientId, reason, denial: false, topic, count);
    }

    /// <summary>
    /// Routes an accepted PUBLISH: stores/clears the retained message, then queues one copy per matching session
    /// and one per matching share group. The payload is copied out of the input buffer once, only if someone
    /// needs it, and that one array is shared by all recipients. Returns the number of recipients;
    /// <paramref name="commitPosition"/> is the store position an acknowledgement must wait for (0: none);
    /// <paramref name="retainRefused"/> is true when the message was delivered but, over a retained limit, not retained.
    /// Subscribers whose queue the message filled are added to <paramref name="context"/> (the publisher is held back).
    /// </summary>
    public int Publish(string topic, in ReadOnlySequence<byte> payload, MqttQos qos, bool retain, MqttProperties? properties,
        string? publisherClientId, DeliveryContext? context, out bool retainRefused, out long commitPosition)
    {
        Interlocked.Increment(ref _messagesReceived);
        commitPosition = 0;
        retainRefused = false;
        var matches = t_matches ??= new List<Subscription>();
        var groups = t_groups ??= new List<SharedGroup>();
        try
        {
            _subscriptions.Match(topic, matches, groups);
            var store = retain && _options.RetainAvailable;
            var cluster = Cluster;
            if (matches.Count == 0 && groups.Count == 0 && !store && cluster is null)
            {
                return 0;
            }

            var message = MqttApplicationMessage.Create(topic, payload.ToArray(), qos, retain, properties, publisherClientId,
                _time.GetUtcNow());
            if (store && SetRetained(message, out commitPosition) is { } exceeded)
            {
                retainRefused = true;
                _limits.RetainRefused(exceeded, publisherClientId, topic, message.Payload.Length);
            }
            var delivered = 0;
            if (cluster is not null)
            {
                // The link decides first which node serves each share group (cluster-wide: one member per message).
                var keys = t_groupKeys ??= new List<SharedGroupKey>();
                keys.Clear();
                foreach (var group in groups)
                {
                    keys.Add(new SharedGroupKey(group.Name, group.TopicFilter));
                }
                delivered += cluster.Forward(message.ToStored(), store && !retainRefused, keys, out var durable);
                if (keys.Count != groups.Count)
                {
                    groups.RemoveAll(g => !keys.Contains(new SharedGroupKey(g.Name, g.TopicFilter)));
                }
                keys.Clear();
                if (context is not null)
                {
                    context.Remote = durable;
                }
            }
            delivered += Deliver(message, matches, groups, context, ref commitPosition);
            return delivered;
        }
        finally
        {
            matches.Clear();
            groups.Clear();
        }
    }

    /// <summary>Stores/clears the retained message within the operator's retained limits; returns the limit that
    /// refused it (nothing changed, nothing written) or null. <paramref name="position"/>: the store row's position.</summary>
    private string? SetRetained(MqttApplicationMessage message, out long position)
    {
        position = 0;
        lock (_retainedSync)
        {
            if (_retained.TrySet(message, _limits.Retained) is { } exceeded)
            {
                return exceeded;
            }
            if (_store is null)
            {
                return null;
            }
            // Retained messages are kept whatever their QoS (a QoS 0 state message is still the topic's state).
            position = message.Payload.Length == 0
                ? _store.Append(new RetainedDeleted(message.Topic))
                : _store.Append(new RetainedSaved(message.ToStored()));
            return null;
        }
    }

    /// <summary>A message forwarded by another node of the cluster: delivered to the matching local sessions only (its
    /// retained state arrives separately, through <see cref="ApplyClusterRetained"/>). Returns the number of recipients;
    /// sessions whose queue it filled are added to <paramref name="context"/>. <paramref name="sharedGroups"/>: the share
    /// groups the sending node chose this node to serve for this message (null: every matching group, as sent by a node
    /// that does not choose). <paramref name="position"/>: the store position of the queued copies (0: none).</summary>
    public int DeliverFromCluster(StoredMessage stored, IReadOnlySet<SharedGroupKey>? sharedGroups, DeliveryContext? context, out long position)
    {
        position = 0;
        Interlocked.Increment(ref _messagesReceived);
        var matches = t_matches ??= new List<Subscription>();
        var groups = t_groups ??= new List<SharedGroup>();
        try
        {
            _subscriptions.Match(stored.Topic, matches, groups);
            if (sharedGroups is not null && groups.Count > 0)
            {
                groups.RemoveAll(g => !sharedGroups.Contains(new SharedGroupKey(g.Name, g.TopicFilter)));
            }
            if (matches.Count == 0 && groups.Count == 0)
            {
                return 0;
            }
            return Deliver(MqttApplicationMessage.FromStored(stored), matches, groups, context, ref position);
        }
        finally
        {
            matches.Clear();
            groups.Clear();
        }
    }

    /// <summary>The cluster's retained message of a topic (an empty payload clears it), as set on any node: replaces the
    /// local copy (and its persisted row) without routing anything.</summary>
    public void ApplyClusterRetained(StoredMessage stored)
    {
        var message = MqttApplicationMessage.FromStored(stored);
        lock (_retainedSync)
        {
            _retained.Set(message);
            _store?.Append(message.Payload.Length == 0 ? new RetainedDeleted(message.Topic) : new RetainedSaved(stored));
        }
    }

    /// <summary>Start-up: puts back a persisted retained message (expired ones are dropped by the caller).</summary>
    public void RestoreRetained(StoredMessage stored) => _retained.Set(MqttApplicationMessage.FromStored(stored));

    /// <summary>Queues the retained messages matching a new subscription, with RETAIN=1 [MQTT-3.3.1-8] (3.1.1) /
    /// 5.0 §3.3.1.3, at the lower of the message's and the subscription's QoS.</summary>
    public void DeliverRetained(Subscription subscription)
    {
        var messages = new List<MqttApplicationMessage>();
        _retained.Match(subscription.TopicFilter, _time.GetUtcNow(), messages);
        var session = subscription.Session;
        var ids = subscription.SubscriptionId != 0 ? new[] { subscription.SubscriptionId } : null;
        var due = new List<(MqttApplicationMessage, MqttQos, uint[]?)>(messages.Count);
        foreach (var message in messages)
        {
            if (subscription.Options.NoLocal && message.PublisherClientId == session.ClientId)
            {
                continue;
            }
            if (session.Grants is { } grants && !grants.CanReceive(message.Topic))
            {
                _metrics.AuthorizationDecision(MqttMetrics.Actions.Receive, false);
                continue;
            }
            due.Add((message, TopicFilters.Min(message.Qos, subscription.Options.MaximumQos), ids));
        }
        // All of them [MQTT-3.3.1-6], however many: they stream through the inflight window as the client acknowledges
        // (a persistent session writes a row for each one as it enters the window).
        session.EnqueueRetained(due);
    }

    /// <summary>
    /// Overlapping subscriptions of one session (5.0 §4.8: one delivery per subscription would be allowed) are merged
    /// into ONE delivery at the highest granted QoS carrying every Subscription Identifier: fewer duplicates for the
    /// device, and 3.1.1 requires exactly that [MQTT-3.3.5-1]. Shared subscriptions are deliveries of their own.
    /// </summary>
    private int Deliver(MqttApplicationMessage message, List<Subscription> matches, List<SharedGroup> groups, DeliveryContext? context, ref long position)
    {
        var delivered = 0;
        if (matches.Count > 1)
        {
            matches.Sort(static (a, b) => a.Session.Id.CompareTo(b.Session.Id));
        }

        for (var i = 0; i < matches.Count;)
        {
            var session = matches[i].Session;
            var any = false;
            var qos = MqttQos.AtMostOnce;
            var retainAsPublished = false;
            uint[]? ids = null;
            for (; i < matches.Count && ReferenceEquals(matches[i].Session, session); i++)
            {
                var subscription = matches[i];
                if (subscription.Options.NoLocal && message.PublisherClientId == session.ClientId)
                {
                    // [MQTT-3.8.3-3]
                    continue;
                }
                any = true;
                if (subscription.Options.MaximumQos > qos)
                {
                    qos = subscription.Options.MaximumQos;
                }
                retainAsPublished |= subscription.Options.RetainAsPublished;
                if (subscription.SubscriptionId != 0)
                {
                    ids = ids is null ? [subscription.SubscriptionId] : [.. ids, subscription.SubscriptionId];
                }
            }

            // RETAIN is kept only with Retain As Published [MQTT-3.3.1-12], [MQTT-3.3.1-13]; 3.1.1 clears it
            // [MQTT-3.3.1-9].
            if (any && DeliverTo(session, message, TopicFilters.Min(message.Qos, qos), message.Retain && retainAsPublished, ids, context, ref position))
            {
                delivered++;
            }
        }

        foreach (var group in groups)
        {
            if (DeliverToGroup(group, message, context, ref position))
            {
                delivered++;
            }
        }
        return delivered;
    }

    /// <summary>One member per message (5.0 §4.8.2), round-robin, preferring connected members
    /// allowed to receive the topic; a message is queued in an offline member's session only if no member is
    /// connected.</summary>
    private bool DeliverToGroup(SharedGroup group, MqttApplicationMessage message, DeliveryContext? context, ref long position)
    {
        var members = group.Members;
        if (members.Length == 0)
        {
            return false;
        }

        var start = group.NextStart(members.Length);
        Subscription? offlineCandidate = null;
        for (var n = 0; n < members.Length; n++)
        {
            var member = members[(start + n) % members.Length];
            if (member.Session.Grants is { } grants && !grants.CanReceive(message.Topic))
            {
                continue;
            }
            if (member.Session.Connection is not null)
            {
                return DeliverShared(member, message, context, ref position);
            }
            offlineCandidate ??= member;
        }
        return offlineCandidate is not null && DeliverShared(offlineCandidate, message, context, ref position);
    }

    private bool DeliverShared(Subscription member, MqttApplicationMessage message, DeliveryContext? context, ref long position)
    {
        var ids = member.SubscriptionId != 0 ? new[] { member.SubscriptionId } : null;
        return DeliverTo(member.Session, message, TopicFilters.Min(message.Qos, member.Options.MaximumQos),
            message.Retain && member.Options.RetainAsPublished, ids, context, ref position);
    }

    private bool DeliverTo(MqttSession session, MqttApplicationMessage message, MqttQos qos, bool retain, uint[]? subscriptionIds,
        DeliveryContext? context, ref long position)
    {
        // CanReceive is checked per subscriber at delivery time; the writer checks again with the grants of the
        // connection that finally sends it.
        if (session.Grants is { } grants)
        {
            var allowed = grants.CanReceive(message.Topic);
            _metrics.AuthorizationDecision(MqttMetrics.Actions.Receive, allowed);
            if (!allowed)
            {
                return false;
            }
        }

        var result = session.Enqueue(message, qos, retain, subscriptionIds);
        if (result.Position > position)
        {
            position = result.Position;
        }
        switch (result.Outcome)
        {
            case EnqueueOutcome.QueuedFull:
                // Backpressure: the publisher is not read again, nor acknowledged, until there is room. Its own
                // session is not waited for: its room depends on acknowledgements the paused reader would not read.
                if (context is not null && !ReferenceEquals(session, context.Publisher))
                {
                    context.Held.Add(session);
                }
                return true;
            case EnqueueOutcome.DroppedOldest:
                RecordDrop(session.ClientId, result.Reason!, result.Dropped!.Topic);
                return true;
            case EnqueueOutcome.DroppedNew:
                RecordDrop(session.ClientId, result.Reason!, message.Topic);
                if (qos != MqttQos.AtMostOnce && context is not null)
                {
                    context.Overflow = true;
                }
                return false;
            case EnqueueOutcome.SessionEnded:
                return false;
            default:
                return true;
        }
    }
}
