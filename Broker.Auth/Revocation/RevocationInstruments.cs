using System.Diagnostics.Metrics;

namespace OmniBroker.Auth.Revocation;

/// <summary>
/// The revocation instruments of <see cref="RevocationMetrics"/>, on the meter <see cref="RevocationMetrics.MeterName"/>
/// from an <see cref="IMeterFactory"/>: OCSP requests and their latency, cache lookups, CRL refreshes, handshake
/// decisions (soft-fail admissions included), live drops of connected clients and the freshness of the CRLs in use.
/// The Prometheus name of each instrument is in its comment.
/// </summary>
internal sealed class RevocationInstruments : IDisposable
{
    /// <summary>Histogram bounds in seconds for OCSP round trips (1 ms .. 10 s).</summary>
    private static readonly double[] s_latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private static readonly KeyValuePair<string, object?>[] s_ocspResults = Enum.GetValues<OcspRequestResult>()
        .Select(static r => Tag("result", Label(r))).ToArray();
    private static readonly KeyValuePair<string, object?> s_cacheCrl = Tag("cache", "crl");
    private static readonly KeyValuePair<string, object?> s_cacheOcsp = Tag("cache", "ocsp");
    private static readonly KeyValuePair<string, object?> s_success = Tag("result", "success");
    private static readonly KeyValuePair<string, object?> s_failure = Tag("result", "failure");
    private static readonly KeyValuePair<string, object?> s_good = Tag("result", "good");
    private static readonly KeyValuePair<string, object?> s_revoked = Tag("result", "revoked");
    private static readonly KeyValuePair<string, object?> s_unknownRefused = Tag("result", "unknown_refused");
    private static readonly KeyValuePair<string, object?> s_softFailAdmitted = Tag("result", "soft_fail_admitted");
    private static readonly KeyValuePair<string, object?> s_dropRevoked = Tag("reason", "revoked");
    private static readonly KeyValuePair<string, object?> s_dropExpired = Tag("reason", "expired");

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Counter<long> _ocspRequests;
    private readonly Histogram<double> _ocspDuration;
    private readonly Counter<long> _cacheHits;
    private readonly Counter<long> _cacheMisses;
    private readonly Counter<long> _crlRefreshes;
    private readonly Counter<long> _decisions;
    private readonly Counter<long> _liveDrops;

    public RevocationInstruments(IMeterFactory? meterFactory, Func<IEnumerable<CrlSourceStatus>> crlStatus)
    {
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(RevocationMetrics.MeterName) ?? new Meter(RevocationMetrics.MeterName);

        // omnibroker_ocsp_requests_total{result}
        _ocspRequests = _meter.CreateCounter<long>("omnibroker.ocsp.requests", "{request}", "OCSP requests sent to responders, by result.");
        // omnibroker_ocsp_request_duration_seconds
        _ocspDuration = _meter.CreateHistogram("omnibroker.ocsp.request.duration", "s", "Round-trip time of OCSP requests.",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = s_latencyBuckets });
        // omnibroker_revocation_cache_hits_total{cache}, omnibroker_revocation_cache_misses_total{cache}
        _cacheHits = _meter.CreateCounter<long>("omnibroker.revocation.cache.hits", "{lookup}",
            "Revocation lookups answered from cache, by cache (crl, ocsp).");
        _cacheMisses = _meter.CreateCounter<long>("omnibroker.revocation.cache.misses", "{lookup}",
            "Revocation lookups the cache could not answer, by cache (crl, ocsp).");
        // omnibroker_crl_refreshes_total{result}
        _crlRefreshes = _meter.CreateCounter<long>("omnibroker.crl.refreshes", "{refresh}", "CRL loads and downloads, by result.");
        // omnibroker_revocation_checks_total{result}
        _decisions = _meter.CreateCounter<long>("omnibroker.revocation.checks", "{check}",
            "Revocation decisions at TLS handshakes, by result (good, revoked, unknown_refused, soft_fail_admitted).");
        // omnibroker_revocation_live_drops_total{reason}
        _liveDrops = _meter.CreateCounter<long>("omnibroker.revocation.live_drops", "{connection}",
            "Connected clients dropped by the revocation monitor, by reason (revoked, expired).");

