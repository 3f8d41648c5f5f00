using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Cluster.Replica;

/// <summary>
/// The node's session store in cluster mode: the local store (SQLite) plus a copy of every persistent session in
/// JetStream (<see cref="ReplicaStream"/>), so that a session stays resumable on another node when this one is gone.
/// Every per-client operation goes to the local store as before and, in the same order, to the client's replica
/// subject; one entry per client per batch. In strict durability an acknowledgement waits for both (a PUBACK then
/// means: on this node's disk and in the replicated stream); not replicated within the forward timeout, the wait
/// fails like a full disk (5.0: 0x97) while the entry is kept and retried. A client whose subject another node wrote
/// since (it took the session over) is fenced: nothing more is written for it and <see cref="Fenced"/> is called.
/// </summary>
public sealed class SessionReplica : ISessionStore
{
    private const int RollupAfter = 64;
    private static readonly TimeSpan s_retryPause = TimeSpan.FromMilliseconds(200);

    private readonly ISessionStore _inner;
    private readonly string _nodeId;
    private readonly TimeSpan _timeout;
    private readonly ILogger _logger;
    private readonly Lock _order = new();
    private readonly Channel<Entry> _queue = Channel.CreateUnbounded<Entry>(new UnboundedChannelOptions { SingleReader = true });
    // Writer task only.
    private readonly Dictionary<string, ClientReplica> _clients = new(StringComparer.Ordinal);
    private readonly Lock _waitersLock = new();
    private readonly List<(long Position, TaskCompletionSource Done)> _waiters = [];
    // Position ranges of batches in which a fenced client had messages queued (the last few): their acknowledgements fail.
    private readonly Queue<(long From, long To)> _rejected = new();
    private long _lastQueued;
    private long _confirmed;
    private volatile bool _failing;
    private long _fenced;

    public SessionReplica(ISessionStore inner, string nodeId, TimeSpan timeout, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(logger);
        _inner = inner;
        _nodeId = nodeId;
        _timeout = timeout;
        _logger = logger;
    }

    /// <summary>Called (on the replica's writer) with a client id whose session another node took over.</summary>
    public Action<string>? Fenced { get; set; }

    /// <summary>The revision of this node's claim of a client id in <c>omni_clients</c> (0: no connection of the client
    /// here), waiting briefly for a claim being made: the fencing token compared with the replica's last writer's.</summary>
    public Func<string, CancellationToken, ValueTask<ulong>>? ClaimOf { get; set; }

    /// <summary>Clients fenced so far.</summary>
    public long FencedCount => Interlocked.Read(ref _fenced);

    /// <summary>Operations queued for the replica and not yet confirmed by JetStream.</summary>
    public long Lag => Math.Max(0, Volatile.Read(ref _lastQueued) - Volatile.Read(ref _confirmed));

    public StoreDurability Durability => _inner.Durability;

    public bool IsWritable => _inner.IsWritable && !_failing;

    /// <summary>Reads the local store, and knows from it every restored session whole (so that its replica can later be
    /// rolled up without losing what was written before this run).</summary>
    public async Task<StoredState> LoadAsync(CancellationToken cancellationToken)
    {
        var state = await _inner.LoadAsync(cancellationToken).ConfigureAwait(false);
        lock (_clients)
        {
            foreach (var session in state.Sessions)
            {
                var client = new ClientReplica { Complete = true };
                client.State.Apply(new SessionSaved(session.Session));
                foreach (var subscription in session.Subscriptions)
                {
                    client.State.Apply(new SubscriptionSaved(session.Session.ClientId, subscription));
                }
                foreach (var message in session.Messages)
                {
                    client.State.Apply(new MessageQueued(session.Session.ClientId, message.Sequence, message.Message!, message.Qos, message.Retain, null));
                }
                foreach (var packetId in session.InboundQos2)
                {
                    client.State.Apply(new InboundQos2Saved(session.Session.ClientId, packetId));
                }
                if (session.Will is { } will)
                {
                    client.State.Apply(new WillSaved(session.Session.ClientId, will));
                }
                _clients[session.Session.ClientId] = client;
            }
        }
        return state;
    }

    public long Append(StoreOperation operation)
    {
        var clientId = ReplicaCodec.ClientOf(operation);
        lock (_order)
        {
            // One lock so that the replica sees the operations in the local store's order.
            var position = _inner.Append(operation);
            if (clientId is not null)
            {
                _queue.Writer.TryWrite(new Entry(position, clientId, operation, TakeOver: false));
                Volatile.Write(ref _lastQueued, position);
            }
            return position;
        }
    }

    /// <summary>The next operations of <paramref name="clientId"/> (a session moved here from another node, written by
    /// the engine as it imports it) replace the client's replica whoever wrote it last: this node takes it over.</summary>
    public void TakeOver(string clientId)
    {
        lock (_order)
        {
            _queue.Writer.TryWrite(new Entry(0, clientId, null, TakeOver: true));
        }
    }

