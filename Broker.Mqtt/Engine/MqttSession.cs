using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// Session state (MQTT 5.0 §4.1): subscriptions, outbound QoS 1/2 messages in flight, messages queued for the
/// client, inbound QoS 2 packet identifiers awaiting PUBREL, and a delayed will. Survives the connection when the
/// session is persistent. Every mutable field is guarded by <see cref="Sync"/>; lock order is broker sessions lock,
/// then a session's <see cref="Sync"/>, then the subscription index or retained store.
/// </summary>
internal sealed partial class MqttSession
{
    private static long s_nextId;

    // Queued messages not yet sent, in two FIFOs so the oldest QoS 0 message can be dropped in O(1) when the
    // queue is full; the original order is recovered from Sequence.
    private readonly Queue<QueuedMessage> _qos0 = new();
    private readonly Queue<QueuedMessage> _qos12 = new();
    private readonly Dictionary<ushort, InflightMessage> _inflight = new();
    private readonly Queue<InflightMessage> _resend = new();
    private readonly HashSet<ushort> _inboundQos2 = new();
    // Retained messages due after SUBSCRIBE [MQTT-3.3.1-6]: references into the retained store, streamed through the
    // inflight window ahead of the queue, so their number is not bounded by the queue.
    private readonly Queue<QueuedMessage> _retained = new();
    private readonly QueueBudget _budget;
    private long _sequence;
    private long _queuedBytes;
    private long _fullSince;
    private ushort _lastPacketId;
    private volatile IClientGrants? _grants;
    private ISessionStore? _store;
    private MqttConnection? _connection;
    private TaskCompletionSource? _roomWaiter;

    public MqttSession(string clientId, int maxQueuedMessages)
        : this(clientId, QueueBudget.WithMessageLimit(maxQueuedMessages))
    {
    }

    public MqttSession(string clientId, QueueBudget budget)
    {
        ClientId = clientId;
        _budget = budget;
        MaxQueuedMessages = budget.MaxMessages;
        Id = Interlocked.Increment(ref s_nextId);
    }

    public Lock Sync { get; } = new();

    /// <summary>Process-unique, for ordering matches of one publish by session.</summary>
    public long Id { get; }

    public string ClientId { get; }

    public int MaxQueuedMessages { get; }

    /// <summary>The connection currently bound to the session; null while offline. Guarded by <see cref="Sync"/>.
    /// A change ends the slow state and releases held publishers: offline queues never hold anyone back.</summary>
    public MqttConnection? Connection
    {
        get => _connection;
        set
        {
            _connection = value;
            Slow = false;
            _fullSince = 0;
            ReleaseWaitersLocked();
        }
    }

    /// <summary>Declared slow (<see cref="DeclareSlow"/>): publishers no longer wait for it. Guarded by <see cref="Sync"/>.</summary>
    public bool Slow { get; private set; }

    public long QueuedBytes
    {
        get
        {
            lock (Sync)
            {
                return _queuedBytes;
            }
        }
    }

    /// <summary>Session Expiry Interval in seconds after the connection closes (0 = ends with the connection).</summary>
    public uint ExpiryInterval { get; set; }

    /// <summary>When an offline session expires.</summary>
    public DateTimeOffset? ExpiresAt { get; set; }

    /// <summary>Set once the session has been removed; late operations on it are ignored.</summary>
    public bool Ended { get; private set; }

    /// <summary>Grants of the latest connection, used to check CanReceive when queueing while offline.</summary>
    public IClientGrants? Grants
    {
        get => _grants;
        set => _grants = value;
    }

    /// <summary>Where the session's changes are written while it is persistent (Session Expiry Interval &gt; 0 and a
    /// store configured); null otherwise. Guarded by <see cref="Sync"/>.</summary>
    public ISessionStore? Store => _store;

    /// <summary>Subscriptions by the filter the client sent. Guarded by <see cref="Sync"/>.</summary>
    public Dictionary<string, Subscription> Subscriptions { get; } = new(StringComparer.Ordinal);