        // omnibroker_crl_age_seconds{issuer}, omnibroker_crl_next_update_timestamp_seconds{issuer}
        _meter.CreateObservableGauge("omnibroker.crl.age", () => FreshestPerIssuer(crlStatus())
            .Select(c => new Measurement<double>((DateTimeOffset.UtcNow - c.ThisUpdate!.Value).TotalSeconds, Tag("issuer", c.Issuer))),
            "s", "Seconds since thisUpdate of the CRL in use, per issuer.");
        _meter.CreateObservableGauge("omnibroker.crl.next_update.timestamp", () => FreshestPerIssuer(crlStatus())
            .Where(static c => c.NextUpdate is not null)
            .Select(c => new Measurement<double>(c.NextUpdate!.Value.ToUnixTimeMilliseconds() / 1000.0, Tag("issuer", c.Issuer))),
            "s", "nextUpdate of the CRL in use as a Unix timestamp, per issuer.");

        PrimeSeries();
    }

    public void PrimeSeries()
    {
        foreach (var result in s_ocspResults)
        {
            _ocspRequests.Add(0, result);
        }

        foreach (var cache in new[] { s_cacheCrl, s_cacheOcsp })
        {
            _cacheHits.Add(0, cache);
            _cacheMisses.Add(0, cache);
        }

        _crlRefreshes.Add(0, s_success);
        _crlRefreshes.Add(0, s_failure);
        foreach (var result in new[] { s_good, s_revoked, s_unknownRefused, s_softFailAdmitted })
        {
            _decisions.Add(0, result);
        }

        _liveDrops.Add(0, s_dropRevoked);
        _liveDrops.Add(0, s_dropExpired);
    }

    /// <summary>The <c>result</c> label of an OCSP request.</summary>
    public static string Label(OcspRequestResult result) => result switch
    {
        OcspRequestResult.Good => "good",
        OcspRequestResult.Revoked => "revoked",
        OcspRequestResult.Unknown => "unknown",
        OcspRequestResult.Timeout => "timeout",
        OcspRequestResult.NetworkError => "network_error",
        OcspRequestResult.HttpError => "http_error",
        OcspRequestResult.InvalidResponse => "invalid_response",
        _ => "error",
    };

    /// <summary>One CRL per issuer: when several sources (file, distribution point) hold a CRL of one issuer, the
    /// freshest counts; never-loaded sources have no age to report (refresh failures and refusals show them).</summary>
    public static IEnumerable<CrlSourceStatus> FreshestPerIssuer(IEnumerable<CrlSourceStatus> sources)
    {
        var byIssuer = new Dictionary<string, CrlSourceStatus>(StringComparer.Ordinal);
        foreach (var status in sources)
        {
            if (status.ThisUpdate is { } thisUpdate
                && (!byIssuer.TryGetValue(status.Issuer, out var known) || known.ThisUpdate < thisUpdate))
            {
                byIssuer[status.Issuer] = status;
            }
        }

        return byIssuer.Values;
    }

    public void OcspRequest(OcspRequestResult result, TimeSpan latency)
    {
        int i = (int)result;
        _ocspRequests.Add(1, s_ocspResults[i >= 0 && i < s_ocspResults.Length ? i : 0]);
        if (latency >= TimeSpan.Zero)
        {
            _ocspDuration.Record(latency.TotalSeconds);
        }
    }

    public void CacheLookup(bool crl, bool hit) => (hit ? _cacheHits : _cacheMisses).Add(1, crl ? s_cacheCrl : s_cacheOcsp);

    public void CrlRefreshed(bool success) => _crlRefreshes.Add(1, success ? s_success : s_failure);

    public void Decision(RevocationStatus status, bool admitted)
    {
        var tag = status switch
        {
            RevocationStatus.Good => s_good,
            RevocationStatus.Revoked => s_revoked,
            RevocationStatus.Unknown when admitted => s_softFailAdmitted,
            RevocationStatus.Unknown => s_unknownRefused,
            _ => default,
        };
        if (tag.Key is not null)
        {
            _decisions.Add(1, tag);
        }
    }

    public void LiveDrop(bool expired) => _liveDrops.Add(1, expired ? s_dropExpired : s_dropRevoked);

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    private static KeyValuePair<string, object?> Tag(string key, string value) => new(key, value);
}
