using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace OmniBroker.Auth.Revocation;

internal enum CrlVerdictKind
{
    Good,
    Revoked,

    /// <summary>Only CRLs past nextUpdate + grace, and the stale policy is fail-closed.</summary>
    StaleRefuse,

    /// <summary>The certificate names distribution points whose CRL is not held yet: a fetch may answer.</summary>
    Missing,

    /// <summary>No CRL for this issuer and nowhere to fetch one (or fetching failed moments ago).</summary>
    NoSource,
}

internal readonly record struct CrlVerdict(CrlVerdictKind Kind, string Detail, IReadOnlyList<Uri> FetchUrls)
{
    public static CrlVerdict Of(CrlVerdictKind kind, string detail) => new(kind, detail, []);
}

/// <summary>
/// Holds the CRLs: from configured files (watched and polled) and from the certificates' http distribution
/// points (fetched on first need, then refreshed in the background before nextUpdate). A source keeps its last
/// good CRL when a fetch or reload fails or brings something invalid or older.
/// </summary>
internal sealed class CrlStore : IDisposable
{
    private readonly RevocationOptions _options;
    private readonly HttpClient _http;
    private readonly RevocationMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, Source> _distributionPoints = new(StringComparer.Ordinal);
    private readonly List<Source> _files = [];
    private readonly ConcurrentDictionary<string, Task> _inFlight = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, X509Certificate2> _knownIssuers = new(StringComparer.Ordinal);
    // Per CRL object, what was already logged about it (collected with the CRL, so refreshes do not accumulate).
    private readonly ConditionalWeakTable<ParsedCrl, ConcurrentDictionary<string, byte>> _reported = new();
    private readonly List<FileSystemWatcher> _watchers = [];
    private readonly SemaphoreSlim _wake = new(0);
    private int _filesDirty;

    public CrlStore(RevocationOptions options, HttpClient http, RevocationMetrics metrics, ILogger logger, TimeProvider time)
    {
        _options = options;
        _http = http;
        _metrics = metrics;
        _logger = logger;
        _time = time;
        foreach (string file in options.CrlFiles)
        {
            _files.Add(new Source(Path.GetFullPath(file), url: null, issuer: null));
        }

        metrics.CrlStatusProvider = Snapshot;
    }

    /// <summary>Raised (on the refreshing thread) when a CRL changed; the argument names the source.</summary>
    public event Action<string>? Changed;

    internal SemaphoreSlim WakeSignal => _wake;

    /// <summary>Loads the configured files and starts watching them.</summary>
    public void StartWatching()
    {
        ReloadFiles(force: true);
        foreach (IGrouping<string, Source> dir in _files.GroupBy(f => Path.GetDirectoryName(f.Name)!, StringComparer.Ordinal))
        {
            if (!Directory.Exists(dir.Key))
            {
                continue;
            }

            try
            {
                FileSystemWatcher watcher = new(dir.Key)
                {
                    NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.Size | NotifyFilters.CreationTime,
                };
                HashSet<string> names = dir.Select(f => Path.GetFileName(f.Name)).ToHashSet(StringComparer.Ordinal);
                FileSystemEventHandler onChange = (_, e) =>
                {
                    if (e.Name is not null && names.Contains(Path.GetFileName(e.Name)))
                    {
                        Interlocked.Exchange(ref _filesDirty, 1);
                        _wake.Release();
                    }
                };
                watcher.Changed += onChange;
                watcher.Created += onChange;
                watcher.Renamed += (s, e) => onChange(s, e);
                watcher.EnableRaisingEvents = true;
                _watchers.Add(watcher);
            }
            catch (IOException ex)
            {
                // inotify limits and the like: polling still covers the files.
                RevocationLog.CrlFileUnreadable(_logger, dir.Key, $"cannot watch directory ({ex.Message}); polling every {_options.CrlFilePollInterval}");
            }
        }
    }

