using System.Buffers;
using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Cluster.Replica;

/// <summary>
/// The wire form of one client's session changes in the replica stream: a version byte, flags (bit 0: a rollup that
/// replaces everything before it), the client id, then the store operations in engine order. Messages inside use
/// <see cref="MessageCodec"/>. A value that does not decode is reported, never guessed.
/// </summary>
internal static class ReplicaCodec
{
    private const byte Version = 1;

    private enum Kind : byte
    {
        SessionSaved = 1,
        SessionDeleted = 2,
        SubscriptionSaved = 3,
        SubscriptionDeleted = 4,
        MessageQueued = 5,
        MessageStateChanged = 6,
        MessageDeleted = 7,
        InboundQos2Saved = 8,
        InboundQos2Deleted = 9,
        WillSaved = 10,
        WillDeleted = 11,
    }

    /// <summary>The client a per-client operation belongs to; null for the others (retained messages).</summary>
    public static string? ClientOf(StoreOperation operation) => operation switch
    {
        SessionSaved s => s.Session.ClientId,
        SessionDeleted s => s.ClientId,
        SubscriptionSaved s => s.ClientId,
        SubscriptionDeleted s => s.ClientId,
        MessageQueued s => s.ClientId,
        MessageStateChanged s => s.ClientId,
        MessageDeleted s => s.ClientId,
        InboundQos2Saved s => s.ClientId,
        InboundQos2Deleted s => s.ClientId,
        WillSaved s => s.ClientId,
        WillDeleted s => s.ClientId,
        _ => null,
    };

    public static byte[] Encode(string clientId, bool rollup, IReadOnlyList<StoreOperation> operations)
    {
        var w = new ArrayBufferWriter<byte>(256);
        Wire.Byte(w, Version);
        Wire.Byte(w, rollup ? (byte)1 : (byte)0);
        Wire.String(w, clientId);
        Wire.Int(w, operations.Count);
        foreach (var operation in operations)
        {
            switch (operation)
            {
                case SessionSaved s:
                    Wire.Byte(w, (byte)Kind.SessionSaved);
                    Wire.UInt32(w, s.Session.ExpiryInterval);
                    Wire.Int64(w, s.Session.ExpiresAt?.ToUnixTimeMilliseconds() ?? long.MinValue);
                    Wire.Byte(w, s.Session.ProtocolVersion);
                    Wire.String(w, s.Session.UserName);
                    Wire.String(w, s.Session.CertificateChainPem);
                    Wire.UInt16(w, s.Session.LastPacketId);
                    break;
                case SessionDeleted:
                    Wire.Byte(w, (byte)Kind.SessionDeleted);
                    break;
                case SubscriptionSaved s:
                    Wire.Byte(w, (byte)Kind.SubscriptionSaved);
                    Wire.String(w, s.Subscription.Filter);
                    Wire.Byte(w, s.Subscription.MaximumQos);
                    Wire.Byte(w, (byte)((s.Subscription.NoLocal ? 1 : 0) | (s.Subscription.RetainAsPublished ? 2 : 0)));
                    Wire.Byte(w, s.Subscription.RetainHandling);
                    Wire.UInt32(w, s.Subscription.SubscriptionId);
                    break;
                case SubscriptionDeleted s:
                    Wire.Byte(w, (byte)Kind.SubscriptionDeleted);
                    Wire.String(w, s.Filter);
                    break;
                case MessageQueued s:
                    Wire.Byte(w, (byte)Kind.MessageQueued);
                    Wire.Int64(w, s.Sequence);
                    Wire.Bytes(w, MessageCodec.Encode(s.Message));
                    Wire.Byte(w, s.Qos);
                    Wire.Byte(w, s.Retain ? (byte)1 : (byte)0);
                    Wire.Int(w, s.SubscriptionIds?.Length ?? -1);
                    foreach (var id in s.SubscriptionIds ?? [])
                    {
                        Wire.UInt32(w, id);
                    }
                    break;
                case MessageStateChanged s:
                    Wire.Byte(w, (byte)Kind.MessageStateChanged);
                    Wire.Int64(w, s.Sequence);
                    Wire.Byte(w, (byte)s.State);
                    Wire.UInt16(w, s.PacketId);
                    break;
                case MessageDeleted s:
                    Wire.Byte(w, (byte)Kind.MessageDeleted);
                    Wire.Int64(w, s.Sequence);
                    break;
                case InboundQos2Saved s:
                    Wire.Byte(w, (byte)Kind.InboundQos2Saved);
                    Wire.UInt16(w, s.PacketId);
                    break;
                case InboundQos2Deleted s:
                    Wire.Byte(w, (byte)Kind.InboundQos2Deleted);
                    Wire.UInt16(w, s.PacketId);
                    break;
                case WillSaved s:
                    Wire.Byte(w, (byte)Kind.WillSaved);
                    Wire.Bytes(w, MessageCodec.Encode(s.Will.Message));
                    Wire.UInt32(w, s.Will.DelaySeconds);
                    Wire.Int64(w, s.Will.DueAt?.ToUnixTimeMilliseconds() ?? long.MinValue);
                    break;
                case WillDeleted:
                    Wire.Byte(w, (byte)Kind.WillDeleted);
                    break;
                default:
                    throw new ArgumentException($"not a per-client operation: {operation.GetType().Name}", nameof(operations));
            }
        }
        return w.WrittenSpan.ToArray();
    }

