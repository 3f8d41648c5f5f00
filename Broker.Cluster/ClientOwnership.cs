using System.Collections.Concurrent;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.KeyValueStore;

namespace OmniBroker.Cluster;

/// <summary>
/// Which node holds a client id, cluster-wide: bucket <c>omni_clients</c>, key <c>sha256(client id)</c> → node and
/// client id. A connection claims its id with a put; the bucket's revision of that put is the claim's fencing token. A
/// claim with a higher revision from another node takes over: this node's connection is closed (5.0: DISCONNECT 0x8E).
/// The bucket orders every claim of one key, so two simultaneous connects on two nodes leave exactly one, the later
/// claim, whichever node sees what first. A closed connection withdraws its claim with a delete conditional on its
/// revision (a newer claim elsewhere stays).
/// </summary>
internal sealed class ClientOwnership(string nodeId, ILogger logger)
{
    private readonly ConcurrentDictionary<string, Claim> _claims = new(StringComparer.Ordinal);
    private readonly Channel<(Claim Claim, bool Withdraw)> _writes =
        Channel.CreateUnbounded<(Claim, bool)>(new UnboundedChannelOptions { SingleReader = true });
    private ulong _lastRevision;
    private long _takeovers;

    /// <summary>Connections of this node closed because a later connection on another node claimed their client id.</summary>
    public long TakenOver => Interlocked.Read(ref _takeovers);

    /// <summary>Engine thread: never blocks.</summary>
    public IDisposable Attach(string clientId, Action takenOver)
    {
        var claim = new Claim(this, clientId, ClusterNames.Hash(clientId), takenOver);
        _claims[claim.Key] = claim;
        _writes.Writer.TryWrite((claim, false));
        return claim;
    }

    /// <summary>The revision of this node's claim of <paramref name="clientId"/>, 0 when no connection of it is here.
    /// A connection's claim is registered just after its session is attached, and its revision is known once the put
    /// is stored: waits up to a second for the one and ten for the other.</summary>
    public async ValueTask<ulong> CurrentClaimAsync(string clientId, CancellationToken cancellationToken)
    {
        var key = ClusterNames.Hash(clientId);
        var started = Environment.TickCount64;
        while (true)
        {
            var elapsed = Environment.TickCount64 - started;
            if (_claims.TryGetValue(key, out var claim) && !claim.Closed)
            {
                if (claim.Revision is not 0 and var revision)
                {
                    return revision;
                }
                if (elapsed > 10_000)
                {
                    return 0;
                }
            }
            else if (elapsed > 1_000)
            {
                return 0;
            }
            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }
    }

    private INatsKVStore? _bucket;

    /// <summary>Whether some node holds a connection of <paramref name="clientId"/> now (its claim is in the bucket);
    /// false when that cannot be read.</summary>
    public async Task<bool> IsClaimedAsync(string clientId, CancellationToken cancellationToken)
    {
        if (_bucket is not { } bucket)
        {
            return false;
        }
        try
        {
            var entry = await bucket.TryGetEntryAsync<byte[]>(ClusterNames.Hash(clientId), cancellationToken: cancellationToken).ConfigureAwait(false);
            return entry.Success && entry.Value.Value is { Length: > 0 };
        }
        catch (NatsException ex)
        {
            logger.OperationFailed("client claim read", ex.Message);
            return false;
        }
    }

