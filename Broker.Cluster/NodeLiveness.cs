using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using NATS.Client.KeyValueStore;
using OmniBroker.Mqtt.Engine;

namespace OmniBroker.Cluster;

/// <summary>
/// Which nodes are alive, and the wills of their clients. Every node writes a heartbeat (its key in the nodes bucket)
/// four times per node timeout and follows everyone's; a node not heard of for the node timeout is dead: it is no
/// longer a forwarding target (its routes are removed) and the survivors publish the wills its connected clients had
/// registered in the wills bucket (key <c>{node}.{incarnation}.{n}</c>). Exactly one survivor publishes each will: it
/// is the one whose delete of the key, conditional on the revision it read, succeeds (compare-and-set).
/// A node starting again publishes what its previous run left in the same way: those clients are gone too.
/// A node judges others only while it sees its own heartbeats come back through its watch, and only after seeing them
/// for a whole node timeout: a node cut off from NATS must not take the silence for the others' death.
/// </summary>
internal sealed class NodeLiveness(ClusterOptions options, MqttBroker broker, ILogger logger, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, Peer> _peers = new(StringComparer.Ordinal);
    private readonly Channel<(string Key, byte[]? Will)> _wills = Channel.CreateUnbounded<(string, byte[]?)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly string _incarnation = Guid.NewGuid().ToString("N")[..12];
    private readonly Channel<string> _dead = Channel.CreateUnbounded<string>();
    private long _willSequence;
    private long _selfSeen;
    private long _healthySince;

    public bool IsAlive(string nodeId) => _peers.TryGetValue(nodeId, out var peer) && !peer.Dead;

    public int AliveCount => _peers.Values.Count(p => !p.Dead);

    /// <summary>Registers a will for publication by the survivors; disposing withdraws it.</summary>
    /// <summary>Whether a client is still to get its delayed will when due (not connected anywhere, its session not
    /// taken over by another node); set by the node.</summary>
    public Func<string, string, CancellationToken, Task<bool>>? DelayedWillStillDue { get; set; }

    /// <summary>A delayed will (an offline session's, due at <paramref name="dueAt"/>): the value is marked 0xFF, then
    /// the due time in Unix milliseconds, then the message.</summary>
    public IDisposable RegisterDelayedWill(byte[] will, DateTimeOffset dueAt)
    {
        var value = new byte[9 + will.Length];
        value[0] = DelayedMarker;
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(value.AsSpan(1), dueAt.ToUnixTimeMilliseconds());
        will.CopyTo(value, 9);
        return RegisterWill(value);
    }

    private const byte DelayedMarker = 0xFF;

    public IDisposable RegisterWill(byte[] will)
    {
        var key = options.NodeId + "." + _incarnation + "." + Interlocked.Increment(ref _willSequence).ToString(CultureInfo.InvariantCulture);
        _wills.Writer.TryWrite((key, will));
        return new Registration(this, key);
    }

    public async Task RunHeartbeatAsync(INatsKVStore nodes, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(options.HeartbeatInterval, time);
        var value = Encoding.UTF8.GetBytes(_incarnation);
        do
        {
            await ClusterRetry.RunAsync(logger, "heartbeat", () => nodes.PutAsync(options.NodeId, value, cancellationToken: cancellationToken).AsTask(),
                cancellationToken).ConfigureAwait(false);
        }
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false));
    }

    public Task RunWatchAsync(INatsKVStore nodes, Func<CancellationToken> restart, CancellationToken cancellationToken) =>
        ClusterRetry.WatchAsync(logger, "node watch", async token =>
        {
            await foreach (var entry in nodes.WatchAsync<byte[]>(">", cancellationToken: token).ConfigureAwait(false))
            {
                if (entry.Operation != NatsKVOperation.Put)
                {
                    continue;
                }
                if (entry.Key == options.NodeId)
                {
                    SelfSeen();
                    continue;
                }
                // A heartbeat older than the timeout (read at start-up) does not make its node alive.
                var age = DateTimeOffset.UtcNow - entry.Created;
                if (age > options.NodeTimeout)
                {
                    continue;
                }
                var peer = _peers.GetOrAdd(entry.Key, _ => new Peer());
                peer.LastSeen = time.GetTimestamp() - (long)(Math.Max(0, age.TotalSeconds) * time.TimestampFrequency);
                if (peer.Dead)
                {
                    peer.Dead = false;
                    logger.NodeAlive(entry.Key);
                }
            }
        }, restart, cancellationToken);

    /// <summary>Our own heartbeat came back: we are connected; healthy again after a gap of two heartbeats.</summary>
    private void SelfSeen()
    {
        var now = time.GetTimestamp();
        var previous = Interlocked.Exchange(ref _selfSeen, now);
        if (previous == 0 || time.GetElapsedTime(previous, now) > options.HeartbeatInterval * 2)
        {
            Interlocked.Exchange(ref _healthySince, now);
        }
    }

    private bool CanJudge()
    {
        var selfSeen = Interlocked.Read(ref _selfSeen);
        return selfSeen != 0 && time.GetElapsedTime(selfSeen) <= options.HeartbeatInterval * 2
            && time.GetElapsedTime(Interlocked.Read(ref _healthySince)) >= options.NodeTimeout;
    }

    /// <summary>Declares dead the nodes silent for the node timeout.</summary>
    public async Task RunCheckAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(options.HeartbeatInterval / 2, time);
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
        {
            if (!CanJudge())
            {
                continue;
            }
            foreach (var (nodeId, peer) in _peers)
            {
                if (!peer.Dead && time.GetElapsedTime(peer.LastSeen) > options.NodeTimeout)
                {
                    peer.Dead = true;
                    logger.NodeDead(nodeId, options.NodeTimeout);
                    _dead.Writer.TryWrite(nodeId);
                }
            }
        }
    }

    /// <summary>Writes this node's will registrations in order; publishes the wills of dead nodes (and of this node's
    /// previous run, first).</summary>
    public async Task RunWillsAsync(INatsKVStore wills, CancellationToken cancellationToken)
    {
        await TakeOverAsync(wills, options.NodeId, cancellationToken).ConfigureAwait(false);
        var takeovers = TakeOverDeadAsync(wills, cancellationToken);
        await foreach (var (key, will) in _wills.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            await ClusterRetry.RunAsync(logger, "will write", () => will is null
                ? wills.PurgeAsync(key, cancellationToken: cancellationToken).AsTask()
                : wills.PutAsync(key, will, cancellationToken: cancellationToken).AsTask(), cancellationToken).ConfigureAwait(false);
        }
        await takeovers.ConfigureAwait(false);
    }

    private async Task TakeOverDeadAsync(INatsKVStore wills, CancellationToken cancellationToken)
    {
        await foreach (var nodeId in _dead.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            await TakeOverAsync(wills, nodeId, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task TakeOverAsync(INatsKVStore wills, string nodeId, CancellationToken cancellationToken)
    {
        var keys = new List<string>();
        await ClusterRetry.RunAsync(logger, "will takeover", async () =>
        {
            keys.Clear();
            await foreach (var key in wills.GetKeysAsync([nodeId + ".>"], cancellationToken: cancellationToken).ConfigureAwait(false))
            {
                keys.Add(key);
            }
        }, cancellationToken).ConfigureAwait(false);
        foreach (var key in keys)
        {
            if (nodeId == options.NodeId && key.StartsWith(options.NodeId + "." + _incarnation + ".", StringComparison.Ordinal))
            {
                continue;
            }
            var entry = await wills.TryGetEntryAsync<byte[]>(key, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (!entry.Success || entry.Value.Value is not { } data)
            {
                continue;
            }
            // Compare-and-set: only the survivor whose delete sees the revision it read publishes the will.
            var deleted = await wills.TryDeleteAsync(key, new NatsKVDeleteOpts { Revision = entry.Value.Revision }, cancellationToken)
                .ConfigureAwait(false);
            if (!deleted.Success)
            {
                continue;
            }
            DateTimeOffset? due = null;
            if (data.Length > 9 && data[0] == DelayedMarker)
            {
                due = DateTimeOffset.FromUnixTimeMilliseconds(System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan(1)));
                data = data[9..];
                if (nodeId == options.NodeId)
                {
                    // This node's previous run: its restored session holds the delayed will and registers it again.
                    continue;
                }
            }
            if (MessageCodec.TryDecode(data, out var will))
            {
                if (due is { } at)
                {
                    _ = PublishWhenDueAsync(will!, at, nodeId, cancellationToken);
                    continue;
                }
                broker.PublishFromCluster(will!);
                logger.WillTakenOver(will!.PublisherClientId ?? "?", nodeId, will.Topic);
            }
            else
            {
                logger.Undecodable("wills bucket");
            }
        }
    }

    /// <summary>A dead node's delayed will: published by this survivor (the one whose delete won) when due, unless the
    /// client connected again meanwhile or its session moved to another node, which then owns the will.</summary>
    private async Task PublishWhenDueAsync(Mqtt.Abstractions.StoredMessage will, DateTimeOffset due, string deadNode, CancellationToken cancellationToken)
    {
        var wait = due - time.GetUtcNow();
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, time, cancellationToken).ConfigureAwait(false);
        }
        var clientId = will.PublisherClientId ?? "";
        if (DelayedWillStillDue is { } stillDue && !await stillDue(clientId, deadNode, cancellationToken).ConfigureAwait(false))
        {
            logger.DelayedWillCancelled(clientId, deadNode);
            return;
        }
        broker.PublishFromCluster(will);
        logger.WillTakenOver(clientId, deadNode, will.Topic);
    }

    private sealed class Peer
    {
        private long _lastSeen;

        public long LastSeen
        {
            get => Interlocked.Read(ref _lastSeen);
            set => Interlocked.Exchange(ref _lastSeen, value);
        }

        public volatile bool Dead;
    }

    private sealed class Registration(NodeLiveness owner, string key) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner._wills.Writer.TryWrite((key, null));
            }
        }
    }
}
