using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

/// <summary>The session's queue and its flow control: what is taken, what holds publishers back, when a subscriber
/// is slow. Guarded by <see cref="Sync"/> like the rest of the session.</summary>
internal sealed partial class MqttSession
{
    /// <summary>
    /// Queues a message for the client. A connected subscriber that is not slow always takes it; when its queue is
    /// then full (messages, bytes, or the global budget) the outcome is <see cref="EnqueueOutcome.QueuedFull"/> and
    /// the caller holds its publisher back. An offline session makes room by dropping its oldest QoS 0 message; a
    /// slow one drops new QoS 0 messages. QoS 1/2 that does not fit is refused (an overflow the caller reports).
    /// </summary>
    public EnqueueResult Enqueue(MqttApplicationMessage message, MqttQos qos, bool retain, uint[]? subscriptionIds)
    {
        MqttConnection? connection;
        EnqueueResult result;
        lock (Sync)
        {
            if (Ended)
            {
                return new EnqueueResult(EnqueueOutcome.SessionEnded, null);
            }

            connection = _connection;
            var size = message.QueuedSize;
            if (connection is not null && !Slow)
            {
                var position = AddLocked(message, qos, retain, subscriptionIds, size);
                var full = IsFullLocked();
                if (full && _fullSince == 0)
                {
                    _fullSince = _budget.Time.GetTimestamp();
                }
                result = new EnqueueResult(full ? EnqueueOutcome.QueuedFull : EnqueueOutcome.Queued, null, Position: position);
            }
            else if (qos == MqttQos.AtMostOnce)
            {
                if (Slow)
                {
                    return new EnqueueResult(EnqueueOutcome.DroppedNew, message, Diagnostics.MqttMetrics.DropReasons.SlowSubscriber);
                }
                MqttApplicationMessage? dropped = null;
                if (IsFullLocked())
                {
                    if (_qos0.Count == 0)
                    {
                        return new EnqueueResult(EnqueueOutcome.DroppedNew, message, Diagnostics.MqttMetrics.DropReasons.QueueFull);
                    }
                    dropped = DropOldestQos0Locked();
                }
                var position = AddLocked(message, qos, retain, subscriptionIds, size);
                result = dropped is null
                    ? new EnqueueResult(EnqueueOutcome.Queued, null, Position: position)
                    : new EnqueueResult(EnqueueOutcome.DroppedOldest, dropped, Diagnostics.MqttMetrics.DropReasons.QueueFull, position);
            }
            else
            {
                MqttApplicationMessage? dropped = null;
                if (!Slow && IsFullLocked() && _qos0.Count > 0)
                {
                    dropped = DropOldestQos0Locked();
                }
                var fits = Slow
                    ? _queuedBytes + size <= _budget.SlowMaxBytes
                    : !IsFullLocked();
                if (!fits)
                {
                    return new EnqueueResult(EnqueueOutcome.DroppedNew, message, Diagnostics.MqttMetrics.DropReasons.Overflow);
                }
                var position = AddLocked(message, qos, retain, subscriptionIds, size);
                result = dropped is null
                    ? new EnqueueResult(EnqueueOutcome.Queued, null, Position: position)
                    : new EnqueueResult(EnqueueOutcome.DroppedOldest, dropped, Diagnostics.MqttMetrics.DropReasons.QueueFull, position);
            }
        }

        connection?.Signal();
        return result;
    }

    /// <summary>Queues the retained messages matching a new subscription. They are not counted against the queue:
    /// the retained store holds them anyway, and they leave through the inflight window as the client acknowledges.</summary>
    public void EnqueueRetained(List<(MqttApplicationMessage Message, MqttQos Qos, uint[]? SubscriptionIds)> messages)
    {
        MqttConnection? connection;
        lock (Sync)
        {
            if (Ended)
            {
                return;
            }
            foreach (var (message, qos, ids) in messages)
            {
                _retained.Enqueue(new QueuedMessage(message, qos, true, ids, ++_sequence));
            }
            connection = _connection;
        }
        connection?.Signal();
    }

    /// <summary>Completes when a publisher held back by this session may go on: the queue has drained to half, or the
    /// session went offline, slow or ended.</summary>
    public Task WaitForRoomAsync()
    {
        lock (Sync)
        {
            if (Ended || _connection is null || Slow || CanResumeLocked())
            {
                return Task.CompletedTask;
            }
            return (_roomWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
    }

    /// <summary>How long the queue has been congested: since it became full, until it drained to half (zero when not).</summary>
    public TimeSpan FullFor()
    {
        lock (Sync)
        {
            return _fullSince == 0 ? TimeSpan.Zero : _budget.Time.GetElapsedTime(_fullSince);
        }
    }

    /// <summary>Declares the session slow if its queue has been full for the slow-subscriber timeout: publishers stop
    /// waiting for it; with <see cref="SlowSubscriberPolicy.DropQos0"/> its queued QoS 0 messages are dropped.</summary>
    public SlowDeclaration DeclareSlow()
    {
        lock (Sync)
        {
            if (Ended || Slow || _connection is null || _fullSince == 0 || _budget.Time.GetElapsedTime(_fullSince) < _budget.SlowTimeout)
            {
                return default;
            }
            Slow = true;
            var dropped = 0;
            if (_budget.Policy == SlowSubscriberPolicy.DropQos0)
            {
                while (_qos0.Count > 0)
                {
                    DropOldestQos0Locked();
                    dropped++;
                }
            }
            ReleaseWaitersLocked();
            return new SlowDeclaration(true, dropped, _connection);
        }
    }

    /// <summary>Returns the store position of the MessageQueued row (QoS 1/2 of a persistent session), 0 otherwise.</summary>
    private long AddLocked(MqttApplicationMessage message, MqttQos qos, bool retain, uint[]? subscriptionIds, int size)
    {
        var item = new QueuedMessage(message, qos, retain, subscriptionIds, ++_sequence);
        (qos == MqttQos.AtMostOnce ? _qos0 : _qos12).Enqueue(item);
        _queuedBytes += size;
        _budget.Add(1, size);
        // Appended under Sync: the writer's later state change of this row cannot overtake it.
        return qos != MqttQos.AtMostOnce && _store is { } store
            ? store.Append(new MessageQueued(ClientId, item.Sequence, message.ToStored(), (byte)qos, retain, subscriptionIds))
            : 0;
    }

    private MqttApplicationMessage DropOldestQos0Locked()
    {
        var dropped = _qos0.Dequeue().Message;
        _queuedBytes -= dropped.QueuedSize;
        _budget.Add(-1, -dropped.QueuedSize);
        return dropped;
    }

    private bool IsFullLocked() =>
        _qos0.Count + _qos12.Count >= _budget.MaxMessages || _queuedBytes >= _budget.MaxBytes || (_queuedBytes > 0 && _budget.OverTotal);

    // Hysteresis: held publishers resume at half the limits, so a full queue costs one wake-up per half queue, not one
    // per message.
    private bool CanResumeLocked() =>
        _qos0.Count + _qos12.Count <= _budget.MaxMessages / 2 && _queuedBytes <= _budget.MaxBytes / 2
        && (_queuedBytes == 0 || !_budget.OverTotal);

    private void ReleaseWaitersLocked()
    {
        var waiter = _roomWaiter;
        _roomWaiter = null;
        waiter?.TrySetResult();
    }
}
