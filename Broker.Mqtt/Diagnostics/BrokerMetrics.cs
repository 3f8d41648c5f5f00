using System.Diagnostics.Metrics;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Diagnostics;

/// <summary>
/// The broker's one <see cref="Meter"/> ("OmniBroker") and every instrument on it, with typed helpers so
/// callers in Mqtt, Auth, Policy and Host never build tags themselves. Label values are normalised to a
/// fixed set and cached as <see cref="KeyValuePair{TKey,TValue}"/> so hot-path calls allocate nothing and
/// the label cardinality stays bounded whatever a caller passes.
/// The Prometheus name each instrument gets from Broker.Host's exporter is given in its comment.
/// </summary>
public static class BrokerMetrics
{
    public const string MeterName = "OmniBroker";

    /// <summary>Histogram bounds in seconds for handshakes and OCSP round trips (1 ms .. 10 s).</summary>
    public static readonly IReadOnlyList<double> LatencyBucketsSeconds =
        [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    /// <summary>Cumulative days-to-expiry buckets of connected client certificates; "0" counts expired ones.</summary>
    public static readonly IReadOnlyList<int> ExpiryBucketsDays = [0, 1, 7, 14, 30, 90];

    public static readonly Meter Meter = new(MeterName, "1.0");

    // omnibroker_connections_active{protocol}
    private static readonly UpDownCounter<long> s_connectionsActive =
        Meter.CreateUpDownCounter<long>("omnibroker.connections.active", "{connection}", "MQTT connections currently open, by protocol version.");

    // omnibroker_connections_total{protocol}
    private static readonly Counter<long> s_connections =
        Meter.CreateCounter<long>("omnibroker.connections", "{connection}", "MQTT connections accepted (CONNACK success), by protocol version.");

    // omnibroker_tls_handshakes_total{outcome,reason}
    private static readonly Counter<long> s_handshakes =
        Meter.CreateCounter<long>("omnibroker.tls.handshakes", "{handshake}", "TLS handshakes with client-certificate authentication, by outcome and failure reason.");

    // omnibroker_tls_handshake_duration_seconds{outcome}
    private static readonly Histogram<double> s_handshakeDuration =
        Meter.CreateHistogram("omnibroker.tls.handshake.duration", "s", "Duration of the TLS handshake including certificate and revocation checks.",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBucketsSeconds });

    // omnibroker_authorization_decisions_total{action,result}
    private static readonly Counter<long> s_authorizationDecisions =
        Meter.CreateCounter<long>("omnibroker.authorization.decisions", "{decision}", "Policy decisions, by action and result.");

    // omnibroker_messages_received_total{qos}, omnibroker_messages_received_bytes_total{qos}
    private static readonly Counter<long> s_messagesReceived =
        Meter.CreateCounter<long>("omnibroker.messages.received", "{message}", "PUBLISH packets received from clients, by QoS.");

    private static readonly Counter<long> s_bytesReceived =
        Meter.CreateCounter<long>("omnibroker.messages.received.bytes", "By", "Payload bytes of PUBLISH packets received from clients, by QoS.");

    // omnibroker_messages_sent_total{qos}, omnibroker_messages_sent_bytes_total{qos}
    private static readonly Counter<long> s_messagesSent =
        Meter.CreateCounter<long>("omnibroker.messages.sent", "{message}", "PUBLISH packets sent to subscribers, by QoS.");

    private static readonly Counter<long> s_bytesSent =
        Meter.CreateCounter<long>("omnibroker.messages.sent.bytes", "By", "Payload bytes of PUBLISH packets sent to subscribers, by QoS.");

    // omnibroker_messages_dropped_total{reason}
    private static readonly Counter<long> s_messagesDropped =
        Meter.CreateCounter<long>("omnibroker.messages.dropped", "{message}", "Messages dropped by the broker, by reason.");

    // omnibroker_publishers_held_back_seconds_total
    private static readonly Counter<double> s_publishersHeldBack =
        Meter.CreateCounter<double>("omnibroker.publishers.held_back", "s",
            "Time publishers spent held back (not read, acknowledgement withheld) waiting for room in a subscriber's queue.");

