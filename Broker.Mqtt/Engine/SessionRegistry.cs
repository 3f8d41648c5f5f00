using System.Buffers;
using Microsoft.Extensions.Logging;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Diagnostics;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// Every session (connected and offline persistent ones): attach and takeover, expiry, wills, subscriptions, and the
/// session's grants. The state store attaches here: each change of a persistent session (Session Expiry Interval
/// &gt; 0) is appended to <see cref="ISessionStore"/> where it happens. Lock order: <see cref="_sessionsLock"/>, then a
/// session's Sync, then the subscription index or the store's queue.
/// </summary>
internal sealed partial class SessionRegistry
{
    private readonly Lock _sessionsLock = new();
    private readonly Dictionary<string, MqttSession> _sessions = new(StringComparer.Ordinal);
    // Sessions without a connection that will expire or have a delayed will; scanned by the maintenance timer.
    private readonly HashSet<MqttSession> _offline = new(ReferenceEqualityComparer.Instance);
    private readonly MqttBrokerOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly MqttMetrics _metrics;
    private readonly MessageRouter _router;
    private readonly ISessionStore? _store;
    private readonly QueueBudget _budget;
    private int _sessionCount;

    public SessionRegistry(MqttBrokerOptions options, ILogger logger, TimeProvider time, MqttMetrics metrics, MessageRouter router, ISessionStore? store,
        QueueBudget budget)
    {
        _budget = budget;
        _metrics = metrics;
        _options = options;
        _logger = logger;
        _time = time;
        _router = router;
        _store = store;
    }

    public long SessionCount => Volatile.Read(ref _sessionCount);

    /// <summary>The connection bound to <paramref name="clientId"/>'s session, if any.</summary>
    public MqttConnection? FindConnection(string clientId)
    {
        lock (_sessionsLock)
        {
            if (!_sessions.TryGetValue(clientId, out var session))
            {
                return null;
            }
            lock (session.Sync)
            {
                return session.Connection;
            }
        }
    }

