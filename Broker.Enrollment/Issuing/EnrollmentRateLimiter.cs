namespace OmniBroker.Enrollment.Issuing;

/// <summary>
/// Enrollment rate limits: a token bucket for the whole broker (<c>Est:RateTotalPerSecond</c>, burst of one
/// second's worth) and a fixed one-minute window per identity (<c>Est:RatePerIdentityPerMinute</c>; the identity is
/// the subject CN asked for or renewed). Refusals say when to retry (429 + Retry-After).
/// </summary>
public sealed class EnrollmentRateLimiter(int perIdentityPerMinute, int totalPerSecond, TimeProvider time)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, (long WindowStart, int Count)> _identities = new(StringComparer.Ordinal);
    private double _bucket = totalPerSecond;
    private long _last = time.GetTimestamp();
    private long _lastSweep = time.GetTimestamp();

    /// <exception cref="EnrollmentException">429 with Retry-After.</exception>
    public void Acquire(string identity)
    {
        var now = time.GetTimestamp();
        lock (_lock)
        {
            _bucket = Math.Min(totalPerSecond, _bucket + time.GetElapsedTime(_last, now).TotalSeconds * totalPerSecond);
            _last = now;
            if (_bucket < 1)
            {
                throw new EnrollmentException(429, "rate-limited-total", $"more than {totalPerSecond} enrollments per second: retry shortly", TimeSpan.FromSeconds(1));
            }

            if (time.GetElapsedTime(_lastSweep, now) > TimeSpan.FromMinutes(1))
            {
                // Forget identities whose window has passed, so the table stays as large as one minute's traffic.
                foreach (var stale in _identities.Where(p => time.GetElapsedTime(p.Value.WindowStart, now) >= TimeSpan.FromMinutes(1)).Select(p => p.Key).ToList())
                {
                    _identities.Remove(stale);
                }
                _lastSweep = now;
            }

            if (_identities.TryGetValue(identity, out var window) && time.GetElapsedTime(window.WindowStart, now) < TimeSpan.FromMinutes(1))
            {
                if (window.Count >= perIdentityPerMinute)
                {
                    var retry = TimeSpan.FromMinutes(1) - time.GetElapsedTime(window.WindowStart, now);
                    throw new EnrollmentException(429, "rate-limited-identity", $"more than {perIdentityPerMinute} enrollments per minute for {identity}", retry);
                }
                _identities[identity] = (window.WindowStart, window.Count + 1);
            }
            else
            {
                _identities[identity] = (now, 1);
            }
            _bucket -= 1;
        }
    }
}
