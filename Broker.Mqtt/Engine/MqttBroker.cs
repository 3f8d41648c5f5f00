using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Diagnostics;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// The broker shared by all connections: a facade over the <see cref="SessionRegistry"/> (sessions, takeover, expiry,
/// wills; where the <see cref="ISessionStore"/> attaches) and the <see cref="MessageRouter"/> (publish, delivery,
/// shared subscriptions, retained messages). One instance per host (registered by
/// <see cref="MqttBrokerServiceCollectionExtensions.AddMqttBroker"/>); connections reach it through
/// <see cref="MqttConnectionHandler"/>.
/// </summary>
public sealed class MqttBroker : IAsyncDisposable, IMqttStateSource
{
    private readonly ConcurrentDictionary<MqttConnection, byte> _connections = new();
    private readonly SessionRegistry _registry;
    private readonly MessageRouter _router;
    private readonly QueueBudget _budget;
    private readonly ITimer _maintenance;
    private int _disposed;
    private readonly MqttMetrics? _ownedMetrics;

    /// <param name="metrics">The engine's instruments; null: a private set (tests of the engine alone).</param>
    /// <param name="store">Durable state; null keeps everything in memory only (Storage:Mode=memory).</param>
    public MqttBroker(MqttBrokerOptions options, IMqttAuthorizer? authorizer = null, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null,
        MqttMetrics? metrics = null, ISessionStore? store = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        Authorizer = authorizer ?? AllowAllAuthorizer.Instance;
        Logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("OmniBroker.Mqtt.Engine");
        TimeProvider = timeProvider ?? TimeProvider.System;
        _budget = new QueueBudget(options, TimeProvider);
        DropLog = new AggregatedLog(Logger, TimeProvider, options.LogAggregationInterval);
        _ownedMetrics = metrics is null ? new MqttMetrics() : null;
        Metrics = metrics ?? _ownedMetrics!;
        Store = store;
        Limits = new EngineLimits(options, Logger, TimeProvider);
        _router = new MessageRouter(options, Logger, TimeProvider, Metrics, store, DropLog, Limits);
        _registry = new SessionRegistry(options, Logger, TimeProvider, Metrics, _router, store, _budget);
        Metrics.Observe(this);
        Authorizer.PolicyChanged += OnPolicyChanged;
        _maintenance = TimeProvider.CreateTimer(static state => ((MqttBroker)state!).RunMaintenance(), this,
            TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    public MqttBrokerOptions Options { get; }

    /// <summary>Sessions held (connected and offline persistent ones).</summary>
    public long SessionCount => _registry.SessionCount;

    /// <summary>Subscriptions in the index, shared-group members included.</summary>
    public long SubscriptionCount => _router.Subscriptions.Count;

    public long RetainedMessageCount => _router.Retained.Count;

    /// <summary>Messages queued for subscribers beyond their inflight windows.</summary>
    public long QueuedMessageCount => _budget.QueuedMessages;

    /// <summary>Bytes queued for subscribers (bounded by <see cref="MqttBrokerOptions.MaxQueuedBytesTotal"/>).</summary>
    public long QueuedBytes => _budget.QueuedBytes;

    /// <summary>Clients past a successful CONNACK and not yet closing.</summary>
    public int ConnectedClientCount => _connections.Keys.Count(c => c.IsConnected);

    /// <summary>PUBLISH packets accepted from clients (denied ones excluded).</summary>
    public long MessagesReceived => _router.MessagesReceived;

    /// <summary>PUBLISH packets written to subscribers.</summary>
    public long MessagesSent => _router.MessagesSent;

    /// <summary>Messages dropped for any reason (queue full, expired, too large, denied, session ended).</summary>
    public long MessagesDropped => _router.MessagesDropped;

    /// <summary>The durable state store, or null when state is kept in memory only.</summary>
    public ISessionStore? Store { get; }

    /// <summary>Restores the persisted state (before the listeners start): sessions come back offline, re-authorized
    /// against the current policy and, with <paramref name="identityValidator"/>, the current revocation state.</summary>
    public async Task RestoreAsync(IRestoredIdentityValidator? identityValidator, CancellationToken cancellationToken = default)
    {
        if (Store is null)
        {
            return;
        }
        var state = await Store.LoadAsync(cancellationToken).ConfigureAwait(false);
        await _registry.RestoreAsync(state, Authorizer, identityValidator, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The engine's instruments (connections, messages, drops, authorization decisions).</summary>
    public MqttMetrics Metrics { get; }


    /// <summary>Serves PUBLISH on reserved <c>$</c> topics (certificate renewal); null: they are routed like any topic.</summary>
    public IReservedTopicHandler? ReservedTopicHandler { get; set; }

    /// <summary>The other nodes of a cluster (Broker.Cluster); null on a single node. Set before the listeners start.</summary>
    public IClusterLink? Cluster
    {
        get => _router.Cluster;
        set => _router.Cluster = value;
    }

    /// <summary>Delivers a message forwarded by another node to the matching local sessions (never forwarded again).
    /// Completes, like a local publisher's acknowledgement, once every subscriber whose queue it filled has room again
    /// (or, full for the slow-subscriber timeout, is handled as slow): the caller reads its inbox no faster than the
    /// subscribers take, and (strict durability) once the persistent sessions' copies are committed: the caller
    /// acknowledges its inbox after that, so a crash in between has the inbox deliver it again rather than lose it.
    /// Of the matching share groups only <paramref name="sharedGroups"/> receive it (the sending node chose this node
    /// for them; null: all). Returns the number of local recipients.</summary>
    public async ValueTask<int> DeliverFromClusterAsync(StoredMessage message, IReadOnlySet<SharedGroupKey>? sharedGroups,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        var context = new DeliveryContext(publisher: null);
        var delivered = _router.DeliverFromCluster(message, sharedGroups, context, out var position);
        foreach (var session in context.Held)
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var room = session.WaitForRoomAsync();
                if (room.IsCompleted)
                {
                    break;
                }
                var remaining = Options.SlowSubscriberTimeout - session.FullFor();
                if (remaining > TimeSpan.Zero)
                {
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    var delay = Task.Delay(remaining, TimeProvider, timeout.Token);
                    var first = await Task.WhenAny(room, delay).ConfigureAwait(false);
                    await timeout.CancelAsync().ConfigureAwait(false);
                    if (first != delay)
                    {
                        continue;
                    }
                }
                DeclareSlow(session);
            }
        }
        // A full disk does not hold the inbox back: the store keeps the change and retries it (logged there).
        await WaitForUnsentRowsAsync(position).ConfigureAwait(false);
        return delivered;
    }

    /// <summary>Applies the cluster's retained message of a topic (empty payload: cleared) to the local store.</summary>
    public void ApplyClusterRetained(StoredMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        _router.ApplyClusterRetained(message);
    }

    /// <summary>Publishes, as if it had been accepted here, a message this node takes over from a dead node (its clients'
    /// wills): local delivery, retained state and forwarding to the other nodes.</summary>
    public int PublishFromCluster(StoredMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        ToProperties(message, out var properties);
        return _router.Publish(message.Topic, new ReadOnlySequence<byte>(message.Payload), (MqttQos)message.Qos, message.Retain, properties,
            message.PublisherClientId, context: null, out _, out _);
    }

    private void ToProperties(StoredMessage message, out MqttProperties? properties)
    {
        properties = null;
        if (message.PayloadFormatIndicator is null && message.ContentType is null && message.ResponseTopic is null
            && message.CorrelationData is null && message.UserProperties is null && message.ExpiresAt is null)
        {
            return;
        }
        properties = new MqttProperties
        {
            PayloadFormatIndicator = message.PayloadFormatIndicator,
            ContentType = message.ContentType,
            ResponseTopic = message.ResponseTopic,
            CorrelationData = message.CorrelationData,
            MessageExpiryInterval = message.ExpiresAt is { } at
                ? (uint)Math.Max(1, Math.Ceiling((at - TimeProvider.GetUtcNow()).TotalSeconds)) : null,
        };
        if (message.UserProperties is { } user)
        {
            properties.UserProperties = [.. user];
        }
    }

    internal IMqttAuthorizer Authorizer { get; }

    internal ILogger Logger { get; }
    internal TimeProvider TimeProvider { get; }
    internal AggregatedLog DropLog { get; }
    internal SubscriptionIndex Subscriptions => _router.Subscriptions;
    internal RetainedMessageStore Retained => _router.Retained;
    internal SessionRegistry Sessions => _registry;
    internal MessageRouter Router => _router;
    internal EngineLimits Limits { get; }

    public IReadOnlyList<ConnectedClientInfo> GetConnectedClients()
    {
        var result = new List<ConnectedClientInfo>();
        foreach (var connection in _connections.Keys)
        {
            if (connection.IsConnected && connection.ClientId is { } clientId)
            {
                result.Add(new ConnectedClientInfo(clientId, connection.RemoteEndPoint, connection.ProtocolVersion, connection.Certificate,
                    connection.ConnectedAt));
            }
        }
        result.Sort(static (a, b) => string.CompareOrdinal(a.ClientId, b.ClientId));
        return result;
    }

    /// <summary>Disconnects a connected client (5.0: DISCONNECT with <paramref name="reason"/>), keeping its session.</summary>
    public bool DisconnectClient(string clientId, MqttReasonCode reason) => DisconnectClient(clientId, reason, discardSession: false);

    /// <summary>Disconnects a connected client; with <paramref name="discardSession"/> its session is removed as well
    /// (no resumption). Returns false when no such client is connected.</summary>
    public bool DisconnectClient(string clientId, MqttReasonCode reason, bool discardSession)
    {
        var connection = _registry.FindConnection(clientId);
        if (connection is null)
        {
            return false;
        }
        Logger.DisconnectedByServer(clientId, reason);
        connection.RequestClose(reason, discardSession);
        return true;
    }

    /// <summary>
    /// Cluster: a client connects here with Clean Start 0 and has no session here. If another node holds its persistent
    /// session, the session moves here before the CONNECT is handled (which then finds it: session present): its
    /// subscriptions first, then, once the other node let go, its messages and state. Only for a client allowed to
    /// connect with that client id. Nothing happens on a single node.
    /// </summary>
    internal async Task PrepareMovedSessionAsync(MqttClientInfo client, CancellationToken cancellationToken)
    {
        if (Cluster is not { } link || _registry.HasSession(client.ClientId))
        {
            return;
        }
        var decision = Authorizer.AuthorizeConnect(client);
        if (!decision.Allowed || decision.Grants is null)
        {
            return;
        }
        var preview = await link.FindMovedSessionAsync(client.ClientId, cancellationToken).ConfigureAwait(false);
        if (preview is null || _registry.BeginMove(preview, decision.Grants) is not { } session)
        {
            return;
        }
        var final = await link.TakeMovedSessionAsync(client.ClientId, cancellationToken).ConfigureAwait(false);
        _registry.CompleteMove(session, final, decision.Grants);
    }

    /// <summary>Cluster: another node took the session of <paramref name="clientId"/> over. A connection here is closed
    /// (5.0: DISCONNECT 0x8E) and its session discarded; an offline session is removed without its will or messages,
    /// which live on with the other node. Returns false when there is no such session here.</summary>
    public bool DiscardMovedSession(string clientId) =>
        DisconnectClient(clientId, MqttReasonCode.SessionTakenOver, discardSession: true) || _registry.DiscardMoved(clientId);

    /// <summary>Sends DISCONNECT 0x8B (Server shutting down) to every client and waits until they are closed or
    /// <paramref name="cancellationToken"/> fires. Kestrel's own shutdown reaches connections the same way through
    /// IConnectionLifetimeNotificationFeature.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        var connections = _connections.Keys.ToArray();
        if (connections.Length > 0)
        {
            Logger.ShuttingDown(connections.Length);
        }
        foreach (var connection in connections)
        {
            connection.RequestClose(MqttReasonCode.ServerShuttingDown);
        }
        // Bounded by the caller's token; connections close within the close-flush timeout anyway.
        while (!_connections.IsEmpty && !cancellationToken.IsCancellationRequested)
        {
            try
            {
                // Real time on purpose: a test clock must not stall shutdown.
                await Task.Delay(TimeSpan.FromMilliseconds(20), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        Authorizer.PolicyChanged -= OnPolicyChanged;
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            await StopAsync(cts.Token).ConfigureAwait(false);
        }
        await _maintenance.DisposeAsync().ConfigureAwait(false);
        _ownedMetrics?.Dispose();
    }

    // ------------------------------------------------------------------ connections (forwarded to registry and router)

    internal void Register(MqttConnection connection) => _connections.TryAdd(connection, 0);

    internal void Unregister(MqttConnection connection) => _connections.TryRemove(connection, out _);

    internal void CountSent() => _router.CountSent();

    internal void CountDropped(int count = 1) => _router.CountDropped(count);

    /// <summary>False while the store cannot write: new QoS 1/2 messages are refused rather than acknowledged.</summary>
    internal bool CanStoreDurably => Store is not { IsWritable: false };

    /// <summary>Whether an acknowledgement has to wait for the commit of <paramref name="position"/> (strict durability).</summary>
    internal bool MustWaitForCommit(long position) => position > 0 && Store is { Durability: StoreDurability.Strict };

    /// <summary>Strict: waits until the rows of retained messages about to be sent are committed. A store that cannot
    /// write (full disk) does not hold them back: they are sent as without a store, and their rows stay pending.</summary>
    internal async ValueTask WaitForUnsentRowsAsync(long position)
    {
        if (!MustWaitForCommit(position))
        {
            return;
        }
        try
        {
            // Yielding: the connection's writer goes on in the thread pool, not on the store's thread that completed the commit.
            await Store!.WaitCommittedAsync(position).AsTask().ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
        }
        catch (StoreUnavailableException)
        {
            // Logged by the store (event 1451); delivery goes on.
        }
    }

    /// <summary>Counts, meters and logs (aggregated) <paramref name="count"/> dropped messages of a client.</summary>
    internal void RecordDrop(string clientId, string reason, string? topic, int count = 1) => _router.RecordDrop(clientId, reason, topic, count);

    /// <summary>A publisher waited for <paramref name="session"/> for the slow-subscriber timeout: declares it slow
    /// (if its queue is still full) and applies <see cref="MqttBrokerOptions.SlowSubscriberPolicy"/>.</summary>
    internal void DeclareSlow(MqttSession session) => _registry.DeclareSlow(session);

    internal (MqttSession Session, bool SessionPresent) AttachSession(MqttConnection connection, string clientId, bool cleanStart,
        uint expiryInterval, IClientGrants grants) => _registry.AttachSession(connection, clientId, cleanStart, expiryInterval, grants);

    internal void OnConnectionClosed(MqttConnection connection, WillState? will, bool discardSession) =>
        _registry.OnConnectionClosed(connection, will, discardSession);

    internal void SetSessionExpiry(MqttSession session, uint expiryInterval) => _registry.SetSessionExpiry(session, expiryInterval);

    internal bool AddSubscription(MqttSession session, Subscription subscription) => _registry.AddSubscription(session, subscription);

    internal bool RemoveSubscription(MqttSession session, string filter) => _registry.RemoveSubscription(session, filter);

    internal int RevalidateSubscriptions(MqttSession session, IClientGrants grants) => _registry.RevalidateSubscriptions(session, grants);

    internal void DeliverRetained(Subscription subscription) => _router.DeliverRetained(subscription);

    internal int Publish(string topic, in ReadOnlySequence<byte> payload, MqttQos qos, bool retain, MqttProperties? properties,
        string? publisherClientId, DeliveryContext? context = null) =>
        _router.Publish(topic, payload, qos, retain, properties, publisherClientId, context, out _, out _);

    /// <summary>Routes a client's PUBLISH. <paramref name="retainRefused"/>: delivered but, over a retained limit, not
    /// retained; <paramref name="commitPosition"/>: the store position the acknowledgement must wait for (0: none).</summary>
    internal int Publish(string topic, in ReadOnlySequence<byte> payload, MqttQos qos, bool retain, MqttProperties? properties,
        string? publisherClientId, DeliveryContext? context, out bool retainRefused, out long commitPosition) =>
        _router.Publish(topic, payload, qos, retain, properties, publisherClientId, context, out retainRefused, out commitPosition);

    internal void RunMaintenance()
    {
        DropLog.Flush();
        _registry.RunMaintenance();
    }

    /// <summary>Re-resolves the grants of every connected client against the new policy; clients no longer allowed
    /// are disconnected (5.0: 0x87), subscriptions no longer allowed are removed.</summary>
    private void OnPolicyChanged()
    {
        int clients = 0, disconnected = 0, removed = 0;
        foreach (var connection in _connections.Keys)
        {
            if (!connection.IsConnected || connection.ClientInfo is not { } info || connection.Session is not { } session)
            {
                continue;
            }
            clients++;
            var decision = Authorizer.AuthorizeConnect(info);
            if (!decision.Allowed || decision.Grants is null)
            {
                Logger.ReauthorizationDenied(info.ClientId, decision.Reason);
                connection.RequestClose(MqttReasonCode.NotAuthorized);
                disconnected++;
                continue;
            }
            connection.UpdateGrants(decision.Grants);
            removed += RevalidateSubscriptions(session, decision.Grants);
        }
        Logger.PolicyReapplied(clients, disconnected, removed);
    }
}