    // omnibroker_slow_subscribers_total{policy}
    private static readonly Counter<long> s_slowSubscribers =
        Meter.CreateCounter<long>("omnibroker.slow_subscribers", "{event}", "Subscribers declared slow after their queue stayed full, by policy applied.");

    // omnibroker_ocsp_requests_total{result}
    private static readonly Counter<long> s_ocspRequests =
        Meter.CreateCounter<long>("omnibroker.ocsp.requests", "{request}", "OCSP requests sent to responders, by result.");

    // omnibroker_ocsp_request_duration_seconds
    private static readonly Histogram<double> s_ocspDuration =
        Meter.CreateHistogram("omnibroker.ocsp.request.duration", "s", "Round-trip time of OCSP requests.",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBucketsSeconds });

    // omnibroker_revocation_cache_hits_total{cache}, omnibroker_revocation_cache_misses_total{cache}
    private static readonly Counter<long> s_revocationCacheHits =
        Meter.CreateCounter<long>("omnibroker.revocation.cache.hits", "{lookup}", "Revocation lookups answered from cache, by cache (crl, ocsp).");

    private static readonly Counter<long> s_revocationCacheMisses =
        Meter.CreateCounter<long>("omnibroker.revocation.cache.misses", "{lookup}", "Revocation lookups the cache could not answer, by cache (crl, ocsp).");

    // omnibroker_crl_refreshes_total{result}
    private static readonly Counter<long> s_crlRefreshes =
        Meter.CreateCounter<long>("omnibroker.crl.refreshes", "{refresh}", "CRL loads and downloads, by result.");

    // omnibroker_policy_reloads_total{result}
    private static readonly Counter<long> s_policyReloads =
        Meter.CreateCounter<long>("omnibroker.policy.reloads", "{reload}", "Policy reloads, by result.");

    private static int s_lastPolicyReloadFailed;

    static BrokerMetrics()
    {
        // omnibroker_sessions, omnibroker_subscriptions, omnibroker_retained_messages
        Meter.CreateObservableGauge("omnibroker.sessions", static () => SumState(static s => s.SessionCount), "{session}", "Sessions held by the broker (connected and persistent).");
        Meter.CreateObservableGauge("omnibroker.subscriptions", static () => SumState(static s => s.SubscriptionCount), "{subscription}", "Subscriptions held by the broker.");
        // omnibroker_queue_messages, omnibroker_queue_bytes
        Meter.CreateObservableGauge("omnibroker.queue.messages", static () => SumState(static s => s.QueuedMessageCount), "{message}",
            "Messages queued for subscribers (beyond the inflight windows), all sessions together.");
        Meter.CreateObservableGauge("omnibroker.queue.bytes", static () => SumState(static s => s.QueuedBytes), "By",
            "Bytes queued for subscribers, all sessions together (bounded by MaxQueuedBytesTotal).");
        Meter.CreateObservableGauge("omnibroker.retained.messages", static () => SumState(static s => s.RetainedMessageCount), "{message}", "Retained messages stored.");

        // omnibroker_policy_version, omnibroker_policy_last_reload_success
        Meter.CreateObservableGauge("omnibroker.policy.version", ObservePolicyVersion, "", "Version of the active (last good) policy.");
        Meter.CreateObservableGauge("omnibroker.policy.last_reload.success", static () => Volatile.Read(ref s_lastPolicyReloadFailed) == 0 ? 1 : 0, "",
            "1 when the last policy reload succeeded (or none failed yet), 0 when it failed and the last good policy is still in force.");

        // omnibroker_crl_age_seconds{issuer}, omnibroker_crl_next_update_timestamp_seconds{issuer}
        Meter.CreateObservableGauge("omnibroker.crl.age", ObserveCrlAge, "s", "Seconds since thisUpdate of the CRL in use, per issuer.");
        Meter.CreateObservableGauge("omnibroker.crl.next_update.timestamp", ObserveCrlNextUpdate, "s", "nextUpdate of the CRL in use as a Unix timestamp, per issuer.");

        // omnibroker_client_certificates, omnibroker_client_certificates_expiring{within_days},
        // omnibroker_client_certificate_soonest_expiry_timestamp_seconds
        Meter.CreateObservableGauge("omnibroker.client.certificates", static () => ObserveCertificateCount(), "{certificate}", "Client certificates of connected clients.");
        Meter.CreateObservableGauge("omnibroker.client.certificates.expiring", ObserveExpiringCertificates, "{certificate}",
            "Connected client certificates whose notAfter is within the given number of days (cumulative; 0 = already expired).");
        Meter.CreateObservableGauge("omnibroker.client.certificate.soonest_expiry.timestamp", ObserveSoonestExpiry, "s",
            "Soonest notAfter among connected client certificates, as a Unix timestamp.");
    }

    // ------------------------------------------------------------------ label values

    /// <summary>Values of the <c>reason</c> label of dropped messages.</summary>
    public static class DropReasons
    {
        public const string QueueFull = "queue_full";
        public const string Expired = "expired";
        public const string Denied = "denied";
        public const string TooLarge = "too_large";
        /// <summary>Queued messages lost because their session ended (expired, taken over with clean start, revoked).</summary>
        public const string SessionEnded = "session_ended";
        /// <summary>QoS 0 messages of a subscriber declared slow under the DropQos0 policy.</summary>
        public const string SlowSubscriber = "slow_subscriber";
        /// <summary>QoS 1/2 messages an offline or slow session could not absorb (5.0 publishers got PUBACK 0x97).</summary>
        public const string Overflow = "overflow";
    }

    /// <summary>Values of the <c>action</c> label of authorization decisions.</summary>
    public static class Actions
    {
        public const string Connect = "connect";
        public const string Publish = "publish";
        public const string Subscribe = "subscribe";
        public const string Receive = "receive";
        public const string Admin = "admin";
    }

    /// <summary>Values of the <c>result</c> label of OCSP requests.</summary>
    public static class OcspResults
    {
        public const string Good = "good";
        public const string Revoked = "revoked";
        public const string Unknown = "unknown";
        public const string Timeout = "timeout";
        /// <summary>Responder unreachable (connection refused, DNS, reset).</summary>
        public const string NetworkError = "network_error";
        /// <summary>Responder answered with a non-success HTTP status.</summary>
        public const string HttpError = "http_error";
        /// <summary>Malformed, unsigned, mis-signed or stale OCSP response.</summary>
        public const string InvalidResponse = "invalid_response";
        /// <summary>Any other failure.</summary>
        public const string Error = "error";
    }

    /// <summary>Values of the <c>cache</c> label of revocation cache lookups.</summary>
    public static class RevocationCaches
    {
        public const string Crl = "crl";
        public const string Ocsp = "ocsp";
    }

    /// <summary>The handshake failure reasons (same labels as Broker.Auth's CertificateFailureReason.Label()).</summary>
    public static readonly IReadOnlyList<string> HandshakeFailureReasons =
        ["no_cert", "untrusted", "expired", "not_yet_valid", "revoked", "revocation_unknown", "bad_key_usage", "connect_denied", "tls_error"];

    private static readonly KeyValuePair<string, object?>[] s_qosTags =
        [Tag("qos", "0"), Tag("qos", "1"), Tag("qos", "2")];

    private static readonly KeyValuePair<string, object?> s_protocol311 = Tag("protocol", "3.1.1");
    private static readonly KeyValuePair<string, object?> s_protocol500 = Tag("protocol", "5.0");
    private static readonly KeyValuePair<string, object?> s_protocolOther = Tag("protocol", "other");

    private static readonly KeyValuePair<string, object?> s_outcomeSuccess = Tag("outcome", "success");
    private static readonly KeyValuePair<string, object?> s_outcomeFailure = Tag("outcome", "failure");
    private static readonly KeyValuePair<string, object?> s_reasonNone = Tag("reason", "none");
    private static readonly Dictionary<string, KeyValuePair<string, object?>> s_handshakeReasonTags =
        HandshakeFailureReasons.ToDictionary(static r => r, static r => Tag("reason", r), StringComparer.Ordinal);

    private static readonly Dictionary<string, KeyValuePair<string, object?>> s_actionTags =
        new[] { Actions.Connect, Actions.Publish, Actions.Subscribe, Actions.Receive, Actions.Admin, "other" }
            .ToDictionary(static a => a, static a => Tag("action", a), StringComparer.Ordinal);

    private static readonly KeyValuePair<string, object?> s_resultAllow = Tag("result", "allow");
    private static readonly KeyValuePair<string, object?> s_resultDeny = Tag("result", "deny");

    private static readonly Dictionary<string, KeyValuePair<string, object?>> s_dropTags =
        new[] { DropReasons.QueueFull, DropReasons.Expired, DropReasons.Denied, DropReasons.TooLarge, DropReasons.SessionEnded,
            DropReasons.SlowSubscriber, DropReasons.Overflow, "other" }
            .ToDictionary(static r => r, static r => Tag("reason", r), StringComparer.Ordinal);

    private static readonly Dictionary<string, KeyValuePair<string, object?>> s_ocspTags =
        new[]
        {
            OcspResults.Good, OcspResults.Revoked, OcspResults.Unknown, OcspResults.Timeout, OcspResults.NetworkError,
            OcspResults.HttpError, OcspResults.InvalidResponse, OcspResults.Error,
        }
            .ToDictionary(static r => r, static r => Tag("result", r), StringComparer.Ordinal);

    private static readonly KeyValuePair<string, object?> s_policyDisconnect = Tag("policy", "disconnect");
    private static readonly KeyValuePair<string, object?> s_policyDropQos0 = Tag("policy", "drop_qos0");

    private static readonly KeyValuePair<string, object?> s_cacheCrl = Tag("cache", RevocationCaches.Crl);
    private static readonly KeyValuePair<string, object?> s_cacheOcsp = Tag("cache", RevocationCaches.Ocsp);

    private static readonly KeyValuePair<string, object?> s_reloadSuccess = Tag("result", "success");
    private static readonly KeyValuePair<string, object?> s_reloadFailure = Tag("result", "failure");

    private static readonly KeyValuePair<string, object?>[] s_expiryTags =
        ExpiryBucketsDays.Select(static d => Tag("within_days", d.ToString(System.Globalization.CultureInfo.InvariantCulture))).ToArray();

    private static KeyValuePair<string, object?> Tag(string key, string value) => new(key, value);

    private static KeyValuePair<string, object?> ProtocolTag(MqttProtocolVersion version) => version switch
    {
        MqttProtocolVersion.V311 => s_protocol311,
        MqttProtocolVersion.V500 => s_protocol500,
        _ => s_protocolOther,
    };

    private static KeyValuePair<string, object?> QosTag(MqttQos qos) => s_qosTags[(int)qos <= 2 ? (int)qos : 2];

    // ------------------------------------------------------------------ connections (engine)

    /// <summary>Call once per accepted CONNECT (CONNACK success); pair with exactly one <see cref="ConnectionClosed"/>.</summary>
    public static void ConnectionOpened(MqttProtocolVersion version)
    {
        var tag = ProtocolTag(version);
        s_connections.Add(1, tag);
        s_connectionsActive.Add(1, tag);
    }

    public static void ConnectionClosed(MqttProtocolVersion version) => s_connectionsActive.Add(-1, ProtocolTag(version));

    // ------------------------------------------------------------------ handshakes (auth middleware)

    public static void HandshakeSucceeded(double seconds)
    {
        s_handshakes.Add(1, s_outcomeSuccess, s_reasonNone);
        if (seconds >= 0)
        {
            s_handshakeDuration.Record(seconds, s_outcomeSuccess);
        }
    }

    /// <summary>A refused handshake. <paramref name="reasonLabel"/> is CertificateFailureReason.Label()
    /// (no_cert, untrusted, ...); anything else counts as tls_error. Pass NaN when the duration is unknown.</summary>
    public static void HandshakeFailed(string reasonLabel, double seconds = double.NaN)
    {
        if (!s_handshakeReasonTags.TryGetValue(reasonLabel, out var reason))
        {
            reason = s_handshakeReasonTags["tls_error"];
        }

        s_handshakes.Add(1, s_outcomeFailure, reason);
        if (seconds >= 0)
        {
            s_handshakeDuration.Record(seconds, s_outcomeFailure);
        }
    }

    // ------------------------------------------------------------------ authorization (engine / policy / admin)

    /// <summary><paramref name="action"/> is one of <see cref="Actions"/>; others count as "other".</summary>
    public static void AuthorizationDecision(string action, bool allowed)
    {
        if (!s_actionTags.TryGetValue(action, out var actionTag))
        {
            actionTag = s_actionTags["other"];
        }

        s_authorizationDecisions.Add(1, actionTag, allowed ? s_resultAllow : s_resultDeny);
    }

    // ------------------------------------------------------------------ messages (engine)

    /// <summary>A PUBLISH received from a client; <paramref name="payloadBytes"/> is its payload length.</summary>
    public static void MessageIn(MqttQos qos, int payloadBytes)
    {
        var tag = QosTag(qos);
        s_messagesReceived.Add(1, tag);
        s_bytesReceived.Add(payloadBytes, tag);
    }

    /// <summary>A PUBLISH written to a subscriber; <paramref name="payloadBytes"/> is its payload length.</summary>
    public static void MessageOut(MqttQos qos, int payloadBytes)
    {
        var tag = QosTag(qos);
        s_messagesSent.Add(1, tag);
        s_bytesSent.Add(payloadBytes, tag);
    }

    /// <summary><paramref name="reason"/> is one of <see cref="DropReasons"/>; others count as "other".</summary>
    public static void MessageDropped(string reason, int count = 1)
    {
        if (!s_dropTags.TryGetValue(reason, out var tag))
        {
            tag = s_dropTags["other"];
        }

        s_messagesDropped.Add(count, tag);
    }

    /// <summary>A publisher was held back for <paramref name="seconds"/> waiting for room in subscribers' queues.</summary>
    public static void PublisherHeldBack(double seconds) => s_publishersHeldBack.Add(seconds);

    /// <summary>A subscriber was declared slow; <paramref name="policy"/> is "disconnect" or "drop_qos0".</summary>
    public static void SlowSubscriber(string policy) =>
        s_slowSubscribers.Add(1, policy == "disconnect" ? s_policyDisconnect : s_policyDropQos0);

    // ------------------------------------------------------------------ revocation (auth)

    /// <summary><paramref name="result"/> is one of <see cref="OcspResults"/>; others count as "error".
    /// Pass NaN when no round trip was timed.</summary>
    public static void OcspRequest(string result, double seconds = double.NaN)
    {
        if (!s_ocspTags.TryGetValue(result, out var tag))
        {
            tag = s_ocspTags[OcspResults.Error];
        }

        s_ocspRequests.Add(1, tag);
        if (seconds >= 0)
        {
            s_ocspDuration.Record(seconds);
        }
    }

    /// <summary><paramref name="cache"/> is one of <see cref="RevocationCaches"/>.</summary>
    public static void RevocationCacheHit(string cache = RevocationCaches.Ocsp) =>
        s_revocationCacheHits.Add(1, cache == RevocationCaches.Crl ? s_cacheCrl : s_cacheOcsp);

    public static void CrlRefresh(bool ok) => s_crlRefreshes.Add(1, ok ? s_reloadSuccess : s_reloadFailure);

    public static void RevocationCacheMiss(string cache = RevocationCaches.Ocsp) =>
        s_revocationCacheMisses.Add(1, cache == RevocationCaches.Crl ? s_cacheCrl : s_cacheOcsp);

    // ------------------------------------------------------------------ policy

    public static void PolicyReload(bool ok)
    {
        s_policyReloads.Add(1, ok ? s_reloadSuccess : s_reloadFailure);
        Volatile.Write(ref s_lastPolicyReloadFailed, ok ? 0 : 1);
    }

    /// <summary>
    /// Records 0 on every known label combination of the counters, so each series exists from the first scrape
    /// and rate()/increase() see the first event (a series born at 1 loses it). Call after the meter provider
    /// is built; calling it again is harmless.
    /// </summary>
    public static void PrimeSeries()
    {
        foreach (var tag in new[] { s_protocol311, s_protocol500 })
        {
            s_connections.Add(0, tag);
            s_connectionsActive.Add(0, tag);
        }

        s_handshakes.Add(0, s_outcomeSuccess, s_reasonNone);
        foreach (var reason in s_handshakeReasonTags.Values)
        {
            s_handshakes.Add(0, s_outcomeFailure, reason);
        }

        foreach (var action in s_actionTags)
        {
            if (action.Key != "other")
            {
                s_authorizationDecisions.Add(0, action.Value, s_resultAllow);
                s_authorizationDecisions.Add(0, action.Value, s_resultDeny);
            }
        }

        foreach (var qos in s_qosTags)
        {
            s_messagesReceived.Add(0, qos);
            s_bytesReceived.Add(0, qos);
            s_messagesSent.Add(0, qos);
            s_bytesSent.Add(0, qos);
        }

        foreach (var drop in s_dropTags)
        {
            if (drop.Key != "other")
            {
                s_messagesDropped.Add(0, drop.Value);
            }
        }

        foreach (var result in s_ocspTags.Values)
        {
            s_ocspRequests.Add(0, result);
        }

        foreach (var cache in new[] { s_cacheCrl, s_cacheOcsp })
        {
            s_revocationCacheHits.Add(0, cache);
            s_revocationCacheMisses.Add(0, cache);
        }

        s_policyReloads.Add(0, s_reloadSuccess);
        s_policyReloads.Add(0, s_reloadFailure);
        s_slowSubscribers.Add(0, s_policyDisconnect);
        s_slowSubscribers.Add(0, s_policyDropQos0);
        s_publishersHeldBack.Add(0);
        s_crlRefreshes.Add(0, s_reloadSuccess);
        s_crlRefreshes.Add(0, s_reloadFailure);
    }

    // ------------------------------------------------------------------ observable sources

    private static readonly object s_sourcesLock = new();
    private static IBrokerStateSource[] s_stateSources = [];
    private static IPolicyStateSource[] s_policySources = [];
    private static ICrlStateSource[] s_crlSources = [];
    private static ICertificateExpirySource[] s_expirySources = [];

    /// <summary>
    /// Registers a data source for the observable gauges: <paramref name="source"/> is registered for every one of
    /// <see cref="IBrokerStateSource"/>, <see cref="IPolicyStateSource"/>, <see cref="ICrlStateSource"/> and
    /// <see cref="ICertificateExpirySource"/> it implements. Dispose the result to unregister. Counts of several
    /// registered sources add up (like the process-wide counters); the soonest expiry is the minimum.
    /// </summary>
    public static IDisposable RegisterSource(object source)
    {
        ArgumentNullException.ThrowIfNull(source);
        lock (s_sourcesLock)
        {
            Add(ref s_stateSources, source);
            Add(ref s_policySources, source);
            Add(ref s_crlSources, source);
            Add(ref s_expirySources, source);
        }

        return new Registration(source);

        static void Add<T>(ref T[] array, object s) where T : class
        {
            if (s is T t && Array.IndexOf(array, t) < 0)
            {
                Volatile.Write(ref array, [.. array, t]);
            }
        }
    }

    private sealed class Registration(object source) : IDisposable
    {
        private object? _source = source;

        public void Dispose()
        {
            var s = Interlocked.Exchange(ref _source, null);
            if (s is null)
            {
                return;
            }

            lock (s_sourcesLock)
            {
                Remove(ref s_stateSources, s);
                Remove(ref s_policySources, s);
                Remove(ref s_crlSources, s);
                Remove(ref s_expirySources, s);
            }

            static void Remove<T>(ref T[] array, object s) where T : class
            {
                if (s is T t)
                {
                    Volatile.Write(ref array, array.Where(x => !ReferenceEquals(x, t)).ToArray());
                }
            }
        }
    }

    private static IEnumerable<Measurement<long>> SumState(Func<IBrokerStateSource, long> read)
    {
        var sources = Volatile.Read(ref s_stateSources);
        if (sources.Length == 0)
        {
            return [];
        }

        long sum = 0;
        foreach (var s in sources)
        {
            sum += read(s);
        }

        return [new Measurement<long>(sum)];
    }

    private static IEnumerable<Measurement<long>> ObservePolicyVersion()
    {
        var sources = Volatile.Read(ref s_policySources);
        for (var i = sources.Length - 1; i >= 0; i--)
        {
            var s = sources[i];
            if (s.IsPolicyLoaded)
            {
                // One active policy per broker; with several registered the last wins.
                return [new Measurement<long>(s.PolicyVersion)];
            }
        }

        return [];
    }

    private static IEnumerable<Measurement<double>> ObserveCrlAge()
    {
        var now = DateTimeOffset.UtcNow;
        var result = new List<Measurement<double>>();
        foreach (var s in Volatile.Read(ref s_crlSources))
        {
            foreach (var crl in s.GetCrlStates())
            {
                result.Add(new Measurement<double>((now - crl.ThisUpdate).TotalSeconds, Tag("issuer", crl.Issuer)));
            }
        }

        return result;
    }

    private static IEnumerable<Measurement<double>> ObserveCrlNextUpdate()
    {
        var result = new List<Measurement<double>>();
        foreach (var s in Volatile.Read(ref s_crlSources))
        {
            foreach (var crl in s.GetCrlStates())
            {
                if (crl.NextUpdate is { } next)
                {
                    result.Add(new Measurement<double>(next.ToUnixTimeMilliseconds() / 1000.0, Tag("issuer", crl.Issuer)));
                }
            }
        }

        return result;
    }

    /// <summary>One pass over the connected clients' certificate expiries.</summary>
    internal static CertificateExpirySummary SummarizeExpiries(DateTimeOffset now) =>
        SummarizeExpiries(Volatile.Read(ref s_expirySources), now);

    internal static CertificateExpirySummary SummarizeExpiries(IReadOnlyList<ICertificateExpirySource> sources, DateTimeOffset now)
    {
        var summary = new CertificateExpirySummary(ExpiryBucketsDays.Count);
        var thresholds = new long[ExpiryBucketsDays.Count];
        for (int i = 0; i < thresholds.Length; i++)
        {
            thresholds[i] = now.AddDays(ExpiryBucketsDays[i]).UtcTicks;
        }

        foreach (var s in sources)
        {
            summary.HasSource = true;
            foreach (var notAfter in s.GetConnectedCertificateExpiries())
            {
                long ticks = notAfter.UtcTicks;
                summary.Count++;
                if (ticks < summary.SoonestUtcTicks)
                {
                    summary.SoonestUtcTicks = ticks;
                }

                // Cumulative buckets: a certificate expiring within 7 days is also within 30 and 90.
                for (int i = 0; i < thresholds.Length; i++)
                {
                    if (ticks < thresholds[i])
                    {
                        summary.Buckets[i]++;
                    }
                }
            }
        }

        return summary;
    }

    private static IEnumerable<Measurement<long>> ObserveCertificateCount()
    {
        var summary = SummarizeExpiries(DateTimeOffset.UtcNow);
        return summary.HasSource ? [new Measurement<long>(summary.Count)] : [];
    }

    private static IEnumerable<Measurement<long>> ObserveExpiringCertificates()
    {
        var summary = SummarizeExpiries(DateTimeOffset.UtcNow);
        if (!summary.HasSource)
        {
            return [];
        }

        var result = new Measurement<long>[s_expiryTags.Length];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = new Measurement<long>(summary.Buckets[i], s_expiryTags[i]);
        }

        return result;
    }

    private static IEnumerable<Measurement<double>> ObserveSoonestExpiry()
    {
        var summary = SummarizeExpiries(DateTimeOffset.UtcNow);
        if (summary.Count == 0)
        {
            return [];
        }

        return [new Measurement<double>(new DateTimeOffset(summary.SoonestUtcTicks, TimeSpan.Zero).ToUnixTimeMilliseconds() / 1000.0)];
    }
}

internal sealed class CertificateExpirySummary(int buckets)
{
    public bool HasSource;
    public long Count;
    public long SoonestUtcTicks = long.MaxValue;
    public readonly long[] Buckets = new long[buckets];
}
