using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Mqtt.Engine;

/// <summary>A session moving here from another node of a cluster is created before its messages arrive.</summary>
internal sealed partial class MqttSession
{
    /// <summary>Messages queued here before the moved ones are restored number after them: the moved session's own
    /// sequences (far below 2^40) keep their order and rows. Caller holds <see cref="Sync"/>.</summary>
    public void NumberAfterMovedLocked() => _sequence = Math.Max(_sequence, 1L << 40);

    /// <summary>Restores the moved session's messages ahead of those queued here since the move began (older first, as
    /// the publishers sent them).</summary>
    public int RestoreMoved(StoredSessionState moved)
    {
        lock (Sync)
        {
            var arrivedHere = _qos12.ToArray();
            _qos12.Clear();
            var count = Restore(moved);
            foreach (var item in arrivedHere)
            {
                _qos12.Enqueue(item);
            }
            return count;
        }
    }
}
