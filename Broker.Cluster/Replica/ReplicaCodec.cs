using System.Buffers;
using System.Buffers.Binary;
using System.Text;
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
        Byte(w, Version);
        Byte(w, rollup ? (byte)1 : (byte)0);
        String(w, clientId);
        Int(w, operations.Count);
        foreach (var operation in operations)
        {
            switch (operation)
            {
                case SessionSaved s:
                    Byte(w, (byte)Kind.SessionSaved);
                    UInt(w, s.Session.ExpiryInterval);
                    Long(w, s.Session.ExpiresAt?.ToUnixTimeMilliseconds() ?? long.MinValue);
                    Byte(w, s.Session.ProtocolVersion);
                    String(w, s.Session.UserName);
                    String(w, s.Session.CertificateChainPem);
                    UShort(w, s.Session.LastPacketId);
                    break;
                case SessionDeleted:
                    Byte(w, (byte)Kind.SessionDeleted);
                    break;
                case SubscriptionSaved s:
                    Byte(w, (byte)Kind.SubscriptionSaved);
                    String(w, s.Subscription.Filter);
                    Byte(w, s.Subscription.MaximumQos);
                    Byte(w, (byte)((s.Subscription.NoLocal ? 1 : 0) | (s.Subscription.RetainAsPublished ? 2 : 0)));
                    Byte(w, s.Subscription.RetainHandling);
                    UInt(w, s.Subscription.SubscriptionId);
                    break;
                case SubscriptionDeleted s:
                    Byte(w, (byte)Kind.SubscriptionDeleted);
                    String(w, s.Filter);
                    break;
                case MessageQueued s:
                    Byte(w, (byte)Kind.MessageQueued);
                    Long(w, s.Sequence);
                    Bytes(w, MessageCodec.Encode(s.Message));
                    Byte(w, s.Qos);
                    Byte(w, s.Retain ? (byte)1 : (byte)0);
                    Int(w, s.SubscriptionIds?.Length ?? -1);
                    foreach (var id in s.SubscriptionIds ?? [])
                    {
                        UInt(w, id);
                    }
                    break;
                case MessageStateChanged s:
                    Byte(w, (byte)Kind.MessageStateChanged);
                    Long(w, s.Sequence);
                    Byte(w, (byte)s.State);
                    UShort(w, s.PacketId);
                    break;
                case MessageDeleted s:
                    Byte(w, (byte)Kind.MessageDeleted);
                    Long(w, s.Sequence);
                    break;
                case InboundQos2Saved s:
                    Byte(w, (byte)Kind.InboundQos2Saved);
                    UShort(w, s.PacketId);
                    break;
                case InboundQos2Deleted s:
                    Byte(w, (byte)Kind.InboundQos2Deleted);
                    UShort(w, s.PacketId);
                    break;
                case WillSaved s:
                    Byte(w, (byte)Kind.WillSaved);
                    Bytes(w, MessageCodec.Encode(s.Will.Message));
                    UInt(w, s.Will.DelaySeconds);
                    Long(w, s.Will.DueAt?.ToUnixTimeMilliseconds() ?? long.MinValue);
                    break;
                case WillDeleted:
                    Byte(w, (byte)Kind.WillDeleted);
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
        var r = new Reader(data);
        if (!r.Byte(out var version) || version != Version || !r.Byte(out var flags) || !r.String(out clientId) || clientId is null
            || !r.Int(out var count) || count < 0 || count > data.Length)
        {
            return false;
        }
        rollup = (flags & 1) != 0;
        var id = clientId;
        operations = new List<StoreOperation>(count);
        for (var i = 0; i < count; i++)
        {
            if (!r.Byte(out var kind) || TryOperation(ref r, (Kind)kind, id) is not { } operation)
            {
                return false;
            }
            operations.Add(operation);
        }
        return r.AtEnd;
    }

    private static StoreOperation? TryOperation(ref Reader r, Kind kind, string clientId)
    {
        switch (kind)
        {
            case Kind.SessionSaved:
                if (!r.UInt(out var expiry) || !r.Long(out var expiresAt) || !r.Byte(out var protocol) || !r.String(out var user)
                    || !r.String(out var pem) || !r.UShort(out var lastPacketId))
                {
                    return null;
                }
                return new SessionSaved(new StoredSession(clientId, expiry, Time(expiresAt), protocol, user, pem, lastPacketId));
            case Kind.SessionDeleted:
                return new SessionDeleted(clientId);
            case Kind.SubscriptionSaved:
                if (!r.String(out var filter) || filter is null || !r.Byte(out var qos) || !r.Byte(out var options) || !r.Byte(out var handling)
                    || !r.UInt(out var subscriptionId))
                {
                    return null;
                }
                return new SubscriptionSaved(clientId, new StoredSubscription(filter, qos, (options & 1) != 0, (options & 2) != 0, handling, subscriptionId));
            case Kind.SubscriptionDeleted:
                return r.String(out var removed) && removed is not null ? new SubscriptionDeleted(clientId, removed) : null;
            case Kind.MessageQueued:
                if (!r.Long(out var sequence) || !r.Bytes(out var encoded) || !MessageCodec.TryDecode(encoded, out var message)
                    || !r.Byte(out var messageQos) || !r.Byte(out var retain) || !r.Int(out var ids) || ids < -1 || ids > 65535)
                {
                    return null;
                }
                uint[]? subscriptionIds = ids < 0 ? null : new uint[ids];
                for (var k = 0; k < ids; k++)
                {
                    if (!r.UInt(out subscriptionIds![k]))
                    {
                        return null;
                    }
                }
                return new MessageQueued(clientId, sequence, message!, messageQos, retain != 0, subscriptionIds);
            case Kind.MessageStateChanged:
                return r.Long(out var changed) && r.Byte(out var state) && state <= 3 && r.UShort(out var packetId)
                    ? new MessageStateChanged(clientId, changed, (StoredMessageState)state, packetId) : null;
            case Kind.MessageDeleted:
                return r.Long(out var deleted) ? new MessageDeleted(clientId, deleted) : null;
            case Kind.InboundQos2Saved:
                return r.UShort(out var inbound) ? new InboundQos2Saved(clientId, inbound) : null;
            case Kind.InboundQos2Deleted:
                return r.UShort(out var released) ? new InboundQos2Deleted(clientId, released) : null;
            case Kind.WillSaved:
                if (!r.Bytes(out var will) || !MessageCodec.TryDecode(will, out var willMessage) || !r.UInt(out var delay) || !r.Long(out var due))
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

    private static void Byte(ArrayBufferWriter<byte> w, byte value)
    {
        w.GetSpan(1)[0] = value;
        w.Advance(1);
    }

    private static void UShort(ArrayBufferWriter<byte> w, ushort value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(w.GetSpan(2), value);
        w.Advance(2);
    }

    private static void Int(ArrayBufferWriter<byte> w, int value)
    {
        BinaryPrimitives.WriteInt32LittleEndian(w.GetSpan(4), value);
        w.Advance(4);
    }

    private static void UInt(ArrayBufferWriter<byte> w, uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(w.GetSpan(4), value);
        w.Advance(4);
    }

    private static void Long(ArrayBufferWriter<byte> w, long value)
    {
        BinaryPrimitives.WriteInt64LittleEndian(w.GetSpan(8), value);
        w.Advance(8);
    }

    private static void Bytes(ArrayBufferWriter<byte> w, ReadOnlySpan<byte> value)
    {
        Int(w, value.Length);
        w.Write(value);
    }

    private static void String(ArrayBufferWriter<byte> w, string? value)
    {
        if (value is null)
        {
            Int(w, -1);
            return;
        }
        var count = Encoding.UTF8.GetByteCount(value);
        Int(w, count);
        Encoding.UTF8.GetBytes(value, w.GetSpan(count));
        w.Advance(count);
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private ReadOnlySpan<byte> _rest = data;

        public readonly bool AtEnd => _rest.IsEmpty;

        public bool Byte(out byte value)
        {
            value = 0;
            if (_rest.Length < 1) return false;
            value = _rest[0];
            _rest = _rest[1..];
            return true;
        }

        public bool UShort(out ushort value)
        {
            value = 0;
            if (_rest.Length < 2) return false;
            value = BinaryPrimitives.ReadUInt16LittleEndian(_rest);
            _rest = _rest[2..];
            return true;
        }

        public bool Int(out int value)
        {
            value = 0;
            if (_rest.Length < 4) return false;
            value = BinaryPrimitives.ReadInt32LittleEndian(_rest);
            _rest = _rest[4..];
            return true;
        }

        public bool UInt(out uint value)
        {
            value = 0;
            if (_rest.Length < 4) return false;
            value = BinaryPrimitives.ReadUInt32LittleEndian(_rest);
            _rest = _rest[4..];
            return true;
        }

        public bool Long(out long value)
        {
            value = 0;
            if (_rest.Length < 8) return false;
            value = BinaryPrimitives.ReadInt64LittleEndian(_rest);
            _rest = _rest[8..];
            return true;
        }

        public bool Bytes(out ReadOnlySpan<byte> value)
        {
            value = default;
            if (!Int(out var length) || length < 0 || length > _rest.Length) return false;
            value = _rest[..length];
            _rest = _rest[length..];
            return true;
        }

        public bool String(out string? value)
        {
            value = null;
            if (!Int(out var length) || length < -1 || length > _rest.Length) return false;
            if (length == -1) return true;
            value = Encoding.UTF8.GetString(_rest[..length]);
            _rest = _rest[length..];
            return true;
        }
    }
}
