using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace OmniBroker.Auth.Revocation;

/// <summary>
/// Holds the CRLs: from configured files (watched and polled, <c>CrlStore.Files.cs</c>) and from the certificates'
/// http distribution points (fetched on first need, then refreshed in the background before nextUpdate,
/// <c>CrlStore.DistributionPoints.cs</c>). Every CRL used was verified against the CA that issued the certificate
/// (signature, cRLSign, issuer name compared by DER). A source keeps its last good CRL when a fetch or reload
/// fails or brings something invalid, unverifiable or older.
/// </summary>
internal sealed partial class CrlStore : IDisposable
{
    private readonly RevocationOptions _options;
    private readonly HttpClient _http;
    private readonly RevocationMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Func<IEnumerable<X509Certificate2>>? _configuredCas;
    private readonly ConcurrentDictionary<string, CrlSource> _distributionPoints = new(StringComparer.Ordinal);
    private readonly List<CrlSource> _files = [];
    private readonly ConcurrentDictionary<string, Task> _inFlight = new(StringComparer.Ordinal);

    // CA certificates seen as issuers in checked chains (and the configured ones), by the hex of their DER subject
    // name, then by certificate id: CRL files are verified against these.
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, X509Certificate2>> _knownIssuers = new(StringComparer.Ordinal);

    // Per CRL object, what was already logged about it (collected with the CRL, so refreshes do not accumulate).
    private readonly ConditionalWeakTable<ParsedCrl, ConcurrentDictionary<string, byte>> _reported = new();
    private readonly List<FileSystemWatcher> _watchers = [];
    private readonly SemaphoreSlim _wake = new(0);
    private int _filesDirty;
    private int _configuredCasAdded;

    /// <param name="configuredCas">CA certificates known from configuration (trust anchors, configured intermediates),
    /// so CRL files can be verified before the first client of that CA connects.</param>
    public CrlStore(RevocationOptions options, HttpClient http, RevocationMetrics metrics, ILogger logger, TimeProvider time,
        Func<IEnumerable<X509Certificate2>>? configuredCas = null)
    {
        _options = options;
        _http = http;
        _metrics = metrics;
        _logger = logger;
        _time = time;
        _configuredCas = configuredCas;
        foreach (string file in options.CrlFiles)
        {
            _files.Add(new CrlSource(Path.GetFullPath(file), url: null, issuer: null));
        }

        metrics.CrlStatusProvider = Snapshot;
    }

    /// <summary>Raised (on the refreshing thread) when the revoked entries of a source's CRL changed; the argument names the source.</summary>
    public event Action<string>? Changed;

    internal SemaphoreSlim WakeSignal => _wake;

