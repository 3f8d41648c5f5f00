using System.Diagnostics.Metrics;
using System.Globalization;
using OmniBroker.Mqtt.Diagnostics;

namespace OmniBroker.Auth.Diagnostics;

/// <summary>
/// TLS client-certificate authentication instruments, on the meter <see cref="MeterName"/> from an
/// <see cref="IMeterFactory"/>: handshakes by outcome and reason, their duration, and the expiry of the certificates
/// of connected clients (from the <see cref="ConnectedIdentityRegistry"/>). Fed as an <see cref="IHandshakeObserver"/>
/// by the authenticator. The Prometheus name of each instrument is in its comment.
/// </summary>
public sealed class TlsMetrics : IHandshakeObserver, IPrimedMetrics, IDisposable
{
    public const string MeterName = "OmniBroker.Auth";

    /// <summary>The <c>reason</c> of a successful handshake whose revocation status was unknown and admitted under soft-fail.</summary>
    public const string SoftFailReason = "revocation_soft_fail";

    /// <summary>Histogram bounds in seconds for handshakes (1 ms .. 10 s).</summary>
    public static readonly IReadOnlyList<double> LatencyBucketsSeconds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    /// <summary>Cumulative days-to-expiry buckets of connected client certificates; "0" counts expired ones.</summary>
    public static readonly IReadOnlyList<int> ExpiryBucketsDays = [0, 1, 7, 14, 30, 90];

    private static readonly KeyValuePair<string, object?> s_success = new("outcome", "success");
    private static readonly KeyValuePair<string, object?> s_failure = new("outcome", "failure");
    private static readonly KeyValuePair<string, object?> s_reasonNone = new("reason", "none");
    private static readonly KeyValuePair<string, object?> s_reasonSoftFail = new("reason", SoftFailReason);
    private static readonly KeyValuePair<string, object?>[] s_failureReasons = Enum.GetValues<CertificateFailureReason>()
        .Select(static r => new KeyValuePair<string, object?>("reason", r == CertificateFailureReason.None ? "tls_error" : r.Label()))
        .ToArray();
    private static readonly KeyValuePair<string, object?>[] s_expiryTags = ExpiryBucketsDays
        .Select(static d => new KeyValuePair<string, object?>("within_days", d.ToString(CultureInfo.InvariantCulture))).ToArray();

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Counter<long> _handshakes;
    private readonly Histogram<double> _duration;
    private readonly Func<IEnumerable<DateTimeOffset>> _connectedExpiries;
    private readonly TimeProvider _time;

    public TlsMetrics(IMeterFactory? meterFactory = null)
        : this(meterFactory, static () => [], TimeProvider.System)
    {
    }

    internal TlsMetrics(IMeterFactory? meterFactory, ConnectedIdentityRegistry registry, TimeProvider time)
        : this(meterFactory, () => registry.Snapshot().Select(static i => new DateTimeOffset(i.Chain[0].NotAfter)), time)
    {
    }

    internal TlsMetrics(IMeterFactory? meterFactory, Func<IEnumerable<DateTimeOffset>> connectedExpiries, TimeProvider time)
    {
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _connectedExpiries = connectedExpiries;
        _time = time;

        // omnibroker_tls_handshakes_total{outcome,reason}
        _handshakes = _meter.CreateCounter<long>("omnibroker.tls.handshakes", "{handshake}",
            "TLS handshakes with client-certificate authentication, by outcome and reason (success: none or revocation_soft_fail).");
        // omnibroker_tls_handshake_duration_seconds{outcome}
        _duration = _meter.CreateHistogram("omnibroker.tls.handshake.duration", "s",
            "Duration of the TLS handshake including certificate and revocation checks.",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBucketsSeconds });

        // omnibroker_client_certificates, omnibroker_client_certificates_expiring{within_days},
        // omnibroker_client_certificate_soonest_expiry_timestamp_seconds
        _meter.CreateObservableGauge("omnibroker.client.certificates", () => (long)Summarize().Count, "{certificate}",
            "Client certificates of connected clients.");
        _meter.CreateObservableGauge("omnibroker.client.certificates.expiring", ObserveExpiring, "{certificate}",
            "Connected client certificates whose notAfter is within the given number of days (cumulative; 0 = already expired).");
        _meter.CreateObservableGauge("omnibroker.client.certificate.soonest_expiry.timestamp", ObserveSoonest, "s",
            "Soonest notAfter among connected client certificates, as a Unix timestamp.");

        PrimeSeries();
    }

    /// <inheritdoc/>
    public void PrimeSeries()
    {
        _handshakes.Add(0, s_success, s_reasonNone);
        _handshakes.Add(0, s_success, s_reasonSoftFail);
        foreach (var reason in s_failureReasons.Distinct())
        {
            _handshakes.Add(0, s_failure, reason);
        }
    }

    public void OnHandshakeSucceeded(TimeSpan duration) => Record(s_success, s_reasonNone, duration);

    public void OnHandshakeAdmittedSoftFail(TimeSpan duration) => Record(s_success, s_reasonSoftFail, duration);

    public void OnHandshakeFailed(CertificateFailureReason reason, TimeSpan duration)
    {
        int i = (int)reason;
        Record(s_failure, i >= 0 && i < s_failureReasons.Length ? s_failureReasons[i] : s_failureReasons[(int)CertificateFailureReason.TlsError], duration);
    }

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    private void Record(KeyValuePair<string, object?> outcome, KeyValuePair<string, object?> reason, TimeSpan duration)
    {
        _handshakes.Add(1, outcome, reason);
        if (duration >= TimeSpan.Zero)
        {
            _duration.Record(duration.TotalSeconds, outcome);
        }
    }

    /// <summary>One pass over the connected clients' certificate expiries: count, cumulative buckets, soonest.</summary>
    internal CertificateExpirySummary Summarize() => CertificateExpirySummary.Of(_connectedExpiries(), _time.GetUtcNow());

    private IEnumerable<Measurement<long>> ObserveExpiring()
    {
        var summary = Summarize();
        var result = new Measurement<long>[s_expiryTags.Length];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = new Measurement<long>(summary.Buckets[i], s_expiryTags[i]);
        }

        return result;
    }

    private IEnumerable<Measurement<double>> ObserveSoonest()
    {
        var summary = Summarize();
        return summary.Count == 0 ? [] : [new Measurement<double>(summary.Soonest.ToUnixTimeMilliseconds() / 1000.0)];
    }
}

internal sealed class CertificateExpirySummary
{
    public long Count { get; private set; }

    public DateTimeOffset Soonest { get; private set; } = DateTimeOffset.MaxValue;

    public long[] Buckets { get; } = new long[TlsMetrics.ExpiryBucketsDays.Count];

    public static CertificateExpirySummary Of(IEnumerable<DateTimeOffset> notAfters, DateTimeOffset now)
    {
        var summary = new CertificateExpirySummary();
        var thresholds = TlsMetrics.ExpiryBucketsDays.Select(d => now.AddDays(d)).ToArray();
        foreach (var notAfter in notAfters)
        {
            summary.Count++;
            if (notAfter < summary.Soonest)
            {
                summary.Soonest = notAfter;
            }

            // Cumulative buckets: a certificate expiring within 7 days is also within 30 and 90.
            for (int i = 0; i < thresholds.Length; i++)
            {
                if (notAfter < thresholds[i])
                {
                    summary.Buckets[i]++;
                }
            }
        }

        return summary;
    }
}
