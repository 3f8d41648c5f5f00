using Microsoft.Data.Sqlite;
using OmniBroker.Mqtt.Abstractions;
using static OmniBroker.Storage.StoredMessageCodec;

namespace OmniBroker.Storage;

/// <summary>Reads the whole state at start-up, table by table in primary-key order (one pass each, grouped by client).</summary>
internal static class SqliteStateReader
{
    public const string LastAliveKey = "last_alive";

    public static StoredState Load(SqliteConnection connection)
    {
        var sessions = new Dictionary<string, Builder>(StringComparer.Ordinal);
        var order = new List<Builder>();

        foreach (var r in Rows(connection, "SELECT client_id, expiry_interval, expires_at, protocol, user_name, cert_chain, last_packet_id FROM sessions"))
        {
            var builder = new Builder(new StoredSession(r.GetString(0), (uint)r.GetInt64(1), FromUnixMs(r.GetValue(2)), (byte)r.GetInt64(3),
                r.IsDBNull(4) ? null : r.GetString(4), r.IsDBNull(5) ? null : r.GetString(5), (ushort)r.GetInt64(6)));
            sessions[builder.Session.ClientId] = builder;
            order.Add(builder);
        }

        foreach (var r in Rows(connection, "SELECT client_id, filter, qos, no_local, retain_as_published, retain_handling, subscription_id FROM subscriptions"))
        {
            if (sessions.TryGetValue(r.GetString(0), out var builder))
            {
                builder.Subscriptions.Add(new StoredSubscription(r.GetString(1), (byte)r.GetInt64(2), r.GetInt64(3) != 0, r.GetInt64(4) != 0,
                    (byte)r.GetInt64(5), (uint)r.GetInt64(6)));
            }
        }

        Builder? current = null;
        foreach (var r in Rows(connection, """
            SELECT client_id, seq, state, packet_id, qos, retain, subscription_ids, topic, payload, original_qos, properties, publisher, expires_at
            FROM messages ORDER BY client_id, seq
            """))
        {
            var clientId = r.GetString(0);
            if (current is null || !string.Equals(current.Session.ClientId, clientId, StringComparison.Ordinal))
            {
                sessions.TryGetValue(clientId, out current);
                if (current is null)
                {
                    continue;
                }
            }
            var state = (StoredMessageState)r.GetInt64(2);
            StoredMessage? message = null;
            if (!r.IsDBNull(8))
            {
                message = DecodeProperties(new StoredMessage(r.GetString(7), (byte[])r.GetValue(8), (byte)r.GetInt64(9), r.GetInt64(5) != 0,
                    r.IsDBNull(11) ? null : r.GetString(11), FromUnixMs(r.GetValue(12))), r.IsDBNull(10) ? null : (byte[])r.GetValue(10));
            }
            current.Messages.Add(new StoredQueuedMessage(r.GetInt64(1), message, (byte)r.GetInt64(4), r.GetInt64(5) != 0,
                DecodeIds(r.IsDBNull(6) ? null : (byte[])r.GetValue(6)), state, (ushort)r.GetInt64(3)));
        }

        foreach (var r in Rows(connection, "SELECT client_id, packet_id FROM inbound_qos2"))
        {
            if (sessions.TryGetValue(r.GetString(0), out var builder))
            {
                builder.InboundQos2.Add((ushort)r.GetInt64(1));
            }
        }

        foreach (var r in Rows(connection, "SELECT client_id, topic, qos, retain, payload, properties, expires_at, delay, due_at FROM wills"))
        {
            if (sessions.TryGetValue(r.GetString(0), out var builder))
            {
                var message = DecodeProperties(new StoredMessage(r.GetString(1), (byte[])r.GetValue(4), (byte)r.GetInt64(2), r.GetInt64(3) != 0,
                    builder.Session.ClientId, FromUnixMs(r.GetValue(6))), r.IsDBNull(5) ? null : (byte[])r.GetValue(5));
                builder.Will = new StoredWill(message, (uint)r.GetInt64(7), FromUnixMs(r.GetValue(8)));
            }
        }

        var retained = new List<StoredMessage>();
        foreach (var r in Rows(connection, "SELECT topic, qos, payload, properties, publisher, expires_at FROM retained"))
        {
            retained.Add(DecodeProperties(new StoredMessage(r.GetString(0), (byte[])r.GetValue(2), (byte)r.GetInt64(1), true,
                r.IsDBNull(4) ? null : r.GetString(4), FromUnixMs(r.GetValue(5))), r.IsDBNull(3) ? null : (byte[])r.GetValue(3)));
        }

        var lastAlive = SqliteSchema.Scalar(connection, $"SELECT coalesce((SELECT value FROM meta WHERE key = '{LastAliveKey}'), 0)");
        return new StoredState(
            order.Select(b => new StoredSessionState(b.Session, b.Subscriptions, b.Messages, b.InboundQos2, b.Will)).ToArray(),
            retained,
            lastAlive > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(lastAlive) : null);
    }

    private static IEnumerable<SqliteDataReader> Rows(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            yield return reader;
        }
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
