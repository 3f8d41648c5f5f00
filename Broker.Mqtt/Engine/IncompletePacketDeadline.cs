namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// The read deadline of a packet in progress: a packet must be complete within a fixed time of its first byte.
/// Without it a peer with Keep Alive 0 (no keep-alive timer) could hold a nearly complete, up to Maximum Packet Size,
/// packet in the broker's buffer forever. One timer per connection, armed lazily and re-armed only when a packet
/// that started later is still incomplete, so a busy connection does not reschedule a timer per read.
/// </summary>
internal sealed class IncompletePacketDeadline : IDisposable
{
    private readonly TimeProvider _time;
    private readonly TimeSpan _timeout;
    private readonly Action _onTimeout;
    private readonly ITimer _timer;
    private long _since; // timestamp of the first byte of the incomplete packet; 0: none
    private int _armed;
    private int _fired;

    public IncompletePacketDeadline(TimeProvider time, TimeSpan timeout, Action onTimeout)
    {
        _time = time;
        _timeout = timeout;
        _onTimeout = onTimeout;
        _timer = time.CreateTimer(static state => ((IncompletePacketDeadline)state!).OnTick(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>After each read: whether bytes of an unfinished packet remain, and whether a packet completed in this
    /// read (then the remaining bytes belong to a new packet, whose clock starts now).</summary>
    public void Update(bool incomplete, bool completedAny)
    {
        if (!incomplete)
        {
            Volatile.Write(ref _since, 0);
            return;
        }
        if (Volatile.Read(ref _since) == 0 || completedAny)
        {
            Volatile.Write(ref _since, Math.Max(1, _time.GetTimestamp()));
        }
        if (Interlocked.Exchange(ref _armed, 1) == 0)
        {
            _timer.Change(_timeout, Timeout.InfiniteTimeSpan);
        }
    }

    private void OnTick()
    {
        var since = Volatile.Read(ref _since);
        if (since == 0)
        {
            Volatile.Write(ref _armed, 0);
            // A packet may have started between the read of _since and clearing _armed: arm for it.
            if (Volatile.Read(ref _since) != 0 && Interlocked.Exchange(ref _armed, 1) == 0)
            {
                _timer.Change(_timeout, Timeout.InfiniteTimeSpan);
            }
            return;
        }
        var elapsed = _time.GetElapsedTime(since);
        if (elapsed < _timeout)
        {
            _timer.Change(_timeout - elapsed, Timeout.InfiniteTimeSpan);
            return;
        }
        if (Interlocked.Exchange(ref _fired, 1) == 0)
        {
            _onTimeout();
        }
    }

    public void Dispose() => _timer.Dispose();
}
