using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace OmniBroker.Mqtt.Diagnostics;

/// <summary>
/// Logging that cannot flood, for every per-message or per-connection event that repeats (drops, denials, operator
/// limits): at most one line per client and reason per interval, carrying the count since the previous line and the
/// last detail (a topic, truncated). The first event of a quiet pair is written at once; later events of the interval
/// go with the next line, or with <see cref="Flush"/> (the broker's maintenance timer). Counters in metrics keep the
/// exact numbers; this only bounds the log. Thread-safe, lock-free.
/// </summary>
public sealed partial class AggregatedLog
{
    /// <summary>Longest topic written to a log line, in characters.</summary>
    internal const int MaxTopicLength = 96;

    // Past this many pairs, quiet ones are forgotten at once rather than at the next Flush.
    private const int MaxTrackedKeys = 10_000;

    private readonly ConcurrentDictionary<(Kind Kind, string ClientId, string Reason), Bucket> _buckets = new();
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly TimeSpan _interval;

    public AggregatedLog(ILogger logger, TimeProvider? time = null, TimeSpan? interval = null)
    {
        _logger = logger;
        _time = time ?? TimeProvider.System;
        _interval = interval ?? TimeSpan.FromMinutes(1);
    }

    private enum Kind
    {
        Dropped,
        Denied,
        LimitHit,
    }

    /// <summary>Counts a hit of the operator limit <paramref name="limit"/> (a <see cref="LimitMetrics.Limits"/> value,
    /// counted there too) and logs it (event 1400) unless this client already had a line for it within the interval.</summary>
    public void LimitHit(string limit, string? clientId, long limitValue, string detail)
    {
        LimitMetrics.Hit(limit);
        Record(Kind.LimitHit, clientId ?? "-", limit, detail, 1, limitValue);
    }

    /// <summary>Counts <paramref name="count"/> dropped messages (event 1207) or denied requests (1106) of a client.</summary>
    internal void Record(string clientId, string reason, bool denial, string? topic, int count = 1) =>
        Record(denial ? Kind.Denied : Kind.Dropped, clientId, reason, topic, count, 0);

    /// <summary>Writes the pending counts whose interval has passed and forgets pairs quiet for a long time.</summary>
    internal void Flush()
    {
        foreach (var (key, bucket) in _buckets)
        {
            if (Volatile.Read(ref bucket.Pending) > 0)
            {
                TryEmit(key, bucket);
            }
            else if (_time.GetElapsedTime(Volatile.Read(ref bucket.LastWritten)) > _interval * 10)
            {
                _buckets.TryRemove(new KeyValuePair<(Kind, string, string), Bucket>(key, bucket));
            }
        }
    }

    internal static string Truncate(string? topic) =>
        topic is null ? "" : topic.Length <= MaxTopicLength ? topic : string.Concat(topic.AsSpan(0, MaxTopicLength), "…");

    private void Record(Kind kind, string clientId, string reason, string? detail, int count, long limitValue)
    {
        if (count <= 0)
        {
            return;
        }
        var key = (kind, clientId, reason);
        var bucket = _buckets.GetOrAdd(key, static _ => new Bucket());
        if (detail is not null)
        {
            bucket.LastDetail = detail;
        }
        Volatile.Write(ref bucket.LimitValue, limitValue);
        Interlocked.Add(ref bucket.Pending, count);
        TryEmit(key, bucket);
        if (_buckets.Count > MaxTrackedKeys)
        {
            Prune();
        }
    }

    private void TryEmit((Kind Kind, string ClientId, string Reason) key, Bucket bucket)
    {
        var last = Volatile.Read(ref bucket.LastWritten);
        var now = _time.GetTimestamp();
        if (last != 0 && _time.GetElapsedTime(last, now) < _interval)
        {
            return;
        }
        if (Interlocked.CompareExchange(ref bucket.LastWritten, now, last) != last)
        {
            return;
        }
        var count = Interlocked.Exchange(ref bucket.Pending, 0);
        if (count == 0)
        {
            return;
        }
        var seconds = last == 0 ? 0 : Math.Round(_time.GetElapsedTime(last, now).TotalSeconds, 1);
        switch (key.Kind)
        {
            case Kind.Denied:
                DeniedLine(_logger, key.ClientId, key.Reason, count, seconds, Truncate(bucket.LastDetail));
                break;
            case Kind.Dropped:
                DroppedLine(_logger, key.ClientId, key.Reason, count, seconds, Truncate(bucket.LastDetail));
                break;
            default:
                LimitHitLine(_logger, key.Reason, Volatile.Read(ref bucket.LimitValue), key.ClientId, bucket.LastDetail ?? "", count - 1, _interval);
                break;
        }
    }

    private void Prune()
    {
        var now = _time.GetTimestamp();
        foreach (var (key, bucket) in _buckets)
        {
            if (Volatile.Read(ref bucket.Pending) == 0 && _time.GetElapsedTime(Volatile.Read(ref bucket.LastWritten), now) >= _interval)
            {
                _buckets.TryRemove(new KeyValuePair<(Kind, string, string), Bucket>(key, bucket));
            }
        }
    }

    [LoggerMessage(EventId = 1106, EventName = "DeniedAggregated", Level = LogLevel.Information, Message = "MQTT client {ClientId}: {Count} requests denied ({Reason}) in the last {Seconds}s; last topic {Topic}")]
    private static partial void DeniedLine(ILogger logger, string clientId, string reason, long count, double seconds, string topic);

    [LoggerMessage(EventId = 1207, EventName = "DroppedAggregated", Level = LogLevel.Warning, Message = "MQTT client {ClientId}: {Count} messages dropped ({Reason}) in the last {Seconds}s; last topic {Topic}")]
    private static partial void DroppedLine(ILogger logger, string clientId, string reason, long count, double seconds, string topic);

    [LoggerMessage(EventId = 1400, EventName = "LimitHit", Level = LogLevel.Warning, Message = "Limit {Limit} ({LimitValue}) hit by {ClientId}: {Detail} (+{Suppressed} more hits in the previous {Interval})")]
    private static partial void LimitHitLine(ILogger logger, string limit, long limitValue, string clientId, string detail, long suppressed, TimeSpan interval);

    private sealed class Bucket
    {
        public long Pending;
        public long LastWritten;
        public long LimitValue;
        public string? LastDetail;
    }
}
