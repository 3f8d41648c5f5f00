using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

/// <summary>The session's side of persistence: what it writes when it becomes persistent, and how it is refilled
/// at start-up. Every other change is appended where it happens (MqttSession.cs), under <see cref="Sync"/>.</summary>
internal sealed partial class MqttSession
{
    /// <summary>A persisted QoS 1/2 row is done for this client (acknowledged, expired, refused, dropped).</summary>
    private void Forget(MqttQos qos, long sequence)
    {
        if (qos != MqttQos.AtMostOnce)
        {
            _store?.Append(new MessageDeleted(ClientId, sequence));
        }
    }

    /// <summary>Makes the session persistent in <paramref name="store"/> (or not, with null). Becoming persistent writes
    /// what the session already holds after the session row the caller appended. Caller holds <see cref="Sync"/>.</summary>
    public void SetStoreLocked(ISessionStore? store)
    {
        var was = _store;
        _store = store;
        if (store is null || ReferenceEquals(was, store))
        {
            return;
        }
        foreach (var subscription in Subscriptions.Values)
        {
            store.Append(new SubscriptionSaved(ClientId, subscription.ToStored()));
        }
        foreach (var entry in _inflight.Values.OrderBy(static e => e.Sequence))
        {
            if (entry.Message is { } message)
            {
                store.Append(new MessageQueued(ClientId, entry.Sequence, message.ToStored(), (byte)entry.Qos, entry.Retain, entry.SubscriptionIds));
            }
            store.Append(new MessageStateChanged(ClientId, entry.Sequence, entry.State switch
            {
                InflightState.AwaitingPubAck => StoredMessageState.AwaitingPubAck,
                InflightState.AwaitingPubRec => StoredMessageState.AwaitingPubRec,
                _ => StoredMessageState.AwaitingPubComp,
            }, entry.PacketId));
        }
        foreach (var item in _qos12)
        {
            store.Append(new MessageQueued(ClientId, item.Sequence, item.Message.ToStored(), (byte)item.Qos, item.Retain, item.SubscriptionIds));
        }
        foreach (var packetId in _inboundQos2)
        {
            store.Append(new InboundQos2Saved(ClientId, packetId));
        }
    }

    /// <summary>Refills a session restored at start-up (before any connection exists). Returns how many messages were
    /// restored.</summary>
    public int Restore(StoredSessionState state)
    {
        lock (Sync)
        {
            _lastPacketId = state.Session.LastPacketId;
            _qos12.EnsureCapacity(state.Messages.Count);
            var count = 0;
            var queued = 0;
            long queuedBytes = 0;
            foreach (var row in state.Messages)
            {
                _sequence = Math.Max(_sequence, row.Sequence);
                var qos = (MqttQos)row.Qos;
                var message = row.Message is null ? null : MqttApplicationMessage.FromStored(row.Message);
                if (row.State == StoredMessageState.Queued)
                {
                    if (message is not null)
                    {
                        _qos12.Enqueue(new QueuedMessage(message, qos, row.Retain, row.SubscriptionIds, row.Sequence));
                        // Counted against the queue limits and the global budget like any queued message.
                        _queuedBytes += message.QueuedSize;
                        queued++;
                        queuedBytes += message.QueuedSize;
                        count++;
                    }
                    continue;
                }
                var inflight = new InflightMessage(row.PacketId, message!, qos, row.Retain, row.SubscriptionIds, row.Sequence)
                {
                    State = row.State switch
                    {
                        StoredMessageState.AwaitingPubAck => InflightState.AwaitingPubAck,
                        StoredMessageState.AwaitingPubRec => InflightState.AwaitingPubRec,
                        _ => InflightState.AwaitingPubComp,
                    },
                };
                if (inflight.State == InflightState.AwaitingPubComp)
                {
                    inflight.Message = null;
                }
                // A packet identifier is unique among a session's inflight messages; a duplicate row cannot be resent.
                if (_inflight.TryAdd(row.PacketId, inflight))
                {
                    count++;
                }
            }
            _budget.Add(queued, queuedBytes);
            foreach (var packetId in state.InboundQos2)
            {
                _inboundQos2.Add(packetId);
            }
            return count;
        }
    }

    /// <summary>Version, user name and certificate chain of the latest connection (for re-authorization after a
    /// restart). Guarded by <see cref="Sync"/>.</summary>
    public SessionIdentity? Identity { get; set; }

    /// <summary>The session row. Caller holds <see cref="Sync"/>.</summary>
    public StoredSession ToStoredLocked() => new(ClientId, ExpiryInterval, ExpiresAt, (byte)(Identity?.ProtocolVersion ?? MqttProtocolVersion.V500),
        Identity?.UserName, Identity?.ChainPem, _lastPacketId);

    private long _unsentRowsPosition;

    /// <summary>The store position of the rows written by the last <see cref="TakeOutbound"/> for retained messages
    /// streamed after SUBSCRIBE (0: none); the writer sends that batch only once they are committed (strict), since
    /// nothing else would bring such a message back after a crash. Reading resets it.</summary>
    public long TakeUnsentRowsPosition() => Interlocked.Exchange(ref _unsentRowsPosition, 0);

    /// <summary>A non-persistent session whose connection's will has a row (a session row with expiry 0) in the store.
    /// Guarded by <see cref="Sync"/>.</summary>
    public bool TransientWillStored { get; set; }

    /// <summary>A restored session's rows are in the store already. Caller holds <see cref="Sync"/>.</summary>
    public void AttachRestoredStoreLocked(ISessionStore? store) => _store = store;
}
