using Microsoft.Data.Sqlite;
using OmniBroker.Mqtt.Abstractions;
using static OmniBroker.Storage.StoredMessageCodec;

namespace OmniBroker.Storage;

/// <summary>
/// Applies <see cref="StoreOperation"/>s to the database with prepared commands, created once and reused for every
/// batch (only the parameter values and the transaction change). Used by the single writer thread only.
/// </summary>
internal sealed class SqliteStateWriter : IDisposable
{
    private readonly SqliteConnection _connection;
    private readonly List<SqliteCommand> _all = [];
    private readonly SqliteCommand _saveSession;
    private readonly SqliteCommand[] _deleteSession;
    private readonly SqliteCommand _saveSubscription;
    private readonly SqliteCommand _deleteSubscription;
    private readonly SqliteCommand _queueMessage;
    private readonly SqliteCommand _messageState;
    private readonly SqliteCommand _deleteMessage;
    private readonly SqliteCommand _saveInbound;
    private readonly SqliteCommand _deleteInbound;
    private readonly SqliteCommand _saveRetained;
    private readonly SqliteCommand _deleteRetained;
    private readonly SqliteCommand _saveWill;
    private readonly SqliteCommand _deleteWill;
    private readonly SqliteCommand _saveMeta;

    public SqliteStateWriter(SqliteConnection connection)
    {
        _connection = connection;
        _saveSession = Prepare("""
            INSERT INTO sessions (client_id, expiry_interval, expires_at, protocol, user_name, cert_chain, last_packet_id)
            VALUES ($c, $e, $x, $p, $u, $cert, $l)
            ON CONFLICT (client_id) DO UPDATE SET expiry_interval = $e, expires_at = $x, protocol = $p, user_name = $u,
                cert_chain = $cert, last_packet_id = $l
            """, "$c", "$e", "$x", "$p", "$u", "$cert", "$l");
        _deleteSession =
        [
            Prepare("DELETE FROM sessions WHERE client_id = $c", "$c"),
            Prepare("DELETE FROM subscriptions WHERE client_id = $c", "$c"),
            Prepare("DELETE FROM messages WHERE client_id = $c", "$c"),
            Prepare("DELETE FROM inbound_qos2 WHERE client_id = $c", "$c"),
            Prepare("DELETE FROM wills WHERE client_id = $c", "$c"),
        ];
        _saveSubscription = Prepare("""
            INSERT OR REPLACE INTO subscriptions (client_id, filter, qos, no_local, retain_as_published, retain_handling, subscription_id)
            VALUES ($c, $f, $q, $n, $r, $h, $i)
            """, "$c", "$f", "$q", "$n", "$r", "$h", "$i");
        _deleteSubscription = Prepare("DELETE FROM subscriptions WHERE client_id = $c AND filter = $f", "$c", "$f");
        _queueMessage = Prepare("""
            INSERT OR REPLACE INTO messages (client_id, seq, state, packet_id, qos, retain, subscription_ids, topic, payload,
                original_qos, properties, publisher, expires_at)
            VALUES ($c, $s, 0, 0, $q, $r, $i, $t, $b, $o, $pr, $pub, $x)
            """, "$c", "$s", "$q", "$r", "$i", "$t", "$b", "$o", "$pr", "$pub", "$x");
        _messageState = Prepare("""
            UPDATE messages SET state = $st, packet_id = $p, payload = CASE WHEN $st = 3 THEN NULL ELSE payload END
            WHERE client_id = $c AND seq = $s
            """, "$c", "$s", "$st", "$p");
        _deleteMessage = Prepare("DELETE FROM messages WHERE client_id = $c AND seq = $s", "$c", "$s");
        _saveInbound = Prepare("INSERT OR IGNORE INTO inbound_qos2 (client_id, packet_id) VALUES ($c, $p)", "$c", "$p");
        _deleteInbound = Prepare("DELETE FROM inbound_qos2 WHERE client_id = $c AND packet_id = $p", "$c", "$p");
        _saveRetained = Prepare("""
            INSERT OR REPLACE INTO retained (topic, qos, payload, properties, publisher, expires_at) VALUES ($t, $q, $b, $pr, $pub, $x)
            """, "$t", "$q", "$b", "$pr", "$pub", "$x");
        _deleteRetained = Prepare("DELETE FROM retained WHERE topic = $t", "$t");
        _saveWill = Prepare("""
            INSERT OR REPLACE INTO wills (client_id, topic, qos, retain, payload, properties, expires_at, delay, due_at)
            VALUES ($c, $t, $q, $r, $b, $pr, $x, $d, $due)
            """, "$c", "$t", "$q", "$r", "$b", "$pr", "$x", "$d", "$due");
        _deleteWill = Prepare("DELETE FROM wills WHERE client_id = $c", "$c");
        _saveMeta = Prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ($k, $v)", "$k", "$v");
    }

