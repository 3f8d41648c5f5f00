using System.Collections.Concurrent;

namespace OmniBroker.Auth.Revocation;

/// <summary>Cache key: the issuer certificate (SHA-256 of its DER) and the serial number (hex).</summary>
internal readonly record struct OcspCacheKey(string Issuer, string Serial);

internal sealed record OcspCacheEntry(OcspAnswer Answer, Uri Responder, DateTimeOffset FetchedAt, DateTimeOffset ValidUntil, DateTimeOffset RefreshAt);

/// <summary>
/// The one OCSP answer cache shared by all connections: entries live until the answer's nextUpdate
/// (<see cref="RevocationOptions.OcspCacheTtl"/> after thisUpdate when it has none, never longer than
/// <see cref="RevocationOptions.OcspMaxCacheAge"/>). Concurrent cold lookups of one certificate share a
/// single request; a responder that just failed is not asked again for <see cref="RevocationOptions.OcspFailureBackoff"/>.
/// </summary>
internal sealed class OcspCache
{
    private readonly ConcurrentDictionary<OcspCacheKey, OcspCacheEntry> _entries = new();
    private readonly ConcurrentDictionary<OcspCacheKey, Task<OcspLookup>> _inFlight = new();
    private readonly ConcurrentDictionary<Uri, (DateTimeOffset Until, string Error)> _down = new();
    private readonly RevocationOptions _options;

    public OcspCache(RevocationOptions options)
    {
        _options = options;
    }

    public int Count => _entries.Count;

    public bool TryGet(OcspCacheKey key, DateTimeOffset now, out OcspCacheEntry entry)
    {
        if (_entries.TryGetValue(key, out entry!) && now <= entry.ValidUntil)
        {
            return true;
        }

        entry = null!;
        return false;
    }

    public OcspCacheEntry Store(OcspCacheKey key, OcspAnswer answer, Uri responder, DateTimeOffset now)
    {
        DateTimeOffset validUntil = answer.NextUpdate ?? answer.ThisUpdate + _options.OcspCacheTtl;
        if (validUntil > now + _options.OcspMaxCacheAge)
        {
            validUntil = now + _options.OcspMaxCacheAge;
        }

        TimeSpan lifetime = validUntil - now;
        TimeSpan ahead = lifetime > TimeSpan.Zero ? TimeSpan.FromTicks(Math.Min(_options.RefreshMargin.Ticks, lifetime.Ticks / 2)) : TimeSpan.Zero;
        OcspCacheEntry entry = new(answer, responder, now, validUntil, validUntil - ahead);
        _entries[key] = entry;
        _down.TryRemove(responder, out _);
        return entry;
    }

    /// <summary>Starts the lookup unless one for the same key is already running; the caller awaits the shared task.</summary>
    public Task<OcspLookup> GetOrStart(OcspCacheKey key, Func<Task<OcspLookup>> start)
    {
        while (true)
        {
            if (_inFlight.TryGetValue(key, out Task<OcspLookup>? running))
            {
                return running;
            }

            TaskCompletionSource<OcspLookup> tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!_inFlight.TryAdd(key, tcs.Task))
            {
                continue;
            }

            _ = RunAsync(key, tcs, start);
            return tcs.Task;
        }
    }

    private async Task RunAsync(OcspCacheKey key, TaskCompletionSource<OcspLookup> tcs, Func<Task<OcspLookup>> start)
    {
        try
        {
            tcs.TrySetResult(await start().ConfigureAwait(false));
        }
        catch (Exception ex)
        {
            // Handed to every waiter: the lookup itself reports failures as values, so this is a bug, not an outage.
            tcs.TrySetException(ex);
        }
        finally
        {
            _inFlight.TryRemove(new KeyValuePair<OcspCacheKey, Task<OcspLookup>>(key, tcs.Task));
        }
    }

    public void MarkDown(Uri responder, DateTimeOffset now, string error)
    {
        if (_options.OcspFailureBackoff > TimeSpan.Zero)
        {
            _down[responder] = (now + _options.OcspFailureBackoff, error);
        }
    }

    public bool IsDown(Uri responder, DateTimeOffset now, out string error)
    {
        if (_down.TryGetValue(responder, out (DateTimeOffset Until, string Error) state) && now < state.Until)
        {
            error = state.Error;
            return true;
        }

        error = "";
        return false;
    }

    /// <summary>Drops entries that expired (called by the monitor).</summary>
    public int Purge(DateTimeOffset now)
    {
        int removed = 0;
        foreach (KeyValuePair<OcspCacheKey, OcspCacheEntry> pair in _entries)
        {
            if (pair.Value.ValidUntil < now && _entries.TryRemove(pair))
            {
                removed++;
            }
        }

        return removed;
    }

    public void Clear()
    {
        _entries.Clear();
        _down.Clear();
    }
}
