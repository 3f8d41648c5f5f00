using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.KeyValueStore;
using NATS.Net;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Engine;

namespace OmniBroker.Cluster;

/// <summary>
/// One OmniBroker node of a cluster coordinated through NATS JetStream (docs/cluster.md): the engine's
/// <see cref="IClusterLink"/>. Routing: <see cref="InterestTable"/> (who subscribes to what), <see cref="Forwarder"/>
/// (to the inboxes of those nodes) and <see cref="InboxConsumer"/> (this node's inbox); <see cref="RetainedSync"/>
/// (retained messages); <see cref="NodeLiveness"/> (heartbeats, dead nodes, their clients' wills).
/// </summary>
public sealed class ClusterNode : IClusterLink, IAsyncDisposable
{
    [ThreadStatic]
    private static List<string>? t_targets;
    [ThreadStatic]
    private static List<(SharedGroupKey, string)>? t_remoteGroups;
    [ThreadStatic]
    private static Dictionary<string, List<SharedGroupKey>>? t_assigned;

    private readonly ClusterOptions _options;
    private readonly MqttBroker _broker;
    private readonly ILogger _logger;
    private readonly InterestTable _interest;
    private readonly Forwarder _forwarder;
    private readonly InboxConsumer _inbox;
    private readonly InboxWatch _inboxWatch;
    private readonly ClientOwnership _ownership;
    private readonly RetainedSync _retained;
    private readonly NodeLiveness _liveness;
    private readonly ClusterAdmin _admin;
    private INatsKVStore? _clientsBucket;
    private readonly CancellationTokenSource _stopping = new();
    private CancellationTokenSource _resync = new();
    private NatsConnection? _nats;
    private Task _running = Task.CompletedTask;
    private int _connectedOnce;
    private readonly ClusterMetrics _metrics;
    private readonly SharedGroupRouting _sharedGroups = new();

    public ClusterNode(ClusterOptions options, MqttBroker broker, ILoggerFactory loggerFactory, TimeProvider? time = null,
        IMeterFactory? meterFactory = null, Replica.SessionReplica? replica = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(broker);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        time ??= TimeProvider.System;
        _options = options;
        _broker = broker;
        _logger = loggerFactory.CreateLogger("OmniBroker.Cluster");
        _interest = new InterestTable(options.NodeId, _logger);
        _forwarder = new Forwarder(options.NodeId, options.ForwardTimeout, _logger, time);
        _inbox = new InboxConsumer(options, broker, _logger);
        _inboxWatch = new InboxWatch(options, _inbox, _logger, time);
        _ownership = new ClientOwnership(options.NodeId, _logger);
        _retained = new RetainedSync(broker, _logger);
        _liveness = new NodeLiveness(options, broker, _logger, time);
        _admin = new ClusterAdmin(options.NodeId, broker, _logger);
        _metrics = new ClusterMetrics(meterFactory, this);
        _replica = replica;
        if (replica is not null)
        {
            // Another node took the session over (its replica moved on): the session here is stale, it goes.
            replica.Fenced = clientId => broker.DiscardMovedSession(clientId);
            replica.ClaimOf = _ownership.CurrentClaimAsync;
            // Bounded: a device waits for its CONNACK meanwhile.
            _moves = new SessionMoves(options.NodeId, broker, replica, _liveness.IsAlive,
                options.ForwardTimeout < TimeSpan.FromSeconds(5) ? options.ForwardTimeout : TimeSpan.FromSeconds(5), _logger);
        }
    }

    private readonly SessionMoves? _moves;

    /// <summary>Persistent sessions that moved here from other nodes, and from here to others.</summary>
    public long SessionsMovedIn => _moves?.Moved ?? 0;

    public long SessionsMovedOut => _moves?.Released ?? 0;

    private readonly Replica.SessionReplica? _replica;

    /// <summary>Sessions of this node taken over elsewhere and fenced here; session replica operations not yet
    /// confirmed (0 without a store).</summary>
    public long SessionsFenced => _replica?.FencedCount ?? 0;

    public long ReplicaLag => _replica?.Lag ?? 0;

    public string NodeId => _options.NodeId;

    /// <summary>Messages handed to other nodes' inboxes, and those that were not confirmed.</summary>
    public long Forwarded => _forwarder.Forwarded;

    public long ForwardsFailed => _forwarder.Failed;

    /// <summary>Messages received from other nodes.</summary>
    public long Received => _inbox.Received;

    /// <summary>Messages in this node's inbox not yet acknowledged by it (-1: unknown), and stalled consumptions
    /// restarted.</summary>
    public long InboxLag => _inboxWatch.Lag;

    public long InboxRestarts => _inboxWatch.Restarts;

    /// <summary>Connections of this node closed because the same client id connected later on another node.</summary>
    public long ClientsTakenOver => _ownership.TakenOver;