    /// <summary>Will of a closed connection waiting for its Will Delay Interval. Guarded by <see cref="Sync"/>. In a
    /// cluster it is registered with the other nodes while it waits (published by one of them should this node die).</summary>
    public PendingWill? DelayedWill
    {
        get => _delayedWill;
        set
        {
            if (ReferenceEquals(value, _delayedWill))
            {
                return;
            }
            _delayedWillInCluster?.Dispose();
            _delayedWillInCluster = null;
            _delayedWill = value;
            if (value is { Will: var will } && Cluster is { } link && will.Grants.CanPublish(will.Topic, will.Qos, will.Retain))
            {
                _delayedWillInCluster = link.RegisterDelayedWill(ClientId, MqttApplicationMessage.Create(will.Topic, will.Payload, will.Qos,
                    will.Retain, will.Properties, ClientId, value.DueAt).ToStored(), value.DueAt);
            }
        }
    }

    private PendingWill? _delayedWill;
    private IDisposable? _delayedWillInCluster;

    /// <summary>The other nodes of a cluster (null on a single node); set when the session is created.</summary>
    public IClusterLink? Cluster { get; init; }

    public int QueuedCount
    {
        get
        {
            lock (Sync)
            {
                return _qos0.Count + _qos12.Count;
            }
        }
    }

    public int InflightCount
    {
        get
        {
            lock (Sync)
            {
                return _inflight.Count;
            }
        }
    }

    /// <summary>
    /// Moves sendable work into <paramref name="batch"/>: first the resends of a resumed session (PUBLISH with
    /// DUP=1, or PUBREL for messages already at PUBREC) in their original order [MQTT-4.4.0-1], [MQTT-4.6.0-1],
    /// then retained messages due after SUBSCRIBE, then queued messages while the inflight window allows. QoS 0
    /// messages may pass QoS 1/2 messages blocked by a full window (5.0 §4.9). QoS 1/2 messages get a packet
    /// identifier and enter the inflight table here. Publishers held back are released once the queue is half empty.
    /// </summary>
    public void TakeOutbound(List<OutboundItem> batch, int maxItems, int window, DateTimeOffset now, IClientGrants grants,
        ref DropCounts drops)
    {
        lock (Sync)
        {
            while (_resend.Count > 0 && batch.Count < maxItems)
            {
                var entry = _resend.Dequeue();
                if (!_inflight.TryGetValue(entry.PacketId, out var current) || !ReferenceEquals(current, entry))
                {
                    continue;
                }
                batch.Add(entry.State == InflightState.AwaitingPubComp
                    ? OutboundItem.PubRel(entry.PacketId)
                    : OutboundItem.Publish(entry.Message!, entry.Qos, entry.Retain, dup: true, entry.PacketId, entry.SubscriptionIds));
            }

            while (_retained.Count > 0 && batch.Count < maxItems)
            {
                var item = _retained.Peek();
                if (item.Qos != MqttQos.AtMostOnce && _inflight.Count >= window)
                {
                    break;
                }
                _retained.Dequeue();
                AddToBatchLocked(batch, item, now, grants, ref drops, persisted: false);
            }

            var taken = 0;
            long takenBytes = 0;
            while (batch.Count < maxItems)
            {
                var useQos0 = _qos0.Count > 0 && (_qos12.Count == 0 || _qos0.Peek().Sequence < _qos12.Peek().Sequence);
                if (!useQos0)
                {
                    if (_qos12.Count == 0)
                    {
                        break;
                    }
                    if (_inflight.Count >= window || _retained.Count > 0)
                    {
                        if (_qos0.Count == 0)
                        {
                            break;
                        }
                        useQos0 = true;
                    }
                }

                var item = (useQos0 ? _qos0 : _qos12).Dequeue();
                taken++;
                takenBytes += item.Message.QueuedSize;
                AddToBatchLocked(batch, item, now, grants, ref drops, persisted: true);
            }

            if (taken > 0)
            {
                _queuedBytes -= takenBytes;
                _budget.Add(-taken, -takenBytes);
                if (CanResumeLocked())
                {
                    // Congested from full until drained to half: the slow-subscriber clock runs for that whole time.
                    _fullSince = 0;
                    // A slow subscriber (DropQos0) that caught up is treated like any other again.
                    Slow = false;
                    ReleaseWaitersLocked();
                }
            }
        }
    }

