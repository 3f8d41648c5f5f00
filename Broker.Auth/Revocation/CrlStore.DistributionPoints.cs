using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Auth.Revocation;

/// <summary>CRLs from the certificates' http distribution points: cold fetches, background refresh, retry bounds.</summary>
internal sealed partial class CrlStore
{
    /// <summary>The distribution points among <paramref name="urls"/> not downloaded (successfully or not) within the
    /// last <see cref="RevocationOptions.CrlRetryInterval"/>: a stale verdict must not turn every check into a download.</summary>
    private List<Uri> DueForRetry(IReadOnlyList<Uri> urls, DateTimeOffset now)
    {
        List<Uri> due = [];
        foreach (Uri url in urls)
        {
            if (!_distributionPoints.TryGetValue(url.AbsoluteUri, out CrlSource? source) || source.MayFetch(now, _options.CrlRetryInterval))
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
            CrlSource source = _distributionPoints.GetOrAdd(urls[i].AbsoluteUri, static (key, iss) => new CrlSource(key, new Uri(key), iss), issuer);
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
        foreach (CrlSource source in _distributionPoints.Values)
        {
            if (now >= source.NextRefresh)
            {
                due.Add(StartFetch(source));
            }
        }

        await Task.WhenAll(due).WaitAsync(cancellationToken).ConfigureAwait(false);

        DateTimeOffset next = now + _options.CrlFilePollInterval;
        foreach (CrlSource source in _distributionPoints.Values)
        {
            if (source.NextRefresh < next)
            {
                next = source.NextRefresh;
            }
        }

        return next;
    }

    private Task StartFetch(CrlSource source)
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

    private Task InFlightOrDone(CrlSource source) =>
        _inFlight.TryGetValue(source.Name, out Task? running) ? running : Task.CompletedTask;

    private async Task RunFetchAsync(CrlSource source, TaskCompletionSource done)
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

    private async Task FetchCoreAsync(CrlSource source)
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

        Accept(source, data, _ => [source.Issuer!], now);
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
}