    public void Begin(SqliteTransaction transaction)
    {
        foreach (var command in _all)
        {
            command.Transaction = transaction;
        }
    }

    public void SaveMeta(string key, long value) => Run(_saveMeta, key, value);

    public void Apply(StoreOperation operation)
    {
        switch (operation)
        {
            case MessageQueued q:
                var m = q.Message;
                Run(_queueMessage, q.ClientId, q.Sequence, q.Qos, q.Retain, EncodeIds(q.SubscriptionIds), m.Topic, m.Payload, m.Qos,
                    EncodeProperties(m), m.PublisherClientId, ToUnixMs(m.ExpiresAt));
                break;
            case MessageStateChanged c:
                Run(_messageState, c.ClientId, c.Sequence, (int)c.State, c.PacketId);
                break;
            case MessageDeleted d:
                Run(_deleteMessage, d.ClientId, d.Sequence);
                break;
            case InboundQos2Saved i:
                Run(_saveInbound, i.ClientId, i.PacketId);
                break;
            case InboundQos2Deleted i:
                Run(_deleteInbound, i.ClientId, i.PacketId);
                break;
            case SessionSaved s:
                var row = s.Session;
                Run(_saveSession, row.ClientId, row.ExpiryInterval, ToUnixMs(row.ExpiresAt), row.ProtocolVersion, row.UserName,
                    row.CertificateChainPem, row.LastPacketId);
                break;
            case SessionDeleted s:
                foreach (var command in _deleteSession)
                {
                    Run(command, s.ClientId);
                }
                break;
            case SubscriptionSaved s:
                var sub = s.Subscription;
                Run(_saveSubscription, s.ClientId, sub.Filter, sub.MaximumQos, sub.NoLocal, sub.RetainAsPublished, sub.RetainHandling,
                    sub.SubscriptionId);
                break;
            case SubscriptionDeleted s:
                Run(_deleteSubscription, s.ClientId, s.Filter);
                break;
            case RetainedSaved r:
                var message = r.Message;
                Run(_saveRetained, message.Topic, message.Qos, message.Payload, EncodeProperties(message), message.PublisherClientId,
                    ToUnixMs(message.ExpiresAt));
                break;
            case RetainedDeleted r:
                Run(_deleteRetained, r.Topic);
                break;
            case WillSaved w:
                var will = w.Will.Message;
                Run(_saveWill, w.ClientId, will.Topic, will.Qos, will.Retain, will.Payload, EncodeProperties(will), ToUnixMs(will.ExpiresAt),
                    w.Will.DelaySeconds, ToUnixMs(w.Will.DueAt));
                break;
            case WillDeleted w:
                Run(_deleteWill, w.ClientId);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(operation), operation.GetType().Name, "unknown store operation");
        }
    }

    public void Dispose()
    {
        foreach (var command in _all)
        {
            command.Dispose();
        }
    }

    private SqliteCommand Prepare(string sql, params string[] parameters)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        foreach (var name in parameters)
        {
            command.Parameters.Add(new SqliteParameter { ParameterName = name });
        }
        _all.Add(command);
        return command;
    }

    private static void Run(SqliteCommand command, params object?[] values)
    {
        for (var i = 0; i < values.Length; i++)
        {
            command.Parameters[i].Value = values[i] ?? DBNull.Value;
        }
        command.ExecuteNonQuery();
    }
}