    /// <summary><paramref name="persisted"/>: the item has a MessageQueued row in the store (a queued QoS 1/2 message);
    /// a retained message streamed after SUBSCRIBE gets its row only when it enters the inflight window.</summary>
    private void AddToBatchLocked(List<OutboundItem> batch, in QueuedMessage item, DateTimeOffset now, IClientGrants grants, ref DropCounts drops,
        bool persisted)
    {
        if (item.Message.IsExpired(now))
        {
            drops.Expired++;
            if (persisted)
            {
                Forget(item.Qos, item.Sequence);
            }
            return;
        }
        if (!item.Message.IsDirectReply && !grants.CanReceive(item.Message.Topic))
        {
            drops.Denied++;
            if (persisted)
            {
                Forget(item.Qos, item.Sequence);
            }
            return;
        }

        if (item.Qos == MqttQos.AtMostOnce)
        {
            batch.Add(OutboundItem.Publish(item.Message, item.Qos, item.Retain, dup: false, 0, item.SubscriptionIds));
            return;
        }

        var packetId = AllocatePacketId();
        _inflight.Add(packetId, new InflightMessage(packetId, item.Message, item.Qos, item.Retain, item.SubscriptionIds, item.Sequence));
        if (_store is { } store)
        {
            if (!persisted)
            {
                store.Append(new MessageQueued(ClientId, item.Sequence, item.Message.ToStored(), (byte)item.Qos, item.Retain, item.SubscriptionIds));
            }
            var position = store.Append(new MessageStateChanged(ClientId, item.Sequence,
                item.Qos == MqttQos.AtLeastOnce ? StoredMessageState.AwaitingPubAck : StoredMessageState.AwaitingPubRec, packetId));
            if (!persisted)
            {
                // No publisher is waiting to publish it again: the row must be committed before this PUBLISH leaves.
                _unsentRowsPosition = position;
            }
        }
        batch.Add(OutboundItem.Publish(item.Message, item.Qos, item.Retain, dup: false, packetId, item.SubscriptionIds));
    }

    /// <summary>Forgets an outbound message that could not be sent at all (larger than the client's Maximum Packet
    /// Size): the packet identifier is released and the message is not retried.</summary>
    public void Abandon(ushort packetId)
    {
        lock (Sync)
        {
            if (_inflight.Remove(packetId, out var entry))
            {
                Forget(entry.Qos, entry.Sequence);
            }
        }
    }

    /// <summary>PUBACK for an outbound QoS 1 message. False when no such message is in flight.</summary>
    public bool OnPubAck(ushort packetId)
    {
        lock (Sync)
        {
            if (_inflight.TryGetValue(packetId, out var entry) && entry.Qos == MqttQos.AtLeastOnce)
            {
                _inflight.Remove(packetId);
                Forget(entry.Qos, entry.Sequence);
                return true;
            }
            return false;
        }
    }