    /// <summary>What the held CRLs say about <paramref name="certificate"/>. Never touches the network.</summary>
    public CrlVerdict Evaluate(X509Certificate2 certificate, X509Certificate2 issuer, DateTimeOffset now)
    {
        CertificateRevocationInfo info = CertificateRevocationInfo.Get(certificate);
        string issuerKey = RememberIssuer(issuer);
        List<(ParsedCrl Crl, string Source)> usable = [];
        List<Uri> missing = [];
        string? failure = null;

        if (_options.FetchDistributionPoints)
        {
            foreach (Uri url in info.CrlDistributionPoints)
            {
                if (_distributionPoints.TryGetValue(url.AbsoluteUri, out Source? source) && source.Current is { } crl)
                {
                    AddIfSigned(crl, source.Name, issuer, usable);
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

        foreach (Source file in _files)
        {
            if (file.Current is { } current && current.IssuedBy(issuer) && !AddIfSigned(current, file.Name, issuer, usable)
                && file.Previous is { } previous && previous.IssuedBy(issuer))
            {
                AddIfSigned(previous, file.Name, issuer, usable);
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

    /// <summary>The distribution points among <paramref name="urls"/> not downloaded (successfully or not) within the
    /// last <see cref="RevocationOptions.CrlRetryInterval"/>: a stale verdict must not turn every check into a download.</summary>
    private List<Uri> DueForRetry(IReadOnlyList<Uri> urls, DateTimeOffset now)
    {
        List<Uri> due = [];
        foreach (Uri url in urls)
        {
            if (!_distributionPoints.TryGetValue(url.AbsoluteUri, out Source? source) || source.MayFetch(now, _options.CrlRetryInterval))
            {
                due.Add(url);
            }
        }

        return due;
    }

    /// <summary>Fetches the given distribution points now (a cold fetch), waiting at most the CRL timeout.
    /// Concurrent callers share one download per URL; a point downloaded within <see cref="RevocationOptions.CrlRetryInterval"/>
    /// is not downloaded again (the background refresh owns its schedule).</summary>
    public async Task FetchAsync(IReadOnlyList<Uri> urls, X509Certificate2 issuer, CancellationToken cancellationToken)
    {
        DateTimeOffset now = _time.GetUtcNow();
        Task[] tasks = new Task[urls.Count];
        for (int i = 0; i < urls.Count; i++)
        {
            Source source = _distributionPoints.GetOrAdd(urls[i].AbsoluteUri, static (key, iss) => new Source(key, new Uri(key), iss), issuer);
            tasks[i] = source.MayFetch(now, _options.CrlRetryInterval) ? StartFetch(source) : InFlightOrDone(source);
        }

        _wake.Release();
        await Task.WhenAll(tasks).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Refreshes what is due: changed or polled files, and distribution points near their nextUpdate.
    /// Returns when the next refresh is due.</summary>
    public async Task<DateTimeOffset> RefreshDueAsync(CancellationToken cancellationToken)
    {
        DateTimeOffset now = _time.GetUtcNow();
        if (Interlocked.Exchange(ref _filesDirty, 0) == 1 || _files.Any(f => now >= f.NextRefresh))
        {
            ReloadFiles(force: false);
        }

        List<Task> due = [];
        foreach (Source source in _distributionPoints.Values)
        {
            if (now >= source.NextRefresh)
            {
                due.Add(StartFetch(source));
            }
        }

        await Task.WhenAll(due).WaitAsync(cancellationToken).ConfigureAwait(false);

        DateTimeOffset next = now + _options.CrlFilePollInterval;
        foreach (Source source in _distributionPoints.Values)
        {
            if (source.NextRefresh < next)
            {
                next = source.NextRefresh;
            }
        }

        return next;
    }

    /// <summary>Re-reads every configured file whose size or timestamp changed (all of them when forced).</summary>
    public void ReloadFiles(bool force)
    {
        DateTimeOffset now = _time.GetUtcNow();
        foreach (Source file in _files)
        {
            file.NextRefresh = now + _options.CrlFilePollInterval;
            FileInfo fi = new(file.Name);
            if (!fi.Exists)
            {
                if (file.LastError is null || force)
                {
                    RevocationLog.CrlFileUnreadable(_logger, file.Name, "file does not exist" + (file.Current is null ? "" : "; keeping the last good CRL"));
                }

                file.LastError = "file does not exist";
                file.LastFailure = now;
                continue;
            }

            (DateTime, long) stamp = (fi.LastWriteTimeUtc, fi.Length);
            if (!force && file.Stamp == stamp)
            {
                continue;
            }

            byte[] data;
            try
            {
                data = File.ReadAllBytes(file.Name);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                RevocationLog.CrlFileUnreadable(_logger, file.Name, ex.Message);
                file.LastError = ex.Message;
                file.LastFailure = now;
                continue;
            }

            file.Stamp = stamp;
            if (file.Current is not null && data.AsSpan().SequenceEqual(file.Current.Encoded))
            {
                continue;
            }

            Accept(file, data, verifyAgainst: null, now);
        }
    }

    private Task StartFetch(Source source)
    {
        while (true)
        {
            if (_inFlight.TryGetValue(source.Name, out Task? running))
            {
                return running;
            }

            TaskCompletionSource tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!_inFlight.TryAdd(source.Name, tcs.Task))
            {
                continue;
            }

            _ = RunFetchAsync(source, tcs);
            return tcs.Task;
        }
    }

    private Task InFlightOrDone(Source source) =>
        _inFlight.TryGetValue(source.Name, out Task? running) ? running : Task.CompletedTask;

    private async Task RunFetchAsync(Source source, TaskCompletionSource done)
    {
        try
        {
            await FetchCoreAsync(source).ConfigureAwait(false);
        }
        finally
        {
            _inFlight.TryRemove(new KeyValuePair<string, Task>(source.Name, done.Task));
            done.TrySetResult();
        }
    }

    private async Task FetchCoreAsync(Source source)
    {
        using CancellationTokenSource timeout = new(_options.CrlTimeout);
        string? error = null;
        byte[]? data = null;
        try
        {
            using HttpResponseMessage response = await _http.GetAsync(source.Url, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                data = await HttpBodyReader.ReadLimitedAsync(response.Content, _options.MaxCrlBytes, timeout.Token).ConfigureAwait(false);
            }
            else
            {
                error = $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}";
            }
        }
        catch (OperationCanceledException)
        {
            error = $"no answer within {_options.CrlTimeout.TotalMilliseconds:0} ms (timed out)";
        }
        catch (HttpRequestException ex)
        {
            error = ex.Message;
        }
        catch (IOException ex)
        {
            error = ex.Message;
        }
        catch (RevocationFormatException ex)
        {
            error = ex.Message;
        }

        DateTimeOffset now = _time.GetUtcNow();
        source.LastAttempt = now;
        if (data is null)
        {
            _metrics.CrlFetch(source.Name, success: false);
            source.LastError = error;
            source.LastFailure = now;
            source.NextRefresh = now + _options.CrlRetryInterval;
            RevocationLog.CrlFetchFailed(_logger, source.Name, error ?? "failed", KeepingMessage(source));
            return;
        }

        _metrics.CrlFetch(source.Name, success: true);
        if (source.Current is not null && data.AsSpan().SequenceEqual(source.Current.Encoded))
        {
            source.LastSuccess = now;
            source.LastError = null;
            source.NextRefresh = NextRefresh(source.Current, now);
            return;
        }

        Accept(source, data, source.Issuer, now);
    }

    /// <summary>Validates new CRL bytes for a source and makes them current, or logs why not and keeps the last good.</summary>
    private void Accept(Source source, byte[] data, X509Certificate2? verifyAgainst, DateTimeOffset now)
    {
        string? error = null;
        ParsedCrl? crl = null;
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
            X509Certificate2? issuer = verifyAgainst;
            if (issuer is null)
            {
                _knownIssuers.TryGetValue(Convert.ToHexString(crl.Issuer.RawData), out issuer);
            }

            if (issuer is not null && !crl.IsSignedBy(issuer, out string? signatureError))
            {
                error = signatureError;
            }
            else if (crl.ThisUpdate > now + _options.ClockSkew)
            {
                error = $"thisUpdate {crl.ThisUpdate:O} is in the future";
            }
            else if (crl.NextUpdate is { } next && next < crl.ThisUpdate)
            {
                error = "nextUpdate is before thisUpdate";
            }
            else if (source.Current is { } same && IsSameNumber(crl, same))
            {
                // A re-signed copy of the CRL already held (same issuer, same cRLNumber): nothing new to load, and
                // nothing for the monitor to re-check. A later thisUpdate is still taken, quietly, for its freshness.
                if (crl.ThisUpdate > same.ThisUpdate)
                {
                    source.Current = crl;
                }

                source.LastSuccess = now;
                source.LastError = null;
                if (source.Url is not null)
                {
                    source.NextRefresh = NextRefresh(source.Current!, now);
                }

                if (!SameEntries(crl, same))
                {
                    Changed?.Invoke(source.Name);
                }

                return;
            }
            else if (source.Current is { } current && IsOlder(crl, current))
            {
                RevocationLog.CrlOlder(_logger, crl.Issuer.Name, source.Name, crl.Number?.ToString() ?? "-", current.Number?.ToString() ?? current.ThisUpdate.ToString("O"));
                source.LastSuccess = now;
                source.NextRefresh = NextRefresh(current, now);
                return;
            }
        }

        if (error is not null || crl is null)
        {
            _metrics.CrlRejected();
            source.LastError = error;
            source.LastFailure = now;
            if (source.Url is not null)
            {
                source.NextRefresh = now + _options.CrlRetryInterval;
            }

            RevocationLog.CrlInvalid(_logger, source.Name, error ?? "invalid", KeepingMessage(source));
            return;
        }

        source.Previous = source.Current;
        source.Current = crl;
        source.LastSuccess = now;
        source.LastError = null;
        if (source.Url is not null)
        {
            source.NextRefresh = NextRefresh(crl, now);
        }

        RevocationLog.CrlLoaded(_logger, source.Name, crl.Issuer.Name, crl.Number?.ToString() ?? "-", crl.ThisUpdate, crl.NextUpdate, crl.RevokedCount);
        if (source.Previous is not { } previous || !SameEntries(crl, previous))
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

    private DateTimeOffset NextRefresh(ParsedCrl crl, DateTimeOffset now)
    {
        DateTimeOffset latest = now + _options.CrlMaxRefreshInterval;
        if (crl.NextUpdate is not { } next)
        {
            return latest;
        }

        DateTimeOffset at = next - _options.RefreshMargin;
        if (at <= now)
        {
            // Already inside the margin (or stale): try again soon, not in a tight loop.
            return now + _options.CrlRetryInterval;
        }

        return at < latest ? at : latest;
    }

    private static string KeepingMessage(Source source) => source.Current is { } c
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

    private string RememberIssuer(X509Certificate2 issuer)
    {
        string key = CertificateRevocationInfo.Get(issuer).SubjectKey(issuer);
        _knownIssuers.TryAdd(key, issuer);
        return key;
    }

    public IReadOnlyList<CrlSourceStatus> Snapshot()
    {
        List<CrlSourceStatus> result = [];
        foreach (Source source in _files.Concat(_distributionPoints.Values))
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

    private sealed class Source
    {
        public Source(string name, Uri? url, X509Certificate2? issuer)
        {
            Name = name;
            Url = url;
            Issuer = issuer;
        }

        /// <summary>Absolute URL or full file path.</summary>
        public string Name { get; }

        public Uri? Url { get; }

        /// <summary>The CA whose certificates pointed here (distribution points only): new CRLs must verify with it.</summary>
        public X509Certificate2? Issuer { get; }

        public volatile ParsedCrl? Current;

        public volatile ParsedCrl? Previous;

        public DateTimeOffset NextRefresh { get; set; }

        public DateTimeOffset? LastSuccess { get; set; }

        public DateTimeOffset? LastFailure { get; set; }

        /// <summary>When the last download finished, whatever its outcome (distribution points only).</summary>
        public DateTimeOffset? LastAttempt { get; set; }

        public bool MayFetch(DateTimeOffset now, TimeSpan retryInterval) =>
            LastAttempt is not { } last || now - last >= retryInterval || now < last;

        public string? LastError { get; set; }

        public (DateTime, long)? Stamp { get; set; }
    }
}
