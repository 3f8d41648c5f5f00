using System.Threading.Tasks.Sources;

namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// The writer loop's coalescing wake-up: any number of producers <see cref="Set"/>, one consumer awaits
/// <see cref="WaitAsync"/>. Replaces a bounded <c>Channel&lt;bool&gt;</c> (about 0.7 KiB per connection with its
/// queue, reader, writer and waiter objects) with one small object; waiting allocates nothing.
/// </summary>
internal sealed class WriterSignal : IValueTaskSource
{
    private const int Idle = 0;
    private const int Signaled = 1;
    private const int Waiting = 2;

    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private CancellationTokenRegistration _registration;
    private CancellationToken _token;
    private int _state;

    /// <summary>Wakes the consumer, or makes its next wait return at once.</summary>
    public void Set()
    {
        while (true)
        {
            var state = Volatile.Read(ref _state);
            if (state == Signaled)
            {
                return;
            }
            if (state == Idle)
            {
                if (Interlocked.CompareExchange(ref _state, Signaled, Idle) == Idle)
                {
                    return;
                }
                continue;
            }
            if (Interlocked.CompareExchange(ref _state, Idle, Waiting) == Waiting)
            {
                _core.SetResult(true);
                return;
            }
        }
    }

    /// <summary>Forgets a pending signal (the consumer is about to look at all queued work anyway).</summary>
    public void Reset() => Interlocked.CompareExchange(ref _state, Idle, Signaled);

    /// <summary>Completes when <see cref="Set"/> is called (at once if it was since the last wait or reset); throws
    /// <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/> fires first. One waiter at a time.</summary>
    public ValueTask WaitAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.CompareExchange(ref _state, Idle, Signaled) == Signaled)
        {
            return default;
        }
        cancellationToken.ThrowIfCancellationRequested();
        _core.Reset();
        _token = cancellationToken;
        if (Interlocked.CompareExchange(ref _state, Waiting, Idle) != Idle)
        {
            // Set between the two exchanges: consume it.
            Volatile.Write(ref _state, Idle);
            return default;
        }
        if (cancellationToken.CanBeCanceled)
        {
            _registration = cancellationToken.UnsafeRegister(static s =>
            {
                var signal = (WriterSignal)s!;
                if (Interlocked.CompareExchange(ref signal._state, Idle, Waiting) == Waiting)
                {
                    signal._core.SetException(new OperationCanceledException(signal._token));
                }
            }, this);
        }
        return new ValueTask(this, _core.Version);
    }

    void IValueTaskSource.GetResult(short token)
    {
        _registration.Dispose();
        _registration = default;
        _core.GetResult(token);
    }

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
