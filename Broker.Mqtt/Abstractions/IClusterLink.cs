namespace OmniBroker.Mqtt.Abstractions;

/// <summary>
/// The engine's view of a cluster of brokers (implemented in Broker.Cluster on NATS JetStream; absent on a single
/// node). The engine routes every message locally first, then hands it to the link, which forwards it to the other
/// nodes that have a matching subscriber. Messages that arrive from other nodes come back through
/// <see cref="Engine.MqttBroker.DeliverFromClusterAsync"/> (local delivery only, never forwarded again). Every call is made
/// with engine locks held or on a connection's reader: implementations queue work and never block.
/// </summary>
public interface IClusterLink
{
    /// <summary>
    /// A message accepted on this node (from a client, or a will) after local routing. <paramref name="retainedChanged"/>:
    /// the message set (or, empty, cleared) the retained message of its topic. Returns the number of other nodes it is
    /// forwarded to; <paramref name="durable"/> completes with true once every one of them holds it durably (false: it
    /// could not be handed over; the publisher must not be acknowledged), null when nothing is to be waited for.
    /// </summary>
    /// <remarks>
    /// Share groups (5.0 §4.8.2) are cluster-wide: one member of a group gets each message, whichever nodes its members
    /// are on. <paramref name="localGroups"/> holds the groups with members on this node that match the message; the
    /// link chooses, per group with members anywhere, the one node that serves this message, forwards it to the chosen
    /// other nodes for those groups, and leaves in <paramref name="localGroups"/> only the groups this node serves.
    /// </remarks>
    int Forward(StoredMessage message, bool retainedChanged, List<SharedGroupKey> localGroups, out Task<bool>? durable);

    /// <summary>A subscription with this topic filter entered the local index (<paramref name="shareGroup"/>: the group of
    /// a shared subscription, whose filter is given without its <c>$share/{group}/</c> prefix; null otherwise); called
    /// once per subscription, under the index lock, in order with <see cref="FilterRemoved"/>.</summary>
    void FilterAdded(string topicFilter, string? shareGroup);

    /// <summary>A subscription with this topic filter (and share group) left the local index.</summary>
    void FilterRemoved(string topicFilter, string? shareGroup);

    /// <summary>A client connected with a will (allowed by its grants): if this node dies, another publishes it.
    /// Disposing the result withdraws it (the connection closed and the engine took care of the will itself).</summary>
    IDisposable RegisterWill(string clientId, StoredMessage will);

    /// <summary>A client connected on this node with this client id: the node claims the id cluster-wide, and calls
    /// <paramref name="takenOver"/> (from any thread) when a later connection elsewhere claimed it (5.0: DISCONNECT
    /// 0x8E, as a takeover on one node). Disposing the result ends the claim's watch (the connection closed).</summary>
    IDisposable ClientAttached(string clientId, Action takenOver);

    /// <summary>A closed connection's will waits for its Will Delay Interval (until <paramref name="dueAt"/>) in an offline
    /// session here: if this node dies meanwhile, another publishes it when due, unless the client is connected again
    /// by then. Disposing the result withdraws it (published here, cancelled by a reconnect, or the session ended).</summary>
    IDisposable RegisterDelayedWill(string clientId, StoredMessage will, DateTimeOffset dueAt) => NoRegistration.Instance;

    /// <summary>A persistent session of <paramref name="clientId"/> held by another node (a device that moved here
    /// with Clean Start 0), as last replicated: its subscriptions are installed here before the other node lets go, so
    /// that nothing published meanwhile misses it. Null: no other node holds one (a new session). Throws
    /// <see cref="StoreUnavailableException"/> when that cannot be known now (the client is refused: Server unavailable).</summary>
    Task<StoredSessionState?> FindMovedSessionAsync(string clientId, CancellationToken cancellationToken) =>
        Task.FromResult<StoredSessionState?>(null);

    /// <summary>Has the node holding <paramref name="clientId"/>'s session let it go (it closes its connection and
    /// writes nothing more for it) and returns the session as it left it, for this node to take over; null when it
    /// ended meanwhile.</summary>
    Task<StoredSessionState?> TakeMovedSessionAsync(string clientId, CancellationToken cancellationToken) =>
        Task.FromResult<StoredSessionState?>(null);
}

/// <summary>A share group on a topic filter (<c>$share/{Group}/{TopicFilter}</c>): the unit that receives each message
/// once, cluster-wide.</summary>
public readonly record struct SharedGroupKey(string Group, string TopicFilter);

/// <summary>What a link without clustering returns for registrations.</summary>
internal sealed class NoRegistration : IDisposable
{
    public static readonly NoRegistration Instance = new();

    public void Dispose()
    {
    }
}
