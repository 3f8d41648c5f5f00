using System.Text;
using Microsoft.Data.Sqlite;
using OmniBroker.Mqtt.Abstractions;
using SQLitePCL;
using static OmniBroker.Storage.StoredMessageCodec;

namespace OmniBroker.Storage;

/// <summary>
/// Reads the whole state at start-up: one sequential scan per table, each in primary-key (client id) order, so rows of
/// one client arrive together and are matched to their session by comparing UTF-8 bytes with the previous row (no
/// per-session query, no lookup per row). The scans go through SQLite's C API on the store's connection (statements
/// stepped directly, columns read as spans): the queued-message table can hold millions of rows, and the ADO.NET
/// reader's per-column overhead, boxing and one string per text column per row were most of the start-up time.
/// Repeated strings (client ids, topics, publishers) are shared, so a restored message costs its payload copy and
/// its two records. Errors surface as <see cref="SqliteException"/> like every other read.
/// </summary>
internal static class SqliteStateReader
{
    public const string LastAliveKey = "last_alive";

    public static StoredState Load(SqliteConnection connection)
    {
        var db = connection.Handle ?? throw new InvalidOperationException("connection not open");
        var strings = new Utf8StringCache();
        var order = new List<Builder>();
        var sessions = new Dictionary<string, Builder>(StringComparer.Ordinal);

        using (var s = new Scan(db, "SELECT client_id, expiry_interval, expires_at, protocol, user_name, cert_chain, last_packet_id FROM sessions ORDER BY client_id"))
        {
            while (s.Next())
            {
                var clientId = s.String(0)!;
                var builder = new Builder(new StoredSession(clientId, (uint)s.Int64(1), s.Time(2), (byte)s.Int64(3), s.String(4),
                    s.String(5), (ushort)s.Int64(6)));
                sessions[clientId] = builder;
                order.Add(builder);
            }
        }
        var owners = new OwnerCursor(sessions);

        using (var s = new Scan(db, "SELECT client_id, filter, qos, no_local, retain_as_published, retain_handling, subscription_id FROM subscriptions ORDER BY client_id"))
        {
            while (s.Next())
            {
                owners.Find(s.Utf8(0))?.Subscriptions.Add(new StoredSubscription(s.String(1)!, (byte)s.Int64(2), s.Int64(3) != 0,
                    s.Int64(4) != 0, (byte)s.Int64(5), (uint)s.Int64(6)));
            }
        }

        using (var s = new Scan(db, """
            SELECT client_id, seq, state, packet_id, qos, retain, subscription_ids, topic, payload, original_qos, properties, publisher, expires_at
            FROM messages ORDER BY client_id, seq
            """))
        {
            while (s.Next())
            {
                if (owners.Find(s.Utf8(0)) is not { } owner)
                {
                    continue;
                }
                var retain = s.Int64(5) != 0;
                StoredMessage? message = null;
                if (!s.IsNull(8))
                {
                    message = new StoredMessage(strings.Get(s.Utf8(7)), s.Blob(8), (byte)s.Int64(9), retain,
                        s.IsNull(11) ? null : strings.Get(s.Utf8(11)), s.Time(12));
                    if (!s.IsNull(10))
                    {
                        message = DecodeProperties(message, s.Blob(10));
                    }
                }
                owner.Messages.Add(new StoredQueuedMessage(s.Int64(1), message, (byte)s.Int64(4), retain,
                    s.IsNull(6) ? null : DecodeIds(s.Blob(6)), (StoredMessageState)s.Int64(2), (ushort)s.Int64(3)));
            }
        }

        using (var s = new Scan(db, "SELECT client_id, packet_id FROM inbound_qos2 ORDER BY client_id"))
        {
            while (s.Next())
            {
                owners.Find(s.Utf8(0))?.InboundQos2.Add((ushort)s.Int64(1));
            }
        }

        using (var s = new Scan(db, "SELECT client_id, topic, qos, retain, payload, properties, expires_at, delay, due_at FROM wills ORDER BY client_id"))
        {
            while (s.Next())
            {
                if (owners.Find(s.Utf8(0)) is { } owner)
                {
                    var message = new StoredMessage(s.String(1)!, s.Blob(4), (byte)s.Int64(2), s.Int64(3) != 0, owner.Session.ClientId, s.Time(6));
                    owner.Will = new StoredWill(s.IsNull(5) ? message : DecodeProperties(message, s.Blob(5)), (uint)s.Int64(7), s.Time(8));
                }
            }
        }

        var retained = new List<StoredMessage>();
        using (var s = new Scan(db, "SELECT topic, qos, payload, properties, publisher, expires_at FROM retained"))
        {
            while (s.Next())
            {
                var message = new StoredMessage(s.String(0)!, s.Blob(2), (byte)s.Int64(1), true, s.IsNull(4) ? null : strings.Get(s.Utf8(4)), s.Time(5));
                retained.Add(s.IsNull(3) ? message : DecodeProperties(message, s.Blob(3)));
            }
        }

        var lastAlive = SqliteSchema.Scalar(connection, $"SELECT coalesce((SELECT value FROM meta WHERE key = '{LastAliveKey}'), 0)");
        var states = new StoredSessionState[order.Count];
        for (var i = 0; i < states.Length; i++)
        {
            var b = order[i];
            states[i] = new StoredSessionState(b.Session, b.Subscriptions, b.Messages, b.InboundQos2, b.Will);
        }
        return new StoredState(states, retained, lastAlive > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(lastAlive) : null);
    }