    /// <summary>
    /// Binds <paramref name="connection"/> to the session of <paramref name="clientId"/> (§3.1.2.4, §4.1). An existing
    /// connection with the same ClientId is taken over: 5.0 DISCONNECT 0x8E, then closed [MQTT-3.1.4-3]. Clean Start
    /// discards an existing session [MQTT-3.1.2-4]; otherwise it is resumed with its unacknowledged messages.
    /// </summary>
    public (MqttSession Session, bool SessionPresent) AttachSession(MqttConnection connection, string clientId, bool cleanStart,
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
                    _logger.SessionTakenOver(clientId, connection.RemoteEndPoint);
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
                        if (existing.DelayedWill is not null)
                        {
                            existing.Store?.Append(new WillDeleted(clientId));
                        }
                        existing.DelayedWill = null;
                    }
                    _offline.Remove(existing);
                }
            }

            if (existing is null)
            {
                session = new MqttSession(clientId, _budget) { Cluster = _router.Cluster };
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
                session.Identity = SessionIdentity.Of(connection);
                session.PrepareResendLocked();
                Persist(session, expiryInterval > 0 ? _store : null);
                PersistConnectedWill(session, connection.Will);
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

    /// <summary>Writes the session row (and, when it just became persistent, what it holds); a session that stops
    /// being persistent leaves the store. Caller holds the session's Sync.</summary>
    private static void Persist(MqttSession session, ISessionStore? store)
    {
        if (store is null)
        {
            session.Store?.Append(new SessionDeleted(session.ClientId));
            session.SetStoreLocked(null);
            return;
        }
        store.Append(new SessionSaved(session.ToStoredLocked()));
        session.SetStoreLocked(store);
    }

    /// <summary>
    /// Called once when a connection that was attached to a session ends. <paramref name="will"/> is the will to
    /// publish (null after a normal DISCONNECT or when it was taken over). A session with expiry 0 ends now; a
    /// persistent one stays, with its will delayed per Will Delay Interval (published at the latest when the session
    /// ends) [MQTT-3.1.3-9], [MQTT-3.1.2-8].
    /// </summary>
    public void OnConnectionClosed(MqttConnection connection, WillState? will, bool discardSession)
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
                var now = _time.GetUtcNow();
                lock (session.Sync)
                {
                    session.ExpiresAt = now.AddSeconds(session.ExpiryInterval);
                    if (will is not null && will.DelaySeconds > 0)
                    {
                        session.DelayedWill = new PendingWill(will, now.AddSeconds(Math.Min(will.DelaySeconds, session.ExpiryInterval)));
                        session.Store?.Append(new WillSaved(session.ClientId, WillStates.ToStored(session.DelayedWill)));
                    }
                    else
                    {
                        if (will is not null)
                        {
                            (wills ??= []).Add(will);
                        }
                        // Published now or discarded (normal DISCONNECT): the row written at CONNECT goes.
                        session.Store?.Append(new WillDeleted(session.ClientId));
                    }
                    session.Store?.Append(new SessionSaved(session.ToStoredLocked()));
                }
                _offline.Add(session);
            }
        }

        PublishWills(wills);
    }

    public void SetSessionExpiry(MqttSession session, uint expiryInterval)
    {
        lock (session.Sync)
        {
            session.ExpiryInterval = expiryInterval;
            if (expiryInterval > 0)
            {
                session.Store?.Append(new SessionSaved(session.ToStoredLocked()));
            }
        }
    }

    // ------------------------------------------------------------------ subscriptions

    /// <summary>Adds or replaces (same filter) a subscription [MQTT-3.8.4-3]. Returns true when it is new.</summary>
    public bool AddSubscription(MqttSession session, Subscription subscription)
    {
        lock (session.Sync)
        {
            if (session.Ended)
            {
                return false;
            }
            var isNew = !session.Subscriptions.ContainsKey(subscription.Filter);
            session.Subscriptions[subscription.Filter] = subscription;
            _router.Subscriptions.Add(subscription);
            session.Store?.Append(new SubscriptionSaved(session.ClientId, subscription.ToStored()));
            return isNew;
        }
    }

    public bool RemoveSubscription(MqttSession session, string filter)
    {
        lock (session.Sync)
        {
            if (!session.Subscriptions.Remove(filter, out var subscription))
            {
                return false;
            }
            _router.Subscriptions.Remove(subscription);
            session.Store?.Append(new SubscriptionDeleted(session.ClientId, filter));
            return true;
        }
    }

    /// <summary>Removes the subscriptions <paramref name="grants"/> no longer allow; returns how many.</summary>
    public int RevalidateSubscriptions(MqttSession session, IClientGrants grants)
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
                        _router.Subscriptions.Remove(subscription);
                        session.Store?.Append(new SubscriptionDeleted(session.ClientId, subscription.Filter));
                        removed++;
                    }
                }
                _logger.SubscriptionRevoked(session.ClientId, subscription.Filter);
            }
        }
        return removed;
    }

    // ------------------------------------------------------------------ wills, expiry

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
            _metrics.AuthorizationDecision(MqttMetrics.Actions.Publish, allowed);
            if (!allowed)
            {
                _logger.WillDenied(will.ClientId, will.Topic);
                continue;
            }
            _router.Publish(will.Topic, new ReadOnlySequence<byte>(will.Payload), will.Qos, will.Retain, will.Properties, will.ClientId, context: null, out _, out _);
            _logger.WillPublished(will.ClientId, will.Topic);
        }
    }

    /// <summary>Ends a session: subscriptions leave the index, queued messages are counted as dropped, a delayed will
    /// becomes due, the persisted session is deleted. Caller holds <see cref="_sessionsLock"/>.</summary>
    /// <summary>Ends a session (caller holds the sessions lock): out of the registry and the index, its rows deleted, its
    /// delayed will added to <paramref name="wills"/>. <paramref name="moved"/>: it lives on with another node of a
    /// cluster, so its will is not due and its messages are not lost.</summary>
    private void EndSessionLocked(MqttSession session, ref List<WillState>? wills, bool moved = false)
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
                _router.Subscriptions.Remove(subscription);
            }
            session.Subscriptions.Clear();
            if (!moved && session.DelayedWill is { } delayed)
            {
                (wills ??= []).Add(delayed.Will);
            }
            session.Store?.Append(new SessionDeleted(session.ClientId));
            session.SetStoreLocked(null);
            ForgetConnectedWillLocked(session);
            lost = session.EndLocked();
        }

        if (!moved && lost.Qos12 + lost.Qos0 > 0)
        {
            _logger.SessionEndedWithMessages(session.ClientId, lost.Qos12, lost.Qos0);
            _metrics.MessageDropped(MqttMetrics.DropReasons.SessionEnded, lost.Qos12 + lost.Qos0);
            _router.CountDropped(lost.Qos12 + lost.Qos0);
        }
    }

    public void RunMaintenance()
    {
        List<WillState>? wills = null;
        var now = _time.GetUtcNow();
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
                        session.Store?.Append(new WillDeleted(session.ClientId));
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
                    _logger.SessionExpired(session.ClientId);
                    EndSessionLocked(session, ref wills);
                }
            }
        }
        PublishWills(wills);
    }
}
