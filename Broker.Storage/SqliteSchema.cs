using Microsoft.Data.Sqlite;

namespace OmniBroker.Storage;

/// <summary>
/// The state database's schema (PRAGMA user_version) and its migrations. A file is checked before anything is written
/// to it: a file that is not SQLite, is corrupt, belongs to another application or was written by a newer schema
/// stops start-up with a <see cref="StateStoreException"/> naming it, and is left as it was.
/// </summary>
internal static class SqliteSchema
{
    /// <summary>"OMNI": marks the file as an OmniBroker state database (PRAGMA application_id).</summary>
    public const int ApplicationId = 0x4F4D4E49;

    public const int CurrentVersion = 1;

    /// <summary>Migrations by the version they produce; index 0 creates version 1 from an empty file.</summary>
    private static readonly string[] s_migrations =
    [
        """
        CREATE TABLE sessions (
            client_id TEXT PRIMARY KEY,
            expiry_interval INTEGER NOT NULL,
            expires_at INTEGER,            -- unix ms; NULL while connected
            protocol INTEGER NOT NULL,
            user_name TEXT,
            cert_chain TEXT,               -- PEM, leaf first: re-authorization at start-up
            last_packet_id INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE subscriptions (
            client_id TEXT NOT NULL,
            filter TEXT NOT NULL,
            qos INTEGER NOT NULL,
            no_local INTEGER NOT NULL,
            retain_as_published INTEGER NOT NULL,
            retain_handling INTEGER NOT NULL,
            subscription_id INTEGER NOT NULL,
            PRIMARY KEY (client_id, filter)
        ) WITHOUT ROWID;
        CREATE TABLE messages (
            client_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            state INTEGER NOT NULL,        -- 0 queued, 1 awaiting PUBACK, 2 awaiting PUBREC, 3 awaiting PUBCOMP
            packet_id INTEGER NOT NULL,
            qos INTEGER NOT NULL,
            retain INTEGER NOT NULL,
            subscription_ids BLOB,
            topic TEXT NOT NULL,
            payload BLOB,                  -- NULL once PUBREC released it
            original_qos INTEGER NOT NULL,
            properties BLOB,
            publisher TEXT,
            expires_at INTEGER,
            PRIMARY KEY (client_id, seq)
        ) WITHOUT ROWID;
        CREATE TABLE inbound_qos2 (
            client_id TEXT NOT NULL,
            packet_id INTEGER NOT NULL,
            PRIMARY KEY (client_id, packet_id)
        ) WITHOUT ROWID;
        CREATE TABLE retained (
            topic TEXT PRIMARY KEY,
            qos INTEGER NOT NULL,
            payload BLOB NOT NULL,
            properties BLOB,
            publisher TEXT,
            expires_at INTEGER
        );
        CREATE TABLE wills (
            client_id TEXT PRIMARY KEY,
            topic TEXT NOT NULL,
            qos INTEGER NOT NULL,
            retain INTEGER NOT NULL,
            payload BLOB NOT NULL,
            properties BLOB,
            expires_at INTEGER,
            delay INTEGER NOT NULL,
            due_at INTEGER
        ) WITHOUT ROWID;
        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value INTEGER
        ) WITHOUT ROWID;
        """,
    ];

    public static SqliteConnection OpenConnection(string path, bool readOnly = false)
    {
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = readOnly ? SqliteOpenMode.ReadOnly : SqliteOpenMode.ReadWriteCreate,
            // One long-lived connection per store; closing it must release the file (CLI compact, tests).
            Pooling = false,
        };
        var connection = new SqliteConnection(builder.ToString());
        connection.Open();
        return connection;
    }

    /// <summary>Checks the file and brings it to <see cref="CurrentVersion"/>. Read-only checks come first; only a
    /// recognised file (or an empty new one) is written to. Damaged data pages are found by the full read at start-up
    /// (<see cref="SqliteStateReader"/>), which fails the same way, rather than by a separate integrity scan.</summary>
    public static void CheckAndMigrate(SqliteConnection connection, string path)
    {
        long version, applicationId;
        bool empty;
        try
        {
            version = Scalar(connection, "PRAGMA user_version");
            applicationId = Scalar(connection, "PRAGMA application_id");
            empty = Scalar(connection, "SELECT count(*) FROM sqlite_schema") == 0;
        }
        catch (SqliteException ex)
        {
            throw new StateStoreException(path, $"unreadable ({ex.Message.TrimEnd('.')}); restore it from a backup or move it away to start empty", ex);
        }

        if (!empty && applicationId != ApplicationId)
        {
            throw new StateStoreException(path, "not an OmniBroker state database (application_id differs); set Storage:Path to another file");
        }
        if (version > CurrentVersion)
        {
            throw new StateStoreException(path, $"written by a newer OmniBroker (schema {version}; this version reads up to {CurrentVersion}); upgrade, or restore a backup made before the upgrade");
        }

        Execute(connection, "PRAGMA journal_mode=WAL");
        for (var next = (int)version; next < CurrentVersion; next++)
        {
            using var transaction = connection.BeginTransaction();
            Execute(connection, s_migrations[next], transaction);
            if (next == 0)
            {
                Execute(connection, $"PRAGMA application_id={ApplicationId}", transaction);
            }
            Execute(connection, $"PRAGMA user_version={next + 1}", transaction);
            transaction.Commit();
        }
    }

    public static long Scalar(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        return Convert.ToInt64(command.ExecuteScalar() ?? 0L, System.Globalization.CultureInfo.InvariantCulture);
    }

    public static void Execute(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        command.ExecuteNonQuery();
    }
}
