using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Diagnostics;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// The broker state shared by all connections: sessions, the subscription index, retained messages, delayed wills.
/// One instance per host (registered by <see cref="MqttBrokerServiceCollectionExtensions.AddMqttBroker"/>);
/// connections reach it through <see cref="MqttConnectionHandler"/>.
/// </summary>
public sealed class MqttBroker : IAsyncDisposable, IMqttStateSource
{
    [ThreadStatic]
    private static List<Subscription>? t_matches;

    [ThreadStatic]
    private static List<SharedGroup>? t_groups;

    private readonly Lock _sessionsLock = new();
    private readonly Dictionary<string, MqttSession> _sessions = new(StringComparer.Ordinal);
    // Sessions without a connection that will expire or have a delayed will; scanned by the maintenance timer.
    private readonly HashSet<MqttSession> _offline = new(ReferenceEqualityComparer.Instance);
    private readonly ConcurrentDictionary<MqttConnection, byte> _connections = new();
    private readonly SubscriptionIndex _subscriptions = new();
    private readonly RetainedMessageStore _retained = new();
    private readonly QueueBudget _budget;
    private readonly ITimer _maintenance;
    private int _sessionCount;
    private long _messagesReceived;
    private long _messagesSent;
    private long _messagesDropped;
    private int _disposed;
    private readonly MqttMetrics? _ownedMetrics;

