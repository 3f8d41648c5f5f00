using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Auth.Revocation;

/// <summary>
/// CRLs from configured files (<see cref="RevocationOptions.CrlFiles"/>), watched and polled. A file's CRL is
/// verified the same way as a distribution point's: by a CA with its issuer name (compared by DER) that verifies the
/// signature and may sign CRLs. A CRL whose CA is not known yet waits (pending) until a checked chain shows that CA;
/// until then, and if it never verifies, the file's last good CRL stays in use.
/// </summary>
internal sealed partial class CrlStore
{
    /// <summary>Loads the configured files and starts watching them.</summary>
    public void StartWatching()
    {
        ReloadFiles(force: true);
        foreach (IGrouping<string, CrlSource> dir in _files.GroupBy(f => Path.GetDirectoryName(f.Name)!, StringComparer.Ordinal))
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

    /// <summary>Re-reads every configured file whose size or timestamp changed (all of them when forced).</summary>
    public void ReloadFiles(bool force)
    {
        DateTimeOffset now = _time.GetUtcNow();
        foreach (CrlSource file in _files)
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
            if ((file.Current is { } current && data.AsSpan().SequenceEqual(current.Encoded))
                || (file.Pending is { } pending && data.AsSpan().SequenceEqual(pending.Encoded)))
            {
                continue;
            }

            lock (file)
            {
                Accept(file, data, KnownIssuersNamed, now);
            }
        }
    }

    /// <summary>Verifies a file's pending CRL with <paramref name="issuer"/> when that CA names it, and makes it current
    /// (or rejects it). Runs when a chain shows a CA for the first time.</summary>
    private void PromotePending(CrlSource file, X509Certificate2 issuer, DateTimeOffset now)
    {
        if (file.Pending is not { } pending || !pending.IssuedBy(issuer))
        {
            return;
        }

        lock (file)
        {
            if (!ReferenceEquals(file.Pending, pending))
            {
                return;
            }

            file.Pending = null;
            if (!pending.IsSignedBy(issuer, out string? error))
            {
                Reject(file, error ?? "bad signature", now);
                return;
            }

            MakeCurrent(file, pending, now);
        }
    }
}
