using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// Drop and deny logging that cannot flood: at most one line per client and reason per interval, carrying the count
/// since the previous line and the last topic (truncated). The first event of a quiet pair is written at once; the
/// rest of the interval's events are written by <see cref="Flush"/> (the broker's maintenance timer). Counters in
/// metrics keep the exact numbers; this only bounds the log.
/// </summary>
internal sealed class AggregatedLog
{
    /// <summary>Longest topic written to a log line, in characters.</summary>
    public const int MaxTopicLength = 96;

    private readonly ConcurrentDictionary<(string ClientId, string Reason), Bucket> _buckets = new();
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly TimeSpan _interval;

    public AggregatedLog(ILogger logger, TimeProvider time, TimeSpan interval)
    {
        _logger = logger;
        _time = time;
        _interval = interval;
    }

    /// <summary>Counts <paramref name="count"/> events of <paramref name="reason"/> for a client; writes a line when the
    /// pair has not written one within the interval.</summary>
    public void Record(string clientId, string reason, bool denial, string? topic, int count = 1)
    {
        if (count <= 0)
        {
            return;
        }
        var bucket = _buckets.GetOrAdd((clientId, reason), static (_, denial) => new Bucket(denial), denial);
        Interlocked.Add(ref bucket.Pending, count);
        if (topic is not null)
        {
            bucket.LastTopic = topic;
        }
        TryEmit(clientId, reason, bucket, force: false);
    }

    /// <summary>Writes the pending counts whose interval has passed and forgets pairs quiet for a long time.</summary>
    public void Flush()
    {
        foreach (var (key, bucket) in _buckets)
        {
            if (Volatile.Read(ref bucket.Pending) > 0)
            {
                TryEmit(key.ClientId, key.Reason, bucket, force: false);
            }
            else if (_time.GetElapsedTime(Volatile.Read(ref bucket.LastWritten)) > _interval * 10)
            {
                _buckets.TryRemove(new KeyValuePair<(string, string), Bucket>(key, bucket));
            }
        }
    }

    public static string Truncate(string? topic) =>
        topic is null ? "" : topic.Length <= MaxTopicLength ? topic : string.Concat(topic.AsSpan(0, MaxTopicLength), "…");

    private void TryEmit(string clientId, string reason, Bucket bucket, bool force)
    {
        var last = Volatile.Read(ref bucket.LastWritten);
        var now = _time.GetTimestamp();
        if (!force && last != 0 && _time.GetElapsedTime(last, now) < _interval)
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
        var topic = Truncate(bucket.LastTopic);
        if (bucket.Denial)
        {
            _logger.DeniedAggregated(clientId, reason, count, seconds, topic);
        }
        else
        {
            _logger.DroppedAggregated(clientId, reason, count, seconds, topic);
        }
    }

    private sealed class Bucket(bool denial)
    {
        public readonly bool Denial = denial;
        public long Pending;
        public long LastWritten;
        public string? LastTopic;
    }
}