    /// <summary>The session of <paramref name="clientId"/> moves to another node: completes once every operation of it
    /// queued so far is in the replica; nothing more is written for it (until it comes back: <see cref="TakeOver"/>).</summary>
    public Task ReleaseAsync(string clientId)
    {
        var released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_order)
        {
            _queue.Writer.TryWrite(new Entry(0, clientId, null, TakeOver: false, released));
        }
        return released.Task;
    }

    public async ValueTask WaitCommittedAsync(long position)
    {
        await _inner.WaitCommittedAsync(position).ConfigureAwait(false);
        var target = Math.Min(position, Volatile.Read(ref _lastQueued));
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_waitersLock)
        {
            if (target <= Volatile.Read(ref _confirmed))
            {
                ThrowIfRejected(position);
                return;
            }
            _waiters.Add((target, done));
        }
        try
        {
            await done.Task.WaitAsync(_timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new StoreUnavailableException($"the cluster's session replica did not confirm within {_timeout.TotalSeconds:0.#} s (NATS unavailable?)");
        }
    }

    private void ThrowIfRejected(long position)
    {
        foreach (var (from, to) in _rejected)
        {
            if (position >= from && position <= to)
            {
                throw Moved();
            }
        }
    }

    private static StoreUnavailableException Moved() =>
        new("a message was queued for a session that another node took over meanwhile; not acknowledged, so that it is sent again");

    /// <summary>A session as the replica holds it (for a node that takes over the client of a node that is gone):
    /// null when there is none; the node that wrote it last.</summary>
    public static async Task<(StoredSessionState? Session, string? Owner)> ReadAsync(INatsJSContext js, string clientId, CancellationToken cancellationToken)
    {
        var stream = new ReplicaStream(js, "reader", 1);
        var (entries, owner, _) = await stream.ReadAsync(clientId, cancellationToken).ConfigureAwait(false);
        var state = new ReplicaState(keepMessages: true);
        foreach (var entry in entries)
        {
            if (!ReplicaCodec.TryDecode(entry, out _, out var rollup, out var operations))
            {
                throw new InvalidDataException($"an entry of the session replica of client '{clientId}' does not decode");
            }
            if (rollup)
            {
                state.Reset();
            }
            foreach (var operation in operations!)
            {
                state.Apply(operation);
            }
        }
        return (state.ToStored(), owner);
    }

    /// <summary>Creates the stream and writes queued operations until the node stops.</summary>
    public async Task RunAsync(INatsJSContext js, int replicas, CancellationToken cancellationToken)
    {
        var stream = new ReplicaStream(js, _nodeId, replicas);
        await ClusterRetry.RunAsync(_logger, "session replica set-up", () => stream.EnsureAsync(cancellationToken), cancellationToken).ConfigureAwait(false);
        var batch = new List<Entry>();
        var byClient = new Dictionary<string, List<StoreOperation>>(StringComparer.Ordinal);
        while (await _queue.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            batch.Clear();
            byClient.Clear();
            long highest = 0, lowest = 0;
            while (batch.Count < 4096 && _queue.Reader.TryRead(out var entry))
            {
                batch.Add(entry);
            }
            var rejected = false;
            foreach (var entry in batch)
            {
                var client = Client(entry.ClientId);
                if (entry.Released is not null || entry.TakeOver)
                {
                    // The client's operations queued before the mark go out first, then the mark applies.
                    if (byClient.Remove(entry.ClientId, out var before))
                    {
                        rejected |= await WriteAsync(stream, entry.ClientId, client, before, cancellationToken).ConfigureAwait(false);
                    }
                    if (entry.Released is { } released)
                    {
                        client.Fenced = true;
                        client.State.Reset();
                        client.LastSequence = null;
                        released.TrySetResult();
                    }
                    else
                    {
                        client.TakeOver = true;
                        client.Fenced = false;
                    }
                    continue;
                }
                highest = entry.Position;
                lowest = lowest == 0 ? entry.Position : lowest;
                if (!byClient.TryGetValue(entry.ClientId, out var operations))
                {
                    byClient[entry.ClientId] = operations = [];
                }
                operations.Add(entry.Operation!);
            }
            // One entry per client, all clients at once.
            var written = await Task.WhenAll(byClient.Select(c => WriteAsync(stream, c.Key, Client(c.Key), c.Value, cancellationToken))).ConfigureAwait(false);
            rejected |= written.Contains(true);
            if (highest > 0)
            {
                Confirm(lowest, highest, rejected);
            }
        }
    }

    private ClientReplica Client(string clientId)
    {
        lock (_clients)
        {
            if (!_clients.TryGetValue(clientId, out var client))
            {
                _clients[clientId] = client = new ClientReplica();
            }
            return client;
        }
    }

    /// <summary>Writes one client's operations of a batch as one entry; retried until stored or fenced. True when the
    /// client is fenced and the operations queued messages for it: those must not be acknowledged (the publisher sends
    /// them again, and they reach the node that holds the session now).</summary>
    private async Task<bool> WriteAsync(ReplicaStream stream, string clientId, ClientReplica client, List<StoreOperation> operations,
        CancellationToken cancellationToken)
    {
        var queuesMessages = operations.Exists(static o => o is MessageQueued);
        if (client.Fenced)
        {
            return queuesMessages;
        }
        var forced = client.TakeOver;
        if (forced)
        {
            client.State.Reset();
            client.Complete = true;
        }
        else if (client.State.Session is null && client.State.SinceRollup == 0 && operations[0] is SessionSaved)
        {
            // A session new in this run: everything about it passes here.
            client.Complete = true;
        }
        foreach (var operation in operations)
        {
            client.State.Apply(operation);
        }
        // Whole (a rollup) when the session ended (a small tombstone), or when nothing is queued any more and the history
        // grew (the session row and its subscriptions; only when this node knows the whole session).
        var ended = client.State.Session is null && operations.Exists(static o => o is SessionDeleted);
        var compact = client.Complete && client.State.Session is not null && client.State.LiveMessages == 0 && client.State.SinceRollup > RollupAfter;
        var messageId = stream.NextMessageId();
        var failingSince = DateTime.UtcNow;
        ulong claim = 0;
        while (true)
        {
            try
            {
                var claiming = forced;
                if (client.LastSequence is null)
                {
                    // First write in this run, or another node wrote since: who may write is decided by the claims.
                    var (last, owner, lastClaim) = await stream.LastAsync(clientId, cancellationToken).ConfigureAwait(false);
                    claim = ClaimOf is null ? 0 : await ClaimOf(clientId, cancellationToken).ConfigureAwait(false);
                    if (owner is not null && owner != _nodeId && !forced)
                    {
                        if (claim <= lastClaim)
                        {
                            Fence(clientId, client, owner);
                            return queuesMessages;
                        }
                        // This node holds the client's later connection: its session replaces the other node's.
                        claiming = true;
                    }
                    client.LastSequence = last;
                }
                // Taking over: the whole session when this node knows it (else its changes on top of the other's).
                var whole = claiming && (forced || (client.Complete && client.State.LiveMessages == 0));
                var rollup = whole || ended || compact;
                var entry = ReplicaCodec.Encode(clientId, rollup,
                    forced ? operations : ended ? [] : whole || compact ? client.State.ToOperations() : operations);
                var stored = await stream.PublishAsync(clientId, entry, rollup, client.LastSequence!.Value, claim, messageId, cancellationToken)
                    .ConfigureAwait(false);
                if (stored is { } sequence)
                {
                    client.LastSequence = sequence;
                    client.TakeOver = false;
                    if (rollup)
                    {
                        client.State.SinceRollup = 0;
                    }
                    if (ended)
                    {
                        lock (_clients)
                        {
                            _clients.Remove(clientId);
                        }
                    }
                    _failing = false;
                    return false;
                }
                // The subject moved on (another node wrote): decide again from its last entry.
                client.LastSequence = null;
                messageId = stream.NextMessageId();
            }
            catch (Exception ex) when (ex is NatsException or TimeoutException)
            {
                if (!_failing || DateTime.UtcNow - failingSince > TimeSpan.FromSeconds(10))
                {
                    _logger.OperationFailed("session replica write", ex.Message);
                    failingSince = DateTime.UtcNow;
                }
                _failing = true;
                await Task.Delay(s_retryPause, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private void Fence(string clientId, ClientReplica client, string? owner)
    {
        client.Fenced = true;
        client.State.Reset();
        client.LastSequence = null;
        Interlocked.Increment(ref _fenced);
        _logger.ReplicaFenced(clientId, owner ?? "another node");
        Fenced?.Invoke(clientId);
    }

    private void Confirm(long from, long position, bool rejected)
    {
        lock (_waitersLock)
        {
            if (rejected)
            {
                _rejected.Enqueue((from, position));
                if (_rejected.Count > 32)
                {
                    _rejected.Dequeue();
                }
            }
            Volatile.Write(ref _confirmed, position);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                var target = _waiters[i].Position;
                if (target <= position)
                {
                    // Conservative: every acknowledgement waiting on the batch fails, not only the moved session's.
                    if (rejected && target >= from)
                    {
                        _waiters[i].Done.TrySetException(Moved());
                    }
                    else
                    {
                        _waiters[i].Done.TrySetResult();
                    }
                    _waiters.RemoveAt(i);
                }
            }
        }
    }

    public ValueTask DisposeAsync() => _inner.DisposeAsync();

    private readonly record struct Entry(long Position, string ClientId, StoreOperation? Operation, bool TakeOver,
        TaskCompletionSource? Released = null);

    private sealed class ClientReplica
    {
        public ReplicaState State { get; } = new(keepMessages: false);

        /// <summary>The fencing token: the subject's sequence this node wrote last (null: not known yet).</summary>
        public ulong? LastSequence { get; set; }

        public bool TakeOver { get; set; }

        public bool Fenced { get; set; }

        /// <summary>This node knows the whole session (restored at start, new in this run, or taken over).</summary>
        public bool Complete { get; set; }
    }
}