    public MqttBroker(MqttBrokerOptions options, IMqttAuthorizer? authorizer = null, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null,
        MqttMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        Authorizer = authorizer ?? AllowAllAuthorizer.Instance;
        Logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("OmniBroker.Mqtt.Engine");
        TimeProvider = timeProvider ?? TimeProvider.System;
        _budget = new QueueBudget(options, TimeProvider);
        DropLog = new AggregatedLog(Logger, TimeProvider, options.LogAggregationInterval);
        _ownedMetrics = metrics is null ? new MqttMetrics() : null;
        Metrics = metrics ?? _ownedMetrics!;
        Metrics.Observe(this);
        Limits = new EngineLimits(options, Logger, TimeProvider);
        Authorizer.PolicyChanged += OnPolicyChanged;
        _maintenance = TimeProvider.CreateTimer(static state => ((MqttBroker)state!).RunMaintenance(), this,
            TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    public MqttBrokerOptions Options { get; }

    /// <summary>Sessions held (connected and offline persistent ones).</summary>
    public long SessionCount => Volatile.Read(ref _sessionCount);

    /// <summary>Subscriptions in the index, shared-group members included.</summary>
    public long SubscriptionCount => _subscriptions.Count;

    public long RetainedMessageCount => _retained.Count;

    /// <summary>Messages queued for subscribers beyond their inflight windows.</summary>
    public long QueuedMessageCount => _budget.QueuedMessages;

    /// <summary>Bytes queued for subscribers (bounded by <see cref="MqttBrokerOptions.MaxQueuedBytesTotal"/>).</summary>
    public long QueuedBytes => _budget.QueuedBytes;

    /// <summary>Clients past a successful CONNACK and not yet closing.</summary>
    public int ConnectedClientCount => _connections.Keys.Count(c => c.IsConnected);

    /// <summary>PUBLISH packets accepted from clients (denied ones excluded).</summary>
    public long MessagesReceived => Interlocked.Read(ref _messagesReceived);

    /// <summary>PUBLISH packets written to subscribers.</summary>
    public long MessagesSent => Interlocked.Read(ref _messagesSent);

    /// <summary>Messages dropped for any reason (queue full, expired, too large, denied, session ended).</summary>
    public long MessagesDropped => Interlocked.Read(ref _messagesDropped);

    /// <summary>The engine's instruments (connections, messages, drops, authorization decisions).</summary>
    public MqttMetrics Metrics { get; }

    internal IMqttAuthorizer Authorizer { get; }

    /// <summary>Serves PUBLISH on reserved <c>$</c> topics (certificate renewal); null: they are routed like any topic.</summary>
    public IReservedTopicHandler? ReservedTopicHandler { get; set; }
    internal ILogger Logger { get; }
    internal TimeProvider TimeProvider { get; }
    internal AggregatedLog DropLog { get; }
    internal SubscriptionIndex Subscriptions => _subscriptions;
    internal RetainedMessageStore Retained => _retained;
    internal EngineLimits Limits { get; }

    public IReadOnlyList<ConnectedClientInfo> GetConnectedClients()
    {
        var result = new List<ConnectedClientInfo>();
        foreach (var connection in _connections.Keys)
        {
            if (connection.IsConnected && connection.ClientId is { } clientId)
            {
                result.Add(new ConnectedClientInfo(clientId, connection.RemoteEndPoint, connection.ProtocolVersion, connection.Certificate,
                    connection.ConnectedAt));
            }
        }
        result.Sort(static (a, b) => string.CompareOrdinal(a.ClientId, b.ClientId));
        return result;
    }

    /// <summary>Disconnects a connected client (5.0: DISCONNECT with <paramref name="reason"/>), keeping its session.</summary>
    public bool DisconnectClient(string clientId, MqttReasonCode reason) => DisconnectClient(clientId, reason, discardSession: false);

    /// <summary>Disconnects a connected client; with <paramref name="discardSession"/> its session is removed as well
    /// (no resumption). Returns false when no such client is connected.</summary>
    public bool DisconnectClient(string clientId, MqttReasonCode reason, bool discardSession)
    {
        MqttConnection? connection;
        lock (_sessionsLock)
        {
            if (!_sessions.TryGetValue(clientId, out var session))
            {
                return false;
            }
            lock (session.Sync)
            {
                connection = session.Connection;
            }
        }
        if (connection is null)
        {
            return false;
        }
        Logger.DisconnectedByServer(clientId, reason);
        connection.RequestClose(reason, discardSession);
        return true;
    }

    /// <summary>Sends DISCONNECT 0x8B (Server shutting down) to every client and waits until they are closed or
    /// <paramref name="cancellationToken"/> fires. Kestrel's own shutdown reaches connections the same way through
    /// IConnectionLifetimeNotificationFeature.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        var connections = _connections.Keys.ToArray();
        if (connections.Length > 0)
        {
            Logger.ShuttingDown(connections.Length);
        }
        foreach (var connection in connections)
        {
            connection.RequestClose(MqttReasonCode.ServerShuttingDown);
        }
        // Bounded by the caller's token; connections close within the close-flush timeout anyway.
        while (!_connections.IsEmpty && !cancellationToken.IsCancellationRequested)
        {
            try
            {
                // Real time on purpose: a test clock must not stall shutdown.
                await Task.Delay(TimeSpan.FromMilliseconds(20), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        Authorizer.PolicyChanged -= OnPolicyChanged;
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            await StopAsync(cts.Token).ConfigureAwait(false);
        }
        await _maintenance.DisposeAsync().ConfigureAwait(false);
        _ownedMetrics?.Dispose();
    }

    // ------------------------------------------------------------------ connections

    internal void Register(MqttConnection connection) => _connections.TryAdd(connection, 0);

    internal void Unregister(MqttConnection connection) => _connections.TryRemove(connection, out _);

    internal void CountSent() => Interlocked.Increment(ref _messagesSent);

    internal void CountDropped(int count = 1) => Interlocked.Add(ref _messagesDropped, count);

    /// <summary>Counts, meters and logs (aggregated) <paramref name="count"/> dropped messages of a client.</summary>
    internal void RecordDrop(string clientId, string reason, string? topic, int count = 1)
    {
        Metrics.MessageDropped(reason, count);
        CountDropped(count);
        DropLog.Record(clientId, reason, denial: false, topic, count);
    }

    /// <summary>A publisher waited for <paramref name="session"/> for the slow-subscriber timeout: declares it slow
    /// (if its queue is still full) and applies <see cref="MqttBrokerOptions.SlowSubscriberPolicy"/>.</summary>
    internal void DeclareSlow(MqttSession session)
    {
        var declaration = session.DeclareSlow();
        if (!declaration.Declared)
        {
            return;
        }
        var policy = Options.SlowSubscriberPolicy;
        Metrics.SlowSubscriber(policy == SlowSubscriberPolicy.Disconnect);
        Logger.SlowSubscriber(session.ClientId, Options.SlowSubscriberTimeout, policy);
        if (declaration.DroppedQos0 > 0)
        {
            RecordDrop(session.ClientId, MqttMetrics.DropReasons.SlowSubscriber, null, declaration.DroppedQos0);
        }
        if (policy == SlowSubscriberPolicy.Disconnect)
        {
            declaration.Connection?.RequestClose(MqttReasonCode.QuotaExceeded);
        }
    }

    /// <summary>
    /// Binds <paramref name="connection"/> to the session of <paramref name="clientId"/> (§3.1.2.4, §4.1). An existing
    /// connection with the same ClientId is taken over: 5.0 DISCONNECT 0x8E, then closed [MQTT-3.1.4-3]. Clean Start
    /// discards an existing session [MQTT-3.1.2-4]; otherwise it is resumed with its unacknowledged messages.
    /// </summary>
    internal (MqttSession Session, bool SessionPresent) AttachSession(MqttConnection connection, string clientId, bool cleanStart,
        uint expiryInterval, IClientGrants grants)
    {
        List<WillState>? wills = null;
        MqttSession session;
        bool present;
        lock (_sessionsLock)
        {
            _sessions.TryGetValue(clientId, out var existing);
            if (existing is not null)
            {
                MqttConnection? previous;
                lock (existing.Sync)
                {
                    previous = existing.Connection;
                    existing.Connection = null;
                }
                if (previous is not null)
                {
                    Logger.SessionTakenOver(clientId, connection.RemoteEndPoint);
                    var oldWill = previous.TakeWill();
                    previous.RequestClose(MqttReasonCode.SessionTakenOver);
                    // The old connection ended abnormally from the broker's point of view: its will is due, unless the
                    // session is resumed within the Will Delay Interval [MQTT-3.1.3-9].
                    if (oldWill is not null && (cleanStart || oldWill.DelaySeconds == 0))
                    {
                        (wills ??= []).Add(oldWill);
                    }
                }

                if (cleanStart)
                {
                    EndSessionLocked(existing, ref wills);
                    existing = null;
                }
                else
                {
                    lock (existing.Sync)
                    {
                        // Reconnected before the Will Delay Interval passed: the will is not sent [MQTT-3.1.3-9].
                        existing.DelayedWill = null;
                    }
                    _offline.Remove(existing);
                }
            }

            if (existing is null)
            {
                session = new MqttSession(clientId, _budget);
                _sessions.Add(clientId, session);
                Interlocked.Increment(ref _sessionCount);
                present = false;
            }
            else
            {
                session = existing;
                present = true;
            }

            lock (session.Sync)
            {
                session.Connection = connection;
                session.ExpiryInterval = expiryInterval;
                session.ExpiresAt = null;
                session.Grants = grants;
                session.PrepareResendLocked();
            }
        }

        PublishWills(wills);
        if (present)
        {
            // The new connection may hold a different certificate or the policy may have changed meanwhile.
            RevalidateSubscriptions(session, grants);
        }
        return (session, present);
    }

    /// <summary>
    /// Called once when a connection that was attached to a session ends. <paramref name="will"/> is the will to
    /// publish (null after a normal DISCONNECT or when it was taken over). A session with expiry 0 ends now; a
    /// persistent one stays, with its will delayed per Will Delay Interval (published at the latest when the session
    /// ends) [MQTT-3.1.3-9], [MQTT-3.1.2-8].
    /// </summary>
    internal void OnConnectionClosed(MqttConnection connection, WillState? will, bool discardSession)
    {
        var session = connection.Session;
        if (session is null)
        {
            return;
        }

        List<WillState>? wills = null;
        lock (_sessionsLock)
        {
            bool mine;
            lock (session.Sync)
            {
                mine = ReferenceEquals(session.Connection, connection) && !session.Ended;
                if (mine)
                {
                    session.Connection = null;
                }
            }

            if (!mine)
            {
                if (will is not null)
                {
                    (wills ??= []).Add(will);
                }
                if (discardSession && !session.Ended && _sessions.TryGetValue(session.ClientId, out var current) && ReferenceEquals(current, session))
                {
                    EndSessionLocked(session, ref wills);
                }
            }
            else if (discardSession || session.ExpiryInterval == 0)
            {
                if (will is not null)
                {
                    (wills ??= []).Add(will);
                }
                EndSessionLocked(session, ref wills);
            }
            else
            {
                var now = TimeProvider.GetUtcNow();
                lock (session.Sync)
                {
                    session.ExpiresAt = now.AddSeconds(session.ExpiryInterval);
                    if (will is not null)
                    {
                        if (will.DelaySeconds == 0)
                        {
                            (wills ??= []).Add(will);
                        }
                        else
                        {
                            session.DelayedWill = new PendingWill(will, now.AddSeconds(Math.Min(will.DelaySeconds, session.ExpiryInterval)));
                        }
                    }
                }
                _offline.Add(session);
            }
        }

        PublishWills(wills);
    }

    internal void SetSessionExpiry(MqttSession session, uint expiryInterval)
    {
        lock (session.Sync)
        {
            session.ExpiryInterval = expiryInterval;
        }
    }

    // ------------------------------------------------------------------ subscriptions

    /// <summary>Adds or replaces (same filter) a subscription [MQTT-3.8.4-3]. Returns true when it is new.</summary>
    internal bool AddSubscription(MqttSession session, Subscription subscription)
    {
        lock (session.Sync)
        {
            if (session.Ended)
            {
                return false;
            }
            var isNew = !session.Subscriptions.ContainsKey(subscription.Filter);
            session.Subscriptions[subscription.Filter] = subscription;
            _subscriptions.Add(subscription);
            return isNew;
        }
    }

    internal bool RemoveSubscription(MqttSession session, string filter)
    {
        lock (session.Sync)
        {
            if (!session.Subscriptions.Remove(filter, out var subscription))
            {
                return false;
            }
            _subscriptions.Remove(subscription);
            return true;
        }
    }

    /// <summary>Removes the subscriptions <paramref name="grants"/> no longer allow; returns how many.</summary>
    internal int RevalidateSubscriptions(MqttSession session, IClientGrants grants)
    {
        Subscription[] subscriptions;
        lock (session.Sync)
        {
            subscriptions = session.Subscriptions.Values.ToArray();
        }

        var removed = 0;
        foreach (var subscription in subscriptions)
        {
            if (!grants.CanSubscribe(subscription.TopicFilter))
            {
                lock (session.Sync)
                {
                    if (session.Subscriptions.TryGetValue(subscription.Filter, out var current) && ReferenceEquals(current, subscription))
                    {
                        session.Subscriptions.Remove(subscription.Filter);
                        _subscriptions.Remove(subscription);
                        removed++;
                    }
                }
                Logger.SubscriptionRevoked(session.ClientId, subscription.Filter);
            }
        }
        return removed;
    }

    /// <summary>Queues the retained messages matching a new subscription, with RETAIN=1 [MQTT-3.3.1-8] (3.1.1) /
    /// 5.0 §3.3.1.3, at the lower of the message's and the subscription's QoS.</summary>
    internal void DeliverRetained(Subscription subscription)
    {
        var messages = new List<MqttApplicationMessage>();
        _retained.Match(subscription.TopicFilter, TimeProvider.GetUtcNow(), messages);
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
                Metrics.AuthorizationDecision(MqttMetrics.Actions.Receive, false);
                continue;
            }
            due.Add((message, TopicFilters.Min(message.Qos, subscription.Options.MaximumQos), ids));
        }
        // All of them [MQTT-3.3.1-6], however many: they stream through the inflight window as the client acknowledges.
        session.EnqueueRetained(due);
    }

    // ------------------------------------------------------------------ publish

    /// <summary>
    /// Routes an accepted PUBLISH: stores/clears the retained message, then queues one copy per matching session
    /// and one per matching share group. The payload is copied out of the input buffer once, only if someone
    /// needs it, and that one array is shared by all recipients. Returns the number of recipients.
    /// </summary>
    internal int Publish(string topic, in ReadOnlySequence<byte> payload, MqttQos qos, bool retain, MqttProperties? properties,
        string? publisherClientId, DeliveryContext? context = null) => Publish(topic, payload, qos, retain, properties, publisherClientId, context, out _);

    /// <param name="retainRefused">true when the message was delivered but, over a retained limit, not retained.</param>
    internal int Publish(string topic, in ReadOnlySequence<byte> payload, MqttQos qos, bool retain, MqttProperties? properties,
        string? publisherClientId, DeliveryContext? context, out bool retainRefused)
    {
        retainRefused = false;
        Interlocked.Increment(ref _messagesReceived);
        var matches = t_matches ??= new List<Subscription>();
        var groups = t_groups ??= new List<SharedGroup>();
        try
        {
            _subscriptions.Match(topic, matches, groups);
            var store = retain && Options.RetainAvailable;
            if (matches.Count == 0 && groups.Count == 0 && !store)
            {
                return 0;
            }

            var message = MqttApplicationMessage.Create(topic, payload.ToArray(), qos, retain, properties, publisherClientId,
                TimeProvider.GetUtcNow());
            if (store && _retained.TrySet(message, Limits.Retained) is { } exceeded)
            {
                retainRefused = true;
                Limits.RetainRefused(exceeded, publisherClientId, topic, message.Payload.Length);
            }
            return Deliver(message, matches, groups, context);
        }
        finally
        {
            matches.Clear();
            groups.Clear();
        }
    }

    /// <summary>
    /// Overlapping subscriptions of one session (5.0 §4.8: one delivery per subscription would be allowed) are merged
    /// into ONE delivery at the highest granted QoS carrying every Subscription Identifier: fewer duplicates for the
    /// device, and 3.1.1 requires exactly that [MQTT-3.3.5-1]. Shared subscriptions are deliveries of their own.
    /// </summary>
    private int Deliver(MqttApplicationMessage message, List<Subscription> matches, List<SharedGroup> groups, DeliveryContext? context)
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
            if (any && DeliverTo(session, message, TopicFilters.Min(message.Qos, qos), message.Retain && retainAsPublished, ids, context))
            {
                delivered++;
            }
        }