    public async Task RunWriterAsync(INatsKVStore bucket, CancellationToken cancellationToken)
    {
        _bucket = bucket;
        await foreach (var (claim, withdraw) in _writes.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            if (withdraw)
            {
                var revision = claim.Revision;
                if (revision != 0)
                {
                    try
                    {
                        // Only if nobody claimed the id since (a wrong last revision: someone did; nothing to do).
                        await bucket.TryDeleteAsync(claim.Key, new NatsKVDeleteOpts { Revision = revision }, cancellationToken).ConfigureAwait(false);
                    }
                    catch (NatsException ex)
                    {
                        // NATS unreachable: the stale claim names a node that no longer holds the client, which is harmless
                        // (a later claim anywhere supersedes it).
                        logger.OperationFailed("client claim withdrawal", ex.Message);
                    }
                }
                continue;
            }
            if (claim.Closed)
            {
                continue;
            }
            ulong written = 0;
            await ClusterRetry.RunAsync(logger, "client claim", async () =>
                written = await bucket.PutAsync(claim.Key, Encoding.UTF8.GetBytes(nodeId + "\n" + claim.ClientId), cancellationToken: cancellationToken)
                    .ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            claim.Claimed(written);
        }
    }

    public Task RunWatchAsync(INatsKVStore bucket, Func<CancellationToken> restart, CancellationToken cancellationToken) =>
        ClusterRetry.WatchAsync(logger, "client watch", async token =>
        {
            // Again from the last revision seen after a reconnect: no claim made meanwhile is missed.
            var last = Interlocked.Read(ref _lastRevision);
            var opts = last == 0 ? new NatsKVWatchOpts { UpdatesOnly = true, IgnoreDeletes = true }
                : new NatsKVWatchOpts { ResumeAtRevision = last + 1, IgnoreDeletes = true };
            await foreach (var entry in bucket.WatchAsync<byte[]>(">", opts: opts, cancellationToken: token).ConfigureAwait(false))
            {
                Interlocked.Exchange(ref _lastRevision, entry.Revision);
                if (entry.Operation != NatsKVOperation.Put || entry.Value is not { } value || IsMine(value)
                    || !_claims.TryGetValue(entry.Key, out var claim))
                {
                    continue;
                }
                claim.ClaimedElsewhere(entry.Revision);
            }
        }, restart, cancellationToken);

    private bool IsMine(byte[] value)
    {
        var newline = Array.IndexOf(value, (byte)'\n');
        return newline >= 0 && Encoding.UTF8.GetString(value, 0, newline) == nodeId;
    }

    private void TakeOver(Claim claim)
    {
        _claims.TryRemove(new KeyValuePair<string, Claim>(claim.Key, claim));
        Interlocked.Increment(ref _takeovers);
        logger.ClientTakenOver(claim.ClientId);
        claim.Close();
    }

    private sealed class Claim(ClientOwnership owner, string clientId, string key, Action takenOver) : IDisposable
    {
        private readonly object _sync = new();
        private ulong _revision;
        private ulong _elsewhere;
        private bool _closed;

        public string ClientId { get; } = clientId;
        public string Key { get; } = key;

        public ulong Revision
        {
            get
            {
                lock (_sync)
                {
                    return _revision;
                }
            }
        }

        public bool Closed
        {
            get
            {
                lock (_sync)
                {
                    return _closed;
                }
            }
        }

        /// <summary>This node's put was stored with <paramref name="revision"/>; a later claim may have been seen already.</summary>
        public void Claimed(ulong revision)
        {
            bool lost;
            lock (_sync)
            {
                _revision = revision;
                lost = !_closed && _elsewhere > revision;
            }
            if (lost)
            {
                owner.TakeOver(this);
            }
        }

        public void ClaimedElsewhere(ulong revision)
        {
            bool lost;
            lock (_sync)
            {
                _elsewhere = Math.Max(_elsewhere, revision);
                // Before this node's own put is stored its revision is unknown: decided in Claimed.
                lost = !_closed && _revision != 0 && revision > _revision;
            }
            if (lost)
            {
                owner.TakeOver(this);
            }
        }

        public void Close()
        {
            lock (_sync)
            {
                if (_closed)
                {
                    return;
                }
                _closed = true;
            }
            takenOver();
        }

        /// <summary>The connection closed (for any reason).</summary>
        public void Dispose()
        {
            bool wasTakenOver;
            lock (_sync)
            {
                wasTakenOver = _closed;
                _closed = true;
            }
            owner._claims.TryRemove(new KeyValuePair<string, Claim>(Key, this));
            if (!wasTakenOver)
            {
                owner._writes.Writer.TryWrite((this, true));
            }
        }
    }
}
