using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace OmniBroker.Mqtt.Diagnostics;

/// <summary>
/// Logs operator limits in aggregate: at most one line per client and limit per interval (event 1400); the hits in
/// between are counted and reported with the next line. Every hit is also counted in <see cref="LimitMetrics"/>.
/// Thread-safe.
/// </summary>
public sealed partial class LimitHitLog
{
    private const int MaxTrackedKeys = 10_000;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly TimeSpan _interval;
    private readonly ConcurrentDictionary<(string Limit, string Client), Window> _windows = new();

    public LimitHitLog(ILogger logger, TimeProvider? time = null, TimeSpan? interval = null)
    {
        _logger = logger;
        _time = time ?? TimeProvider.System;
        _interval = interval ?? TimeSpan.FromMinutes(1);
    }

    /// <summary>Counts a hit of <paramref name="limit"/> (a <see cref="LimitMetrics.Limits"/> value) and logs it unless
    /// this client already had a line for this limit within the interval.</summary>
    public void Hit(string limit, string? clientId, long limitValue, string detail)
    {
        LimitMetrics.Hit(limit);
        var now = _time.GetTimestamp();
        var window = _windows.GetOrAdd((limit, clientId ?? "-"), static _ => new Window());
        int suppressed;
        lock (window)
        {
            if (window.LastLogged != 0 && _time.GetElapsedTime(window.LastLogged, now) < _interval)
            {
                window.Suppressed++;
                return;
            }
            suppressed = window.Suppressed;
            window.Suppressed = 0;
            window.LastLogged = now;
        }
        LimitHit(_logger, limit, limitValue, clientId ?? "-", detail, suppressed, _interval);
        if (_windows.Count > MaxTrackedKeys)
        {
            Prune(now);
        }
    }

    private void Prune(long now)
    {
        foreach (var (key, window) in _windows)
        {
            lock (window)
            {
                if (window.Suppressed == 0 && _time.GetElapsedTime(window.LastLogged, now) >= _interval)
                {
                    _windows.TryRemove(key, out _);
                }
            }
        }
    }

    [LoggerMessage(1400, LogLevel.Warning, "Limit {Limit} ({LimitValue}) hit by {ClientId}: {Detail} (+{Suppressed} more hits in the previous {Interval})")]
    private static partial void LimitHit(ILogger logger, string limit, long limitValue, string clientId, string detail, int suppressed, TimeSpan interval);

    private sealed class Window
    {
        public long LastLogged;
        public int Suppressed;
    }
}
