using System.Diagnostics.Metrics;

namespace OmniBroker.Mqtt.Diagnostics;

/// <summary>
/// Operator limits that were hit: omnibroker_limit_hits_total{limit}. One series per limit (a fixed set), so the
/// cardinality stays bounded; per-client detail goes to the aggregated log lines, not to labels.
/// </summary>
public static class LimitMetrics
{
    /// <summary>Values of the <c>limit</c> label.</summary>
    public static class Limits
    {
        public const string SubscriptionsPerClient = "subscriptions_per_client";
        public const string RetainedMessages = "retained_messages";
        public const string RetainedBytes = "retained_bytes";
        public const string RetainedMessagesPerClient = "retained_messages_per_client";
        public const string RetainedBytesPerClient = "retained_bytes_per_client";
        public const string Connections = "connections";
        public const string HandshakesQueued = "tls_handshakes_queued";
        public const string HandshakeQueueTimeout = "tls_handshake_queue_timeout";

        /// <summary>A connection closed at accept by the device listeners' cap (Limits:MaxConnections).</summary>
        public const string ListenerConnections = "listener_connections";
    }

    /// <summary>Meter of the limits. Static because limits are hit from several components (engine, TLS
    /// listener); exported like every <c>OmniBroker.*</c> meter.</summary>
    public const string MeterName = "OmniBroker.Limits";

    private static readonly Meter s_meter = new(MeterName);

    private static readonly Counter<long> s_hits =
        s_meter.CreateCounter<long>("omnibroker.limit.hits", "{event}", "Operator limits hit (a refused subscription, retained message or connection; a queued TLS handshake), by limit.");

    private static readonly Dictionary<string, KeyValuePair<string, object?>> s_tags = new[]
    {
        Limits.SubscriptionsPerClient, Limits.RetainedMessages, Limits.RetainedBytes, Limits.RetainedMessagesPerClient,
        Limits.RetainedBytesPerClient, Limits.Connections, Limits.HandshakesQueued, Limits.HandshakeQueueTimeout,
        Limits.ListenerConnections,
    }.ToDictionary(static l => l, static l => new KeyValuePair<string, object?>("limit", l), StringComparer.Ordinal);

    /// <summary>Creates every series at 0 so that rate() and alerts see the first hit.</summary>
    public static void Prime()
    {
        foreach (var tag in s_tags.Values)
        {
            s_hits.Add(0, tag);
        }
    }

    /// <summary>Counts one hit of <paramref name="limit"/> (one of <see cref="Limits"/>; others are ignored).</summary>
    public static void Hit(string limit)
    {
        if (s_tags.TryGetValue(limit, out var tag))
        {
            s_hits.Add(1, tag);
        }
    }
}