    /// <summary>The session a row belongs to: the previous row's owner when the client id bytes are the same (rows
    /// come grouped by client), else a lookup. Null for a row without a session (skipped, as before).</summary>
    private sealed class OwnerCursor(Dictionary<string, Builder> sessions)
    {
        private Builder? _current;
        private byte[] _currentId = [];

        public Builder? Find(ReadOnlySpan<byte> clientId)
        {
            if (!clientId.SequenceEqual(_currentId))
            {
                _currentId = clientId.ToArray();
                _current = sessions.GetValueOrDefault(Encoding.UTF8.GetString(clientId));
            }
            return _current;
        }
    }

    /// <summary>A small direct-mapped cache from UTF-8 bytes to strings: the topics and publishers of queued messages
    /// repeat across rows, and one string each is enough.</summary>
    private sealed class Utf8StringCache
    {
        private const int Size = 1024;
        private const int MaxLength = 512;
        private readonly (byte[] Key, string Value)?[] _entries = new (byte[], string)?[Size];

        public string Get(ReadOnlySpan<byte> utf8)
        {
            if (utf8.Length > MaxLength)
            {
                return Encoding.UTF8.GetString(utf8);
            }
            var hash = new HashCode();
            hash.AddBytes(utf8);
            var slot = (hash.ToHashCode() & int.MaxValue) % Size;
            if (_entries[slot] is { } entry && utf8.SequenceEqual(entry.Key))
            {
                return entry.Value;
            }
            var value = Encoding.UTF8.GetString(utf8);
            _entries[slot] = (utf8.ToArray(), value);
            return value;
        }
    }

    /// <summary>One prepared statement stepped to the end. Text and blobs are read as spans valid until the next step.</summary>
    private sealed class Scan : IDisposable
    {
        private readonly sqlite3 _db;
        private readonly sqlite3_stmt _statement;

        public Scan(sqlite3 db, string sql)
        {
            _db = db;
            var rc = raw.sqlite3_prepare_v2(db, sql, out _statement);
            SqliteException.ThrowExceptionForRC(rc, db);
        }

        public bool Next()
        {
            var rc = raw.sqlite3_step(_statement);
            if (rc == raw.SQLITE_ROW)
            {
                return true;
            }
            if (rc != raw.SQLITE_DONE)
            {
                SqliteException.ThrowExceptionForRC(rc, _db);
            }
            return false;
        }

        public bool IsNull(int column) => raw.sqlite3_column_type(_statement, column) == raw.SQLITE_NULL;

        public long Int64(int column) => raw.sqlite3_column_type(_statement, column) == raw.SQLITE_INTEGER
            ? raw.sqlite3_column_int64(_statement, column)
            : throw new InvalidCastException($"column {column}: an integer was expected");

        public DateTimeOffset? Time(int column) => IsNull(column) ? null : DateTimeOffset.FromUnixTimeMilliseconds(Int64(column));

        /// <summary>The UTF-8 bytes of a text column (also of a blob: SQLite converts).</summary>
        public ReadOnlySpan<byte> Utf8(int column) => IsNull(column)
            ? throw new InvalidCastException($"column {column}: text was expected, found NULL")
            : raw.sqlite3_column_blob(_statement, column);

        public string? String(int column) => IsNull(column) ? null : Encoding.UTF8.GetString(raw.sqlite3_column_blob(_statement, column));

        public byte[] Blob(int column) => IsNull(column)
            ? throw new InvalidCastException($"column {column}: a blob was expected, found NULL")
            : raw.sqlite3_column_blob(_statement, column).ToArray();

        public void Dispose() => _statement.Dispose();
    }

    private sealed class Builder(StoredSession session)
    {
        public StoredSession Session { get; } = session;
        public List<StoredSubscription> Subscriptions { get; } = [];
        public List<StoredQueuedMessage> Messages { get; } = [];
        public List<ushort> InboundQos2 { get; } = [];
        public StoredWill? Will { get; set; }
    }
}