    public bool IsConnected => _nats?.ConnectionState == NatsConnectionState.Open;

    /// <summary>Other nodes whose heartbeats this node currently sees.</summary>
    public int OtherNodesAlive => _liveness.AliveCount;

    /// <summary>Attaches to the engine, connects to NATS, creates this node's inbox and the shared buckets, and starts
    /// following them. Before the MQTT listeners start (subscriptions restored from the store are published too).</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _broker.Cluster = this;
        // A wrong CA, client certificate or credentials file stops start-up here rather than retrying forever.
        await NatsConnectionFactory.ProbeAsync(_options, cancellationToken).ConfigureAwait(false);
        var opts = NatsConnectionFactory.Options(_options);
        _nats = new NatsConnection(opts);
        _nats.ConnectionDisconnected += (_, args) =>
        {
            _logger.Disconnected(args.Message);
            return ValueTask.CompletedTask;
        };
        _nats.ConnectionOpened += (_, _) =>
        {
            if (Interlocked.Exchange(ref _connectedOnce, 1) == 1)
            {
                // After a reconnect the watches start again from the buckets' current content (resynchronisation).
                _logger.Reconnected();
                var previous = Interlocked.Exchange(ref _resync, new CancellationTokenSource());
                previous.Cancel();
                previous.Dispose();
            }
            return ValueTask.CompletedTask;
        };
        // The first ConnectionOpened (raised asynchronously, possibly after this returns) only marks the connection as
        // established; later ones are reconnects.
        await _nats.ConnectAsync().ConfigureAwait(false);

        var js = _nats.CreateJetStreamContext();
        _js = js;
        _liveness.DelayedWillStillDue = DelayedWillStillDueAsync;
        var kv = js.CreateKeyValueStoreContext();
        INatsKVStore? interest = null, retained = null, nodes = null, wills = null, clients = null;
        await ClusterRetry.RunAsync(_logger, "set-up", async () =>
        {
            await _inbox.EnsureAsync(js, cancellationToken).ConfigureAwait(false);
            interest = await kv.CreateOrUpdateStoreAsync(Bucket(ClusterNames.InterestBucket), cancellationToken).ConfigureAwait(false);
            retained = await kv.CreateOrUpdateStoreAsync(Bucket(ClusterNames.RetainedBucket), cancellationToken).ConfigureAwait(false);
            nodes = await kv.CreateOrUpdateStoreAsync(Bucket(ClusterNames.NodesBucket) with { MaxAge = _options.NodeTimeout * 3 },
                cancellationToken).ConfigureAwait(false);
            wills = await kv.CreateOrUpdateStoreAsync(Bucket(ClusterNames.WillsBucket), cancellationToken).ConfigureAwait(false);
            clients = await kv.CreateOrUpdateStoreAsync(Bucket(ClusterNames.ClientsBucket), cancellationToken).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);

        _clientsBucket = clients;
        var stop = _stopping.Token;
        _running = Task.WhenAll(
            Run(() => _interest.RunWriterAsync(interest!, stop)),
            Run(() => _interest.RunWatchAsync(interest!, () => _resync.Token, stop)),
            Run(() => _forwarder.RunAsync(_nats, stop)),
            Run(() => _inbox.RunAsync(js, stop)),
            Run(() => _inboxWatch.RunAsync(js, stop)),
            Run(() => _ownership.RunWriterAsync(clients!, stop)),
            Run(() => _ownership.RunWatchAsync(clients!, () => _resync.Token, stop)),
            Run(() => _retained.RunWriterAsync(retained!, stop)),
            Run(() => _retained.RunWatchAsync(retained!, () => _resync.Token, stop)),
            Run(() => _liveness.RunHeartbeatAsync(nodes!, stop)),
            Run(() => _liveness.RunWatchAsync(nodes!, () => _resync.Token, stop)),
            Run(() => _liveness.RunCheckAsync(stop)),
            Run(() => _liveness.RunWillsAsync(wills!, stop)),
            Run(() => _replica?.RunAsync(js, _options.Replicas, stop) ?? Task.CompletedTask),
            Run(() => _moves?.RunAsync(_nats, js, stop) ?? Task.CompletedTask),
            Run(() => _admin.RunResponderAsync(_nats, stop)));
        _logger.Joined(_options.NodeId, _options.Urls, _options.Replicas, _options.NodeTimeout);
    }

    private NatsKVConfig Bucket(string name) => new(name)
    {
        History = 1,
        NumberOfReplicas = _options.Replicas,
        Storage = NatsKVStorageType.File,
    };

    private static Task Run(Func<Task> loop) => Task.Run(async () =>
    {
        try
        {
            await loop().ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The node stops.
        }
    });

