namespace OmniBroker.Mqtt.Abstractions;

/// <summary>
/// Durable state of the engine, as the engine needs it (it does not know how it is stored). The engine reports every
/// change of persistent state as a <see cref="StoreOperation"/> through <see cref="Append"/>, in the order the changes
/// happen; the store writes them in that order, batched (group commit). A QoS 1/2 acknowledgement waits for
/// <see cref="WaitCommittedAsync"/> of the last operation its message caused (strict durability).
/// Only persistent sessions (Session Expiry Interval &gt; 0) are written; QoS 0 messages never are.
/// Implemented in Broker.Storage (SQLite); without a store (Storage:Mode=memory) the engine keeps state in memory only.
/// </summary>
public interface ISessionStore : IAsyncDisposable
{
    /// <summary>Whether acknowledgements wait for the commit (strict) or not (relaxed).</summary>
    StoreDurability Durability { get; }

    /// <summary>False while writes fail (disk full, I/O error): the engine refuses new QoS 1/2 messages
    /// (5.0: reason code 0x97) instead of acknowledging what cannot be stored.</summary>
    bool IsWritable { get; }

    /// <summary>Everything persisted, read once at start-up, before any connection is accepted.</summary>
    Task<StoredState> LoadAsync(CancellationToken cancellationToken);

    /// <summary>Queues a change for the next commit and returns its position (increasing). Cheap and thread-safe;
    /// called with engine locks held, so it never blocks on I/O.</summary>
    long Append(StoreOperation operation);

    /// <summary>Completes once every operation up to <paramref name="position"/> is committed; throws
    /// <see cref="StoreUnavailableException"/> when the batch holding it could not be written.</summary>
    ValueTask WaitCommittedAsync(long position);
}

public enum StoreDurability
{
    /// <summary>PUBACK/PUBREC only after the commit that holds the message.</summary>
    Strict,

    /// <summary>Acknowledge at once; commit within a bounded interval (the documented loss window).</summary>
    Relaxed,
}

/// <summary>The store could not write (disk full, I/O error); the change is kept and retried.</summary>
public sealed class StoreUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>An application message as persisted (queued for a client, retained, or a will).</summary>
public sealed record StoredMessage(
    string Topic,
    byte[] Payload,
    byte Qos,
    bool Retain,
    string? PublisherClientId,
    DateTimeOffset? ExpiresAt,
    byte? PayloadFormatIndicator = null,
    string? ContentType = null,
    string? ResponseTopic = null,
    byte[]? CorrelationData = null,
    IReadOnlyList<KeyValuePair<string, string>>? UserProperties = null);

/// <summary>A persistent session. <see cref="ExpiresAt"/> is null while a connection is attached (the session then
/// expires <see cref="ExpiryInterval"/> seconds after the broker was last seen alive, if it stopped meanwhile).
/// <see cref="CertificateChainPem"/> (leaf first) lets a restored session be re-authorized against the current policy
/// and revocation state.</summary>
public sealed record StoredSession(
    string ClientId,
    uint ExpiryInterval,
    DateTimeOffset? ExpiresAt,
    byte ProtocolVersion,
    string? UserName,
    string? CertificateChainPem,
    ushort LastPacketId);

public sealed record StoredSubscription(string Filter, byte MaximumQos, bool NoLocal, bool RetainAsPublished, byte RetainHandling,
    uint SubscriptionId);

public enum StoredMessageState : byte
{
    Queued = 0,
    AwaitingPubAck = 1,
    AwaitingPubRec = 2,
    AwaitingPubComp = 3,
}

/// <summary>An outbound QoS 1/2 message of a session: queued, or in flight with its packet identifier.
/// <see cref="Message"/> is null once PUBREC released it (only PUBREL is still due).</summary>
public sealed record StoredQueuedMessage(long Sequence, StoredMessage? Message, byte Qos, bool Retain, uint[]? SubscriptionIds,
    StoredMessageState State, ushort PacketId);

public sealed record StoredWill(StoredMessage Message, uint DelaySeconds, DateTimeOffset? DueAt);

public sealed record StoredSessionState(
    StoredSession Session,
    IReadOnlyList<StoredSubscription> Subscriptions,
    IReadOnlyList<StoredQueuedMessage> Messages,
    IReadOnlyList<ushort> InboundQos2,
    StoredWill? Will);

/// <summary>What <see cref="ISessionStore.LoadAsync"/> found. <see cref="LastAlive"/>: when the broker that wrote the
/// store was last known to run (for the expiry of sessions that were connected when it stopped).</summary>
public sealed record StoredState(IReadOnlyList<StoredSessionState> Sessions, IReadOnlyList<StoredMessage> Retained, DateTimeOffset? LastAlive);

/// <summary>One change of persistent state, in engine order.</summary>
public abstract record StoreOperation;

/// <summary>Insert or replace the session row (its subscriptions and messages are kept).</summary>
public sealed record SessionSaved(StoredSession Session) : StoreOperation;

/// <summary>The session ended: its row and everything it owns (subscriptions, messages, will) go.</summary>
public sealed record SessionDeleted(string ClientId) : StoreOperation;

public sealed record SubscriptionSaved(string ClientId, StoredSubscription Subscription) : StoreOperation;

public sealed record SubscriptionDeleted(string ClientId, string Filter) : StoreOperation;

/// <summary>A QoS 1/2 message queued for a client (state Queued).</summary>
public sealed record MessageQueued(string ClientId, long Sequence, StoredMessage Message, byte Qos, bool Retain, uint[]? SubscriptionIds)
    : StoreOperation;

/// <summary>A queued message was sent (packet identifier assigned) or moved on in its QoS 2 flow. With
/// <see cref="StoredMessageState.AwaitingPubComp"/> the payload may be dropped.</summary>
public sealed record MessageStateChanged(string ClientId, long Sequence, StoredMessageState State, ushort PacketId) : StoreOperation;

/// <summary>PUBACK, PUBCOMP, expiry or drop: the message is done for this client.</summary>
public sealed record MessageDeleted(string ClientId, long Sequence) : StoreOperation;

/// <summary>Inbound QoS 2 packet identifier held until PUBREL (the message itself was already routed).</summary>
public sealed record InboundQos2Saved(string ClientId, ushort PacketId) : StoreOperation;

public sealed record InboundQos2Deleted(string ClientId, ushort PacketId) : StoreOperation;

public sealed record RetainedSaved(StoredMessage Message) : StoreOperation;

public sealed record RetainedDeleted(string Topic) : StoreOperation;

/// <summary>A will waiting for its Will Delay Interval (or the end of the session).</summary>
public sealed record WillSaved(string ClientId, StoredWill Will) : StoreOperation;

public sealed record WillDeleted(string ClientId) : StoreOperation;

/// <summary>Re-checks, at start-up, the certificate of a restored session (chain and revocation, as at a TLS
/// handshake). Implemented by the host with Broker.Auth; without one restored sessions are only re-authorized
/// against the policy.</summary>
public interface IRestoredIdentityValidator
{
    /// <summary>Null when the chain is still valid and not revoked, else the reason it is not.</summary>
    ValueTask<string?> ValidateAsync(IReadOnlyList<System.Security.Cryptography.X509Certificates.X509Certificate2> chain,
        CancellationToken cancellationToken);
}
