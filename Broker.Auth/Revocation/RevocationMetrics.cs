namespace OmniBroker.Auth.Revocation;

/// <summary>OCSP request outcomes, as metric labels (bounded set).</summary>
public enum OcspRequestResult
{
    Good,
    Revoked,
    Unknown,
    Timeout,
    NetworkError,
    HttpError,
    InvalidResponse,
}

/// <summary>Optional push-style hook for exporters that want per-event data (e.g. a latency histogram).
/// Register an implementation in DI; every method must be cheap and must not throw.</summary>
public interface IRevocationObserver
{
    void OcspRequestCompleted(OcspRequestResult result, TimeSpan latency);

    void CacheLookup(string source, bool hit);

    void CrlRefreshed(string source, bool success);

    void Decision(RevocationStatus status, bool admitted);
}

/// <summary>State of one CRL source (file or distribution point), for gauges.</summary>
public sealed record CrlSourceStatus(
    string Source,
    string Issuer,
    DateTimeOffset? ThisUpdate,
    DateTimeOffset? NextUpdate,
    System.Numerics.BigInteger? Number,
    int RevokedCount,
    DateTimeOffset? LastSuccess,
    DateTimeOffset? LastFailure,
    string? LastError);

/// <summary>
/// Counters and gauges of revocation checking, as plain properties for the metrics exporter to poll.
/// Counters only grow; <see cref="CrlStatus"/> is a snapshot.
/// </summary>
public sealed class RevocationMetrics : OmniBroker.Mqtt.Diagnostics.IPrimedMetrics, IDisposable
{
    /// <summary>The meter of the exported revocation instruments (see <see cref="RevocationInstruments"/>).</summary>
    public const string MeterName = "OmniBroker.Auth.Revocation";

    private readonly long[] _ocspRequests = new long[Enum.GetValues<OcspRequestResult>().Length];
    private long _ocspLatencyTicks;
    private long _ocspCacheHits;
    private long _ocspCacheMisses;
    private long _crlCacheHits;
    private long _crlCacheMisses;
    private long _crlFetches;
    private long _crlFetchFailures;
    private long _crlInvalid;
    private long _checksGood;
    private long _checksRevoked;
    private long _checksUnknownRefused;
    private long _softFailAdmissions;
    private long _connectionsRevoked;
    private long _connectionsExpired;
    private readonly IRevocationObserver? _observer;
    private readonly RevocationInstruments _instruments;

    /// <summary>The counters, and their instruments on a meter from <paramref name="meterFactory"/> (an owned meter without one).</summary>
    public RevocationMetrics(IRevocationObserver? observer = null, System.Diagnostics.Metrics.IMeterFactory? meterFactory = null)
    {
        _observer = observer;
        _instruments = new RevocationInstruments(meterFactory, () => CrlStatus);
    }

    public void Dispose() => _instruments.Dispose();

    /// <inheritdoc/>
    public void PrimeSeries() => _instruments.PrimeSeries();

    internal Func<IReadOnlyList<CrlSourceStatus>>? CrlStatusProvider { get; set; }

    /// <summary>Per CRL source: issuer, thisUpdate, nextUpdate (age = now - ThisUpdate).</summary>
    public IReadOnlyList<CrlSourceStatus> CrlStatus => CrlStatusProvider?.Invoke() ?? [];

    public long OcspRequests(OcspRequestResult result) => Interlocked.Read(ref _ocspRequests[(int)result]);

    public long OcspRequestsTotal
    {
        get
        {
            long total = 0;
            for (int i = 0; i < _ocspRequests.Length; i++)
            {
                total += Interlocked.Read(ref _ocspRequests[i]);
            }

            return total;
        }
    }

    /// <summary>Sum of the latencies of all OCSP requests (divide by <see cref="OcspRequestsTotal"/> for the mean).</summary>
    public TimeSpan OcspLatencyTotal => TimeSpan.FromTicks(Interlocked.Read(ref _ocspLatencyTicks));

    public long OcspCacheHits => Interlocked.Read(ref _ocspCacheHits);

    public long OcspCacheMisses => Interlocked.Read(ref _ocspCacheMisses);

    public long CrlCacheHits => Interlocked.Read(ref _crlCacheHits);

    public long CrlCacheMisses => Interlocked.Read(ref _crlCacheMisses);

    public long CrlFetches => Interlocked.Read(ref _crlFetches);

    public long CrlFetchFailures => Interlocked.Read(ref _crlFetchFailures);

    public long CrlInvalid => Interlocked.Read(ref _crlInvalid);

    public long ChecksGood => Interlocked.Read(ref _checksGood);

    public long ChecksRevoked => Interlocked.Read(ref _checksRevoked);

    public long ChecksUnknownRefused => Interlocked.Read(ref _checksUnknownRefused);

    /// <summary>Clients admitted with unknown status under soft-fail.</summary>
    public long SoftFailAdmissions => Interlocked.Read(ref _softFailAdmissions);

    public long ConnectionsRevoked => Interlocked.Read(ref _connectionsRevoked);

    public long ConnectionsExpired => Interlocked.Read(ref _connectionsExpired);

    internal void OcspRequest(OcspRequestResult result, TimeSpan latency)
    {
        Interlocked.Increment(ref _ocspRequests[(int)result]);
        Interlocked.Add(ref _ocspLatencyTicks, latency.Ticks);
        _instruments.OcspRequest(result, latency);
        _observer?.OcspRequestCompleted(result, latency);
    }

    internal void OcspCache(bool hit)
    {
        Interlocked.Increment(ref hit ? ref _ocspCacheHits : ref _ocspCacheMisses);
        _instruments.CacheLookup(crl: false, hit);
        _observer?.CacheLookup("ocsp", hit);
    }

    internal void CrlCache(bool hit)
    {
        Interlocked.Increment(ref hit ? ref _crlCacheHits : ref _crlCacheMisses);
        _instruments.CacheLookup(crl: true, hit);
        _observer?.CacheLookup("crl", hit);
    }

    internal void CrlFetch(string source, bool success)
    {
        Interlocked.Increment(ref success ? ref _crlFetches : ref _crlFetchFailures);
        _instruments.CrlRefreshed(success);
        _observer?.CrlRefreshed(source, success);
    }

    internal void CrlRejected() => Interlocked.Increment(ref _crlInvalid);

    internal void Decision(RevocationStatus status, bool admitted)
    {
        switch (status)
        {
            case RevocationStatus.Good:
                Interlocked.Increment(ref _checksGood);
                break;
            case RevocationStatus.Revoked:
                Interlocked.Increment(ref _checksRevoked);
                break;
            case RevocationStatus.Unknown when admitted:
                Interlocked.Increment(ref _softFailAdmissions);
                break;
            case RevocationStatus.Unknown:
                Interlocked.Increment(ref _checksUnknownRefused);
                break;
        }

        _instruments.Decision(status, admitted);
        _observer?.Decision(status, admitted);
    }

    internal void ConnectionDropped(bool expired)
    {
        Interlocked.Increment(ref expired ? ref _connectionsExpired : ref _connectionsRevoked);
        _instruments.LiveDrop(expired);
    }
}