    /// <summary>Every client connected anywhere in the cluster, with its node (the <c>omni_clients</c> bucket).</summary>
    public Task<IReadOnlyList<ClusterClient>> ListClientsAsync(CancellationToken cancellationToken) =>
        ClusterAdmin.ListAsync(_clientsBucket ?? throw NotStarted(), cancellationToken);

    /// <summary>Disconnects a client (0x98) on whichever node holds it.</summary>
    public Task<ClusterDisconnectResult> DisconnectClientAsync(string clientId, CancellationToken cancellationToken) =>
        _admin.DisconnectAsync(_nats ?? throw NotStarted(), _clientsBucket ?? throw NotStarted(), clientId, cancellationToken);

    /// <summary>Longest wait for another node's answer to a disconnect request.</summary>
    public static TimeSpan AdminRequestTimeout => ClusterAdmin.RequestTimeout;

    private static InvalidOperationException NotStarted() => new("the cluster node has not started");

    public async Task StopAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _running.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        if (_nats is not null)
        {
            await _nats.DisposeAsync().ConfigureAwait(false);
        }
        _stopping.Dispose();
        _resync.Dispose();
        _metrics.Dispose();
    }

    // ------------------------------------------------------------------ IClusterLink (engine threads: never block)

    int IClusterLink.Forward(StoredMessage message, bool retainedChanged, List<SharedGroupKey> localGroups, out Task<bool>? durable)
    {
        durable = null;
        if (retainedChanged)
        {
            _retained.Changed(message);
        }
        var targets = t_targets ??= [];
        var remoteGroups = t_remoteGroups ??= [];
        var assigned = t_assigned ??= new Dictionary<string, List<SharedGroupKey>>(StringComparer.Ordinal);
        targets.Clear();
        remoteGroups.Clear();
        assigned.Clear();
        _interest.Match(message.Topic, _liveness.IsAlive, targets, remoteGroups);
        _sharedGroups.Choose(remoteGroups, localGroups, assigned);
        foreach (var node in assigned.Keys)
        {
            if (!targets.Contains(node))
            {
                targets.Add(node);
            }
        }
        if (targets.Count == 0)
        {
            return 0;
        }
        // Per target, the share groups it serves; none at all (the common case): no array.
        string[]? shares = null;
        if (assigned.Count > 0)
        {
            shares = new string[targets.Count];
            for (var i = 0; i < shares.Length; i++)
            {
                shares[i] = SharedGroupRouting.Encode(assigned.GetValueOrDefault(targets[i]));
            }
        }
        durable = _forwarder.Enqueue(MessageCodec.Encode(message), [.. targets], shares, confirm: message.Qos > 0);
        return targets.Count;
    }

    void IClusterLink.FilterAdded(string topicFilter, string? shareGroup) => _interest.Changed(topicFilter, shareGroup, added: true);

    void IClusterLink.FilterRemoved(string topicFilter, string? shareGroup) => _interest.Changed(topicFilter, shareGroup, added: false);

    IDisposable IClusterLink.ClientAttached(string clientId, Action takenOver) => _ownership.Attach(clientId, takenOver);

    Task<StoredSessionState?> IClusterLink.FindMovedSessionAsync(string clientId, CancellationToken cancellationToken) =>
        _moves?.FindAsync(clientId, cancellationToken) ?? Task.FromResult<StoredSessionState?>(null);

    Task<StoredSessionState?> IClusterLink.TakeMovedSessionAsync(string clientId, CancellationToken cancellationToken) =>
        _moves?.TakeAsync(clientId, cancellationToken) ?? Task.FromResult<StoredSessionState?>(null);

    IDisposable IClusterLink.RegisterDelayedWill(string clientId, StoredMessage will, DateTimeOffset dueAt) =>
        _liveness.RegisterDelayedWill(MessageCodec.Encode(will), dueAt);

    /// <summary>A dead node's delayed will is still due unless its client is connected somewhere or its session's
    /// replica was written by another node since (the session moved, and that node owns the will now).</summary>
    private async Task<bool> DelayedWillStillDueAsync(string clientId, string deadNode, CancellationToken cancellationToken)
    {
        if (await _ownership.IsClaimedAsync(clientId, cancellationToken).ConfigureAwait(false))
        {
            return false;
        }
        if (_js is { } js && _replica is not null)
        {
            try
            {
                var (_, owner, _) = await new Replica.ReplicaStream(js, NodeId, _options.Replicas).LastAsync(clientId, cancellationToken).ConfigureAwait(false);
                return owner is null || owner == deadNode;
            }
            catch (NatsException ex)
            {
                _logger.OperationFailed("session replica read", ex.Message);
            }
        }
        return true;
    }

    private NATS.Client.JetStream.INatsJSContext? _js;

    IDisposable IClusterLink.RegisterWill(string clientId, StoredMessage will) => _liveness.RegisterWill(MessageCodec.Encode(will));
}
