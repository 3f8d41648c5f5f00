using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace OmniBroker.Auth;

/// <summary>
/// The identities of connected clients. Also ends identities whose leaf or any chain certificate expires while
/// connected: one timer armed for the earliest expiry of all registered identities (no per-connection polling),
/// revoking them with reason "expired".
/// </summary>
internal sealed class ConnectedIdentityRegistry : IConnectedIdentityRegistry, IDisposable
{
    public const string ExpiredReason = "expired";

    // Timers cannot be armed for arbitrary spans; re-check at least this often.
    private static readonly TimeSpan MaxTimerDue = TimeSpan.FromHours(12);

    private readonly object _lock = new();
    private readonly SortedSet<ClientIdentity> _byExpiry = new(ExpiryComparer.Instance);
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ITimer _timer;
    private DateTimeOffset _armedFor = DateTimeOffset.MaxValue;
    private long _sequence;
    private bool _disposed;

    public ConnectedIdentityRegistry(TimeProvider? timeProvider = null, ILogger<ConnectedIdentityRegistry>? logger = null)
    {
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _timer = _time.CreateTimer(static state => ((ConnectedIdentityRegistry)state!).OnTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _byExpiry.Count;
            }
        }
    }

    public IReadOnlyCollection<ConnectedIdentity> Snapshot()
    {
        lock (_lock)
        {
            return _byExpiry.ToArray();
        }
    }

    /// <summary>Adds a connection's identity; if it has already expired it is revoked at once.</summary>
    public void Register(ClientIdentity identity)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            identity.Sequence = ++_sequence;
            _byExpiry.Add(identity);
            if (identity.ValidUntil < _armedFor)
            {
                Arm(identity.ValidUntil);
            }
        }
    }

    public void Unregister(ClientIdentity identity)
    {
        lock (_lock)
        {
            // The timer stays armed for a possibly removed identity: it then fires once, finds nothing and re-arms.
            _byExpiry.Remove(identity);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _byExpiry.Clear();
        }
        _timer.Dispose();
    }

    private void OnTimer()
    {
        List<ClientIdentity>? expired = null;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            var now = _time.GetUtcNow();
            while (_byExpiry.Count > 0 && _byExpiry.Min!.ValidUntil <= now)
            {
                var identity = _byExpiry.Min;
                _byExpiry.Remove(identity);
                (expired ??= []).Add(identity);
            }
            _armedFor = DateTimeOffset.MaxValue;
            if (_byExpiry.Count > 0)
            {
                Arm(_byExpiry.Min!.ValidUntil);
            }
        }

        // Outside the lock: cancellation callbacks run synchronously and may unregister.
        foreach (var identity in expired ?? [])
        {
            AuthLog.IdentityExpired(_logger, identity.Certificate.SerialNumber, identity.Certificate.Subject, identity.ValidUntil);
            identity.Revoke(ExpiredReason);
        }
    }

    private void Arm(DateTimeOffset at)
    {
        _armedFor = at;
        var due = at - _time.GetUtcNow();
        if (due < TimeSpan.Zero)
        {
            due = TimeSpan.Zero;
        }
        else if (due > MaxTimerDue)
        {
            due = MaxTimerDue;
            _armedFor = _time.GetUtcNow() + due;
        }
        _timer.Change(due, Timeout.InfiniteTimeSpan);
    }

    private sealed class ExpiryComparer : IComparer<ClientIdentity>
    {
        public static readonly ExpiryComparer Instance = new();

        public int Compare(ClientIdentity? x, ClientIdentity? y)
        {
            if (ReferenceEquals(x, y))
            {
                return 0;
            }
            var byTime = x!.ValidUntil.CompareTo(y!.ValidUntil);
            return byTime != 0 ? byTime : x.Sequence.CompareTo(y.Sequence);
        }
    }
}