    /// <summary>
    /// What the held CRLs say about <paramref name="certificate"/>. Never touches the network. With
    /// <paramref name="refreshOlderThan"/> (connected clients), a "not listed" answer from a distribution-point CRL
    /// downloaded longer ago than that becomes <see cref="CrlVerdictKind.RefreshDue"/>.
    /// </summary>
    public CrlVerdict Evaluate(X509Certificate2 certificate, X509Certificate2 issuer, DateTimeOffset now, TimeSpan? refreshOlderThan = null)
    {
        CertificateRevocationInfo info = CertificateRevocationInfo.Get(certificate);
        RememberIssuer(issuer);
        List<(ParsedCrl Crl, string Source)> usable = [];
        List<Uri> missing = [];
        List<Uri> aged = [];
        string? failure = null;

        if (_options.FetchDistributionPoints)
        {
            foreach (Uri url in info.CrlDistributionPoints)
            {
                if (_distributionPoints.TryGetValue(url.AbsoluteUri, out CrlSource? source) && source.Current is { } crl)
                {
                    if (AddIfSigned(crl, source.Name, issuer, usable) && refreshOlderThan is { } maxAge
                        && (source.LastSuccess is not { } confirmed || now - confirmed >= maxAge) && source.MayFetch(now, _options.CrlRetryInterval))
                    {
                        aged.Add(url);
                    }
                }
                else if (source is not null && source.LastFailure is { } failedAt && now - failedAt < _options.CrlRetryInterval)
                {
                    failure = $"CRL fetch from {url} failed recently: {source.LastError}";
                }
                else
                {
                    missing.Add(url);
                }
            }
        }

        foreach (CrlSource file in _files)
        {
            PromotePending(file, issuer, now);
            if (file.Current is { } current && current.IssuedBy(issuer))
            {
                AddIfSigned(current, file.Name, issuer, usable);
            }
        }

        if (usable.Count == 0)
        {
            _metrics.CrlCache(false);
            if (missing.Count > 0)
            {
                return new CrlVerdict(CrlVerdictKind.Missing, $"no CRL of '{issuer.Subject}' held yet", missing);
            }

            return CrlVerdict.Of(CrlVerdictKind.NoSource, failure ?? $"no CRL for issuer '{issuer.Subject}'");
        }

        _metrics.CrlCache(true);
        foreach ((ParsedCrl crl, string source) in usable)
        {
            // removeFromCRL (8) only appears in delta CRLs, which are refused; anything else listed is revoked
            // (certificateHold included: a held certificate is not valid now).
            if (crl.TryGetRevoked(info.SerialHex, out CrlEntry entry) && entry.Reason != 8)
            {
                string reason = entry.Reason is { } r ? $", reason {(X509RevocationReason)r}" : "";
                return CrlVerdict.Of(CrlVerdictKind.Revoked, $"listed in the CRL of '{issuer.Subject}' from {source} (revoked {entry.RevocationDate:O}{reason})");
            }
        }

        if (aged.Count > 0)
        {
            return new CrlVerdict(CrlVerdictKind.RefreshDue, $"the CRL of '{issuer.Subject}' is older than the maximum status age", aged);
        }

        return EvaluateFreshness(info, issuer, usable, now);
    }

    private CrlVerdict EvaluateFreshness(CertificateRevocationInfo info, X509Certificate2 issuer, List<(ParsedCrl Crl, string Source)> usable, DateTimeOffset now)
    {
        (ParsedCrl Crl, string Source)? stale = null;
        foreach ((ParsedCrl crl, string source) in usable)
        {
            if (crl.ThisUpdate > now + _options.ClockSkew)
            {
                continue;
            }

            if (crl.NextUpdate is not { } next || now <= next + _options.ClockSkew)
            {
                return CrlVerdict.Of(CrlVerdictKind.Good, $"not in the CRL of '{issuer.Subject}' from {source}");
            }

            if (now <= next + _options.ClockSkew + _options.StaleCrlGrace)
            {
                ReportStale(crl, source, "still used within the grace period");
                return CrlVerdict.Of(CrlVerdictKind.Good, $"not in the CRL of '{issuer.Subject}' from {source} (past nextUpdate, within grace)");
            }

            stale ??= (crl, source);
        }

        if (stale is not { } s)
        {
            return CrlVerdict.Of(CrlVerdictKind.NoSource, $"the CRL of '{issuer.Subject}' is not valid yet (thisUpdate in the future)");
        }

        List<Uri> refetch = _options.FetchDistributionPoints ? DueForRetry(info.CrlDistributionPoints, now) : [];
        if (_options.StaleCrlPolicy == StaleCrlPolicy.FailOpen)
        {
            ReportStale(s.Crl, s.Source, "past the grace period, still used (fail-open)");
            return new CrlVerdict(CrlVerdictKind.Good, $"not in the stale CRL of '{issuer.Subject}' from {s.Source} (fail-open)", []);
        }

        ReportStale(s.Crl, s.Source, "past the grace period, no longer trusted (fail-closed)");
        return new CrlVerdict(CrlVerdictKind.StaleRefuse,
            $"the CRL of '{issuer.Subject}' from {s.Source} expired {s.Crl.NextUpdate:O} (past grace, fail-closed)", refetch);
    }