        foreach (var group in groups)
        {
            if (DeliverToGroup(group, message, context))
            {
                delivered++;
            }
        }
        return delivered;
    }

    /// <summary>One member per message (5.0 §4.8.2), round-robin, preferring connected members
    /// allowed to receive the topic; a message is queued in an offline member's session only if no member is
    /// connected.</summary>
    private bool DeliverToGroup(SharedGroup group, MqttApplicationMessage message, DeliveryContext? context)
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
                return DeliverShared(member, message, context);
            }
            offlineCandidate ??= member;
        }
        return offlineCandidate is not null && DeliverShared(offlineCandidate, message, context);
    }

    private bool DeliverShared(Subscription member, MqttApplicationMessage message, DeliveryContext? context)
    {
        var ids = member.SubscriptionId != 0 ? new[] { member.SubscriptionId } : null;
        return DeliverTo(member.Session, message, TopicFilters.Min(message.Qos, member.Options.MaximumQos),
            message.Retain && member.Options.RetainAsPublished, ids, context);
    }

    private bool DeliverTo(MqttSession session, MqttApplicationMessage message, MqttQos qos, bool retain, uint[]? subscriptionIds,
        DeliveryContext? context)
    {
        // CanReceive is checked per subscriber at delivery time; the writer checks again with the grants of the
        // connection that finally sends it.
        if (session.Grants is { } grants)
        {
            var allowed = grants.CanReceive(message.Topic);
            Metrics.AuthorizationDecision(MqttMetrics.Actions.Receive, allowed);
            if (!allowed)
            {
                return false;
            }
        }

        var result = session.Enqueue(message, qos, retain, subscriptionIds);
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

    // ------------------------------------------------------------------ wills, expiry, policy

    private void PublishWills(List<WillState>? wills)
    {
        if (wills is null)
        {
            return;
        }
        foreach (var will in wills)
        {
            // The will is an application message of its client: it needs the client's right to publish.
            var allowed = will.Grants.CanPublish(will.Topic, will.Qos, will.Retain);
            Metrics.AuthorizationDecision(MqttMetrics.Actions.Publish, allowed);
            if (!allowed)
            {
                Logger.WillDenied(will.ClientId, will.Topic);
                continue;
            }
            Publish(will.Topic, new ReadOnlySequence<byte>(will.Payload), will.Qos, will.Retain, will.Properties, will.ClientId);
            Logger.WillPublished(will.ClientId, will.Topic);
        }
    }

    /// <summary>Ends a session: subscriptions leave the index, queued messages are counted as dropped, a delayed will
    /// becomes due. Caller holds <see cref="_sessionsLock"/>.</summary>
    private void EndSessionLocked(MqttSession session, ref List<WillState>? wills)
    {
        if (_sessions.TryGetValue(session.ClientId, out var current) && ReferenceEquals(current, session))
        {
            _sessions.Remove(session.ClientId);
            Interlocked.Decrement(ref _sessionCount);
        }
        _offline.Remove(session);

        (int Qos12, int Qos0) lost;
        lock (session.Sync)
        {
            if (session.Ended)
            {
                return;
            }
            foreach (var subscription in session.Subscriptions.Values)
            {
                _subscriptions.Remove(subscription);
            }
            session.Subscriptions.Clear();
            if (session.DelayedWill is { } delayed)
            {
                (wills ??= []).Add(delayed.Will);
            }
            lost = session.EndLocked();
        }

        if (lost.Qos12 + lost.Qos0 > 0)
        {
            Logger.SessionEndedWithMessages(session.ClientId, lost.Qos12, lost.Qos0);
            Metrics.MessageDropped(MqttMetrics.DropReasons.SessionEnded, lost.Qos12 + lost.Qos0);
            CountDropped(lost.Qos12 + lost.Qos0);
        }
    }

    internal void RunMaintenance()
    {
        DropLog.Flush();
        List<WillState>? wills = null;
        var now = TimeProvider.GetUtcNow();
        lock (_sessionsLock)
        {
            if (_offline.Count == 0)
            {
                return;
            }
            List<MqttSession>? expired = null;
            foreach (var session in _offline)
            {
                lock (session.Sync)
                {
                    if (session.DelayedWill is { } pending && pending.DueAt <= now)
                    {
                        (wills ??= []).Add(pending.Will);
                        session.DelayedWill = null;
                    }
                    if (session.ExpiresAt is { } at && at <= now)
                    {
                        (expired ??= []).Add(session);
                    }
                }
            }
            if (expired is not null)
            {
                foreach (var session in expired)
                {
                    Logger.SessionExpired(session.ClientId);
                    EndSessionLocked(session, ref wills);
                }
            }
        }
        PublishWills(wills);
    }

    /// <summary>Re-resolves the grants of every connected client against the new policy; clients no longer allowed
    /// are disconnected (5.0: 0x87), subscriptions no longer allowed are removed.</summary>
    private void OnPolicyChanged()
    {
        int clients = 0, disconnected = 0, removed = 0;
        foreach (var connection in _connections.Keys)
        {
            if (!connection.IsConnected || connection.ClientInfo is not { } info || connection.Session is not { } session)
            {
                continue;
            }
            clients++;
            var decision = Authorizer.AuthorizeConnect(info);
            if (!decision.Allowed || decision.Grants is null)
            {
                Logger.ReauthorizationDenied(info.ClientId, decision.Reason);
                connection.RequestClose(MqttReasonCode.NotAuthorized);
                disconnected++;
                continue;
            }
            connection.UpdateGrants(decision.Grants);
            removed += RevalidateSubscriptions(session, decision.Grants);
        }
        Logger.PolicyReapplied(clients, disconnected, removed);
    }
}
