using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Cluster.Replica;

/// <summary>
/// One client's session as the replica's operations describe it, applied in order (a rollup starts from nothing).
/// The writer keeps one per client without payloads (<see cref="KeepMessages"/> false: only which messages are still
/// live, to know when a rollup can be small); a reader rebuilds the whole session.
/// </summary>
internal sealed class ReplicaState(bool keepMessages)
{
    private readonly Dictionary<string, StoredSubscription> _subscriptions = new(StringComparer.Ordinal);
    private readonly SortedDictionary<long, StoredQueuedMessage?> _messages = [];
    private readonly SortedSet<ushort> _inbound = [];

    public bool KeepMessages { get; } = keepMessages;

    public StoredSession? Session { get; private set; }

    public StoredWill? Will { get; private set; }

    /// <summary>Messages queued or in flight.</summary>
    public int LiveMessages => _messages.Count;

    /// <summary>Operations applied since the state was last written whole (a rollup).</summary>
    public int SinceRollup { get; set; }

    public void Reset()
    {
        Session = null;
        Will = null;
        _subscriptions.Clear();
        _messages.Clear();
        _inbound.Clear();
        SinceRollup = 0;
    }

    public void Apply(StoreOperation operation)
    {
        SinceRollup++;
        switch (operation)
        {
            case SessionSaved s:
                Session = s.Session;
                break;
            case SessionDeleted:
                Reset();
                break;
            case SubscriptionSaved s:
                _subscriptions[s.Subscription.Filter] = s.Subscription;
                break;
            case SubscriptionDeleted s:
                _subscriptions.Remove(s.Filter);
                break;
            case MessageQueued s:
                _messages[s.Sequence] = KeepMessages
                    ? new StoredQueuedMessage(s.Sequence, s.Message, s.Qos, s.Retain, s.SubscriptionIds, StoredMessageState.Queued, 0)
                    : null;
                break;
            case MessageStateChanged s when _messages.TryGetValue(s.Sequence, out var queued):
                // From PUBREC on only PUBREL is due: the payload is no longer needed.
                _messages[s.Sequence] = queued is null ? null : queued with
                {
                    State = s.State,
                    PacketId = s.PacketId,
                    Message = s.State == StoredMessageState.AwaitingPubComp ? null : queued.Message,
                };
                break;
            case MessageStateChanged { State: StoredMessageState.AwaitingPubComp } s:
                // Written whole (a rollup) after its PUBREC: only the PUBREL is still due, no payload.
                _messages[s.Sequence] = KeepMessages
                    ? new StoredQueuedMessage(s.Sequence, null, 2, false, null, StoredMessageState.AwaitingPubComp, s.PacketId)
                    : null;
                break;
            case MessageDeleted s:
                _messages.Remove(s.Sequence);
                break;
            case InboundQos2Saved s:
                _inbound.Add(s.PacketId);
                break;
            case InboundQos2Deleted s:
                _inbound.Remove(s.PacketId);
                break;
            case WillSaved s:
                Will = s.Will;
                break;
            case WillDeleted:
                Will = null;
                break;
        }
    }

    /// <summary>The operations that rebuild this state from nothing (a rollup); without messages when they are not
    /// kept (only valid while <see cref="LiveMessages"/> is 0).</summary>
    public List<StoreOperation> ToOperations()
    {
        var operations = new List<StoreOperation>();
        if (Session is not { } session)
        {
            return operations;
        }
        operations.Add(new SessionSaved(session));
        foreach (var subscription in _subscriptions.Values)
        {
            operations.Add(new SubscriptionSaved(session.ClientId, subscription));
        }
        foreach (var packetId in _inbound)
        {
            operations.Add(new InboundQos2Saved(session.ClientId, packetId));
        }
        if (Will is { } will)
        {
            operations.Add(new WillSaved(session.ClientId, will));
        }
        foreach (var queued in _messages.Values)
        {
            if (queued is null)
            {
                continue;
            }
            if (queued.Message is { } message)
            {
                operations.Add(new MessageQueued(session.ClientId, queued.Sequence, message, queued.Qos, queued.Retain, queued.SubscriptionIds));
            }
            if (queued.State != StoredMessageState.Queued)
            {
                operations.Add(new MessageStateChanged(session.ClientId, queued.Sequence, queued.State, queued.PacketId));
            }
        }
        return operations;
    }

    /// <summary>The session as the engine restores it; null when there is none (never saved, or deleted).</summary>
    public StoredSessionState? ToStored() => Session is { } session
        ? new StoredSessionState(session, [.. _subscriptions.Values], [.. _messages.Values.OfType<StoredQueuedMessage>()], [.. _inbound], Will)
        : null;
}