    /// <summary>Decodes one entry; false when it is not an entry of this version (truncated, foreign).</summary>
    public static bool TryDecode(ReadOnlySpan<byte> data, out string? clientId, out bool rollup, out List<StoreOperation>? operations)
    {
        clientId = null;
        rollup = false;
        operations = null;
        var r = new WireReader(data);
        if (!r.TryByte(out var version) || version != Version || !r.TryByte(out var flags) || !r.TryString(out clientId) || clientId is null
            || !r.TryInt(out var count) || count < 0 || count > data.Length)
        {
            return false;
        }
        rollup = (flags & 1) != 0;
        var id = clientId;
        operations = new List<StoreOperation>(count);
        for (var i = 0; i < count; i++)
        {
            if (!r.TryByte(out var kind) || TryOperation(ref r, (Kind)kind, id) is not { } operation)
            {
                return false;
            }
            operations.Add(operation);
        }
        return r.AtEnd;
    }

    private static StoreOperation? TryOperation(ref WireReader r, Kind kind, string clientId)
    {
        switch (kind)
        {
            case Kind.SessionSaved:
                if (!r.TryUInt32(out var expiry) || !r.TryInt64(out var expiresAt) || !r.TryByte(out var protocol) || !r.TryNullableString(out var user)
                    || !r.TryNullableString(out var pem) || !r.TryUInt16(out var lastPacketId))
                {
                    return null;
                }
                return new SessionSaved(new StoredSession(clientId, expiry, Time(expiresAt), protocol, user, pem, lastPacketId));
            case Kind.SessionDeleted:
                return new SessionDeleted(clientId);
            case Kind.SubscriptionSaved:
                if (!r.TryString(out var filter) || filter is null || !r.TryByte(out var qos) || !r.TryByte(out var options) || !r.TryByte(out var handling)
                    || !r.TryUInt32(out var subscriptionId))
                {
                    return null;
                }
                return new SubscriptionSaved(clientId, new StoredSubscription(filter, qos, (options & 1) != 0, (options & 2) != 0, handling, subscriptionId));
            case Kind.SubscriptionDeleted:
                return r.TryString(out var removed) && removed is not null ? new SubscriptionDeleted(clientId, removed) : null;
            case Kind.MessageQueued:
                if (!r.TryInt64(out var sequence) || !r.TrySpan(out var encoded) || !MessageCodec.TryDecode(encoded, out var message)
                    || !r.TryByte(out var messageQos) || !r.TryByte(out var retain) || !r.TryInt(out var ids) || ids < -1 || ids > 65535)
                {
                    return null;
                }
                uint[]? subscriptionIds = ids < 0 ? null : new uint[ids];
                for (var k = 0; k < ids; k++)
                {
                    if (!r.TryUInt32(out subscriptionIds![k]))
                    {
                        return null;
                    }
                }
                return new MessageQueued(clientId, sequence, message!, messageQos, retain != 0, subscriptionIds);
            case Kind.MessageStateChanged:
                return r.TryInt64(out var changed) && r.TryByte(out var state) && state <= 3 && r.TryUInt16(out var packetId)
                    ? new MessageStateChanged(clientId, changed, (StoredMessageState)state, packetId) : null;
            case Kind.MessageDeleted:
                return r.TryInt64(out var deleted) ? new MessageDeleted(clientId, deleted) : null;
            case Kind.InboundQos2Saved:
                return r.TryUInt16(out var inbound) ? new InboundQos2Saved(clientId, inbound) : null;
            case Kind.InboundQos2Deleted:
                return r.TryUInt16(out var released) ? new InboundQos2Deleted(clientId, released) : null;
            case Kind.WillSaved:
                if (!r.TrySpan(out var will) || !MessageCodec.TryDecode(will, out var willMessage) || !r.TryUInt32(out var delay) || !r.TryInt64(out var due))
                {
                    return null;
                }
                return new WillSaved(clientId, new StoredWill(willMessage!, delay, Time(due)));
            case Kind.WillDeleted:
                return new WillDeleted(clientId);
            default:
                return null;
        }
    }

    private static DateTimeOffset? Time(long milliseconds) =>
        milliseconds == long.MinValue ? null : DateTimeOffset.FromUnixTimeMilliseconds(milliseconds);
}