    /// <summary>PUBREC for an outbound QoS 2 message: the payload is released and PUBREL is due, unless the
    /// client refused the message (reason code 0x80 or greater ends the flow, 5.0 §4.3.3).</summary>
    public PubRecOutcome OnPubRec(ushort packetId, MqttReasonCode reasonCode)
    {
        lock (Sync)
        {
            if (!_inflight.TryGetValue(packetId, out var entry) || entry.Qos != MqttQos.ExactlyOnce)
            {
                return PubRecOutcome.NotFound;
            }
            if ((byte)reasonCode >= 0x80)
            {
                _inflight.Remove(packetId);
                Forget(entry.Qos, entry.Sequence);
                return PubRecOutcome.Refused;
            }
            if (entry.State != InflightState.AwaitingPubComp)
            {
                _store?.Append(new MessageStateChanged(ClientId, entry.Sequence, StoredMessageState.AwaitingPubComp, packetId));
            }
            entry.State = InflightState.AwaitingPubComp;
            entry.Message = null;
            return PubRecOutcome.SendPubRel;
        }
    }

    /// <summary>PUBCOMP for an outbound QoS 2 message. False when no such message awaits PUBCOMP.</summary>
    public bool OnPubComp(ushort packetId)
    {
        lock (Sync)
        {
            if (_inflight.TryGetValue(packetId, out var entry) && entry.State == InflightState.AwaitingPubComp)
            {
                _inflight.Remove(packetId);
                Forget(entry.Qos, entry.Sequence);
                return true;
            }
            return false;
        }
    }

    /// <summary>On resuming a session: every unacknowledged PUBLISH and PUBREL is sent again, in order. Caller holds
    /// <see cref="Sync"/>.</summary>
    public void PrepareResendLocked()
    {
        _resend.Clear();
        if (_inflight.Count == 0)
        {
            return;
        }
        var entries = _inflight.Values.ToArray();
        Array.Sort(entries, static (a, b) => a.Sequence.CompareTo(b.Sequence));
        foreach (var entry in entries)
        {
            _resend.Enqueue(entry);
        }
    }

    /// <summary>Marks the session ended and clears its messages. Returns how many undelivered messages were lost
    /// (QoS 1/2 and QoS 0 separately). Caller holds <see cref="Sync"/>.</summary>
    public (int Qos12, int Qos0) EndLocked()
    {
        Ended = true;
        var qos12 = _qos12.Count;
        foreach (var entry in _inflight.Values)
        {
            if (entry.Message is not null)
            {
                qos12++;
            }
        }
        var qos0 = _qos0.Count;
        _budget.Add(-(_qos0.Count + _qos12.Count), -_queuedBytes);
        _queuedBytes = 0;
        _qos0.Clear();
        _qos12.Clear();
        _retained.Clear();
        _inflight.Clear();
        _resend.Clear();
        _inboundQos2.Clear();
        DelayedWill = null;
        Connection = null;
        return (qos12, qos0);
    }

    public ushort LastPacketId => _lastPacketId;

    private ushort AllocatePacketId()
    {
        // The window is at most 65535 entries, so a free identifier exists.
        for (var i = 0; i < ushort.MaxValue; i++)
        {
            _lastPacketId = _lastPacketId == ushort.MaxValue ? (ushort)1 : (ushort)(_lastPacketId + 1);
            if (!_inflight.ContainsKey(_lastPacketId))
            {
                return _lastPacketId;
            }
        }
        throw new InvalidOperationException("no free packet identifier");
    }

    private readonly record struct QueuedMessage(MqttApplicationMessage Message, MqttQos Qos, bool Retain, uint[]? SubscriptionIds, long Sequence);

    private sealed class InflightMessage(ushort packetId, MqttApplicationMessage message, MqttQos qos, bool retain, uint[]? subscriptionIds, long sequence)
    {
        public ushort PacketId { get; } = packetId;
        public MqttApplicationMessage? Message { get; set; } = message;
        public MqttQos Qos { get; } = qos;
        public bool Retain { get; } = retain;
        public uint[]? SubscriptionIds { get; } = subscriptionIds;
        public long Sequence { get; } = sequence;
        public InflightState State { get; set; } = qos == MqttQos.AtLeastOnce ? InflightState.AwaitingPubAck : InflightState.AwaitingPubRec;
    }

    private enum InflightState
    {
        AwaitingPubAck,
        AwaitingPubRec,
        AwaitingPubComp,
    }
}