    /// <summary>
    /// Validates new CRL bytes for a source and makes them current, or logs why not and keeps the last good.
    /// <paramref name="verifiersOf"/> gives the CAs that may have signed it (the CA that named a distribution point; for
    /// a file, the known CAs with the CRL's issuer name); none means it cannot be verified yet (files only: held as pending).
    /// </summary>
    private void Accept(CrlSource source, byte[] data, Func<ParsedCrl, IReadOnlyCollection<X509Certificate2>> verifiersOf, DateTimeOffset now)
    {
        string? error = null;
        ParsedCrl? crl = null;
        IReadOnlyCollection<X509Certificate2> verifiers = [];
        try
        {
            crl = ParsedCrl.Parse(data);
        }
        catch (RevocationFormatException ex)
        {
            error = ex.Message;
        }

        if (crl is not null)
        {
            verifiers = verifiersOf(crl);
            error = CheckTimes(crl, now);
            if (error is null && verifiers.Count > 0 && !verifiers.Any(ca => crl.IsSignedBy(ca, out _)))
            {
                crl.IsSignedBy(verifiers.First(), out error);
            }
        }

        if (error is not null || crl is null)
        {
            Reject(source, error ?? "invalid", now);
            return;
        }

        if (verifiers.Count == 0)
        {
            // Nothing to verify it with yet: never used (nor does it displace the last good) until a chain shows its CA.
            source.Pending = crl;
            RevocationLog.CrlPending(_logger, source.Name, crl.Issuer.Name, crl.Number?.ToString() ?? "-");
            return;
        }

        MakeCurrent(source, crl, now);
    }

    private string? CheckTimes(ParsedCrl crl, DateTimeOffset now) =>
        crl.ThisUpdate > now + _options.ClockSkew ? $"thisUpdate {crl.ThisUpdate:O} is in the future"
        : crl.NextUpdate is { } next && next < crl.ThisUpdate ? "nextUpdate is before thisUpdate"
        : null;

    private void Reject(CrlSource source, string error, DateTimeOffset now)
    {
        _metrics.CrlRejected();
        source.LastError = error;
        source.LastFailure = now;
        if (source.Url is not null)
        {
            source.NextRefresh = now + _options.CrlRetryInterval;
        }

        RevocationLog.CrlInvalid(_logger, source.Name, error, KeepingMessage(source));
    }

    /// <summary>Installs a verified CRL unless it is older than, or a re-signed copy of, the one held.</summary>
    private void MakeCurrent(CrlSource source, ParsedCrl crl, DateTimeOffset now)
    {
        ParsedCrl? current = source.Current;
        source.LastSuccess = now;
        source.LastError = null;
        if (current is not null && IsSameNumber(crl, current))
        {
            // A re-signed copy of the CRL already held (same issuer, same cRLNumber): nothing new to load, and
            // nothing for the monitor to re-check. A later thisUpdate is still taken, quietly, for its freshness.
            if (crl.ThisUpdate > current.ThisUpdate)
            {
                source.Current = crl;
            }
        }
        else if (current is not null && IsOlder(crl, current))
        {
            RevocationLog.CrlOlder(_logger, crl.Issuer.Name, source.Name, crl.Number?.ToString() ?? "-", current.Number?.ToString() ?? current.ThisUpdate.ToString("O"));
        }
        else
        {
            source.Current = crl;
            RevocationLog.CrlLoaded(_logger, source.Name, crl.Issuer.Name, crl.Number?.ToString() ?? "-", crl.ThisUpdate, crl.NextUpdate, crl.RevokedCount);
        }

        if (source.Url is not null)
        {
            source.NextRefresh = NextRefresh(source.Current!, now);
        }

        if (!ReferenceEquals(source.Current, current) && (current is null || !SameEntries(source.Current!, current)))
        {
            // Only a change of the revoked entries can change a connected client's verdict.
            Changed?.Invoke(source.Name);
        }
    }

