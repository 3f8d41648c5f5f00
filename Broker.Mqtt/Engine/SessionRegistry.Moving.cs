using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// A persistent session moving here from another node of a cluster, in two steps. First its subscriptions are installed
/// in a session of its own here, not yet stored (the cluster then forwards matching messages to this node too, and they
/// queue in it); then, once the other node let go, its messages and state as that node left them are restored into it,
/// and the whole session is written to the store. A message published during the move may arrive both ways: a
/// duplicate, never a loss.
/// </summary>
internal sealed partial class SessionRegistry
{
    public bool HasSession(string clientId)
    {
        lock (_sessionsLock)
        {
            return _sessions.ContainsKey(clientId);
        }
    }

    /// <summary>Step 1: the session with <paramref name="moved"/>'s subscriptions allowed by <paramref name="grants"/>;
    /// null when a session of this client exists here already.</summary>
    public MqttSession? BeginMove(StoredSessionState moved, IClientGrants grants)
    {
        var clientId = moved.Session.ClientId;
        var session = new MqttSession(clientId, _budget) { Cluster = _router.Cluster };
        lock (_sessionsLock)
        {
            if (!_sessions.TryAdd(clientId, session))
            {
                return null;
            }
            Interlocked.Increment(ref _sessionCount);
            lock (session.Sync)
            {
                session.ExpiryInterval = moved.Session.ExpiryInterval;
                session.ExpiresAt = _time.GetUtcNow().AddSeconds(moved.Session.ExpiryInterval);
                session.Grants = grants;
                session.Identity = SessionIdentity.FromStored(moved.Session);
                session.NumberAfterMovedLocked();
                SetMovedSubscriptionsLocked(session, moved.Subscriptions, grants);
            }
            _offline.Add(session);
        }
        return session;
    }

    /// <summary>Step 2: the session as the other node left it (null: it ended there; the session here goes and the
    /// client gets a new one). Written to the store whole.</summary>
    public void CompleteMove(MqttSession session, StoredSessionState? final, IClientGrants grants)
    {
        if (final is null)
        {
            lock (_sessionsLock)
            {
                List<WillState>? none = null;
                EndSessionLocked(session, ref none);
            }
            return;
        }
        lock (_sessionsLock)
        {
            lock (session.Sync)
            {
                if (session.Ended)
                {
                    return;
                }
                session.ExpiryInterval = final.Session.ExpiryInterval;
                SetMovedSubscriptionsLocked(session, final.Subscriptions, grants);
                if (final.Will is { } will)
                {
                    session.DelayedWill = WillStates.FromStored(session.ClientId, will, grants, _time.GetUtcNow());
                }
            }
            session.RestoreMoved(final);
            lock (session.Sync)
            {
                if (session.ExpiryInterval > 0 && _store is not null)
                {
                    // The session row first, then everything it holds (subscriptions, messages, inbound QoS 2).
                    _store.Append(new SessionSaved(session.ToStoredLocked()));
                    session.SetStoreLocked(_store);
                    if (session.DelayedWill is { } delayed)
                    {
                        _store.Append(new WillSaved(session.ClientId, WillStates.ToStored(delayed)));
                    }
                }
            }
        }
    }

    /// <summary>Makes the session's subscriptions those of <paramref name="stored"/> (within its grants). Caller holds
    /// the sessions lock and the session's Sync.</summary>
    private void SetMovedSubscriptionsLocked(MqttSession session, IReadOnlyList<StoredSubscription> stored, IClientGrants grants)
    {
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var row in stored)
        {
            var subscription = Subscription.FromStored(session, row);
            if (!grants.CanSubscribe(subscription.TopicFilter))
            {
                _logger.SubscriptionRevoked(session.ClientId, row.Filter);
                continue;
            }
            wanted.Add(subscription.Filter);
            if (session.Subscriptions.ContainsKey(subscription.Filter))
            {
                continue;
            }
            session.Subscriptions[subscription.Filter] = subscription;
            _router.Subscriptions.Add(subscription);
        }
        foreach (var (filter, subscription) in session.Subscriptions.ToArray())
        {
            if (!wanted.Contains(filter))
            {
                session.Subscriptions.Remove(filter);
                _router.Subscriptions.Remove(subscription);
            }
        }
    }
}