    private static bool IsSameNumber(ParsedCrl candidate, ParsedCrl current) =>
        candidate.Number is { } a && current.Number is { } b && a == b
        && candidate.Issuer.RawData.AsSpan().SequenceEqual(current.Issuer.RawData);

    private static bool SameEntries(ParsedCrl a, ParsedCrl b) =>
        a.RevokedCount == b.RevokedCount && a.RevokedSerials.All(serial => b.TryGetRevoked(serial, out _));

    private static bool IsOlder(ParsedCrl candidate, ParsedCrl current)
    {
        if (!candidate.Issuer.RawData.AsSpan().SequenceEqual(current.Issuer.RawData))
        {
            return false;
        }

        if (candidate.Number is { } a && current.Number is { } b)
        {
            return a < b;
        }

        return candidate.ThisUpdate < current.ThisUpdate;
    }

    private static string KeepingMessage(CrlSource source) => source.Current is { } c
        ? $"keeping the last good CRL (thisUpdate {c.ThisUpdate:O}, nextUpdate {c.NextUpdate:O})"
        : "no CRL held from this source";

    private bool AddIfSigned(ParsedCrl crl, string source, X509Certificate2 issuer, List<(ParsedCrl, string)> usable)
    {
        if (!crl.IssuedBy(issuer))
        {
            return false;
        }

        if (crl.IsSignedBy(issuer, out string? error))
        {
            usable.Add((crl, source));
            return true;
        }

        if (FirstReport(crl, "sig"))
        {
            _metrics.CrlRejected();
            RevocationLog.CrlInvalid(_logger, source, error ?? "bad signature", "not used");
        }

        return false;
    }

    private void ReportStale(ParsedCrl crl, string source, string action)
    {
        if (FirstReport(crl, action))
        {
            RevocationLog.CrlStale(_logger, crl.Issuer.Name, source, crl.NextUpdate, action);
        }
    }

    private bool FirstReport(ParsedCrl crl, string what) =>
        _reported.GetOrCreateValue(crl).TryAdd(what, 0);

    /// <summary>Remembers a CA certificate as a possible CRL signer; true when it was not known before.</summary>
    private bool RememberIssuer(X509Certificate2 issuer)
    {
        CertificateRevocationInfo info = CertificateRevocationInfo.Get(issuer);
        ConcurrentDictionary<string, X509Certificate2> sameName = _knownIssuers.GetOrAdd(info.SubjectKey(issuer),
            static _ => new ConcurrentDictionary<string, X509Certificate2>(StringComparer.Ordinal));
        return sameName.TryAdd(info.CacheId(issuer), issuer);
    }

    private IReadOnlyCollection<X509Certificate2> KnownIssuersNamed(ParsedCrl crl)
    {
        if (Interlocked.Exchange(ref _configuredCasAdded, 1) == 0 && _configuredCas is not null)
        {
            foreach (X509Certificate2 ca in _configuredCas())
            {
                RememberIssuer(ca);
            }
        }

        return _knownIssuers.TryGetValue(Convert.ToHexString(crl.Issuer.RawData), out ConcurrentDictionary<string, X509Certificate2>? cas)
            ? [.. cas.Values]
            : [];
    }

    public IReadOnlyList<CrlSourceStatus> Snapshot()
    {
        List<CrlSourceStatus> result = [];
        foreach (CrlSource source in _files.Concat(_distributionPoints.Values))
        {
            ParsedCrl? crl = source.Current;
            result.Add(new CrlSourceStatus(source.Name, crl?.Issuer.Name ?? "", crl?.ThisUpdate, crl?.NextUpdate, crl?.Number,
                crl?.RevokedCount ?? 0, source.LastSuccess, source.LastFailure, source.LastError));
        }

        return result;
    }

    public void Dispose()
    {
        foreach (FileSystemWatcher watcher in _watchers)
        {
            watcher.Dispose();
        }

        _watchers.Clear();
    }
}
