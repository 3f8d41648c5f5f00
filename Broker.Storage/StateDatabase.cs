using Microsoft.Data.Sqlite;

namespace OmniBroker.Storage;

/// <summary>What the state database holds (omnibroker state inspect).</summary>
public sealed record StateSummary(string Path, int SchemaVersion, long Sessions, long Subscriptions, long Queued, long Inflight, long InboundQos2,
    long Retained, long Wills, long DatabaseBytes, long WalBytes, long QueuedPayloadBytes);

/// <summary>Offline tools on a state database: inspect (safe while the broker runs: a WAL reader) and compact (only
/// while no broker holds the file: <see cref="StateFileLock"/>).</summary>
public static class StateDatabase
{
    /// <exception cref="StateStoreException">the file is missing, corrupt, or not a state database.</exception>
    public static StateSummary Inspect(string path)
    {
        if (!File.Exists(path))
        {
            throw new StateStoreException(path, "does not exist");
        }
        try
        {
            using var connection = SqliteSchema.OpenConnection(path, readOnly: true);
            if (SqliteSchema.Scalar(connection, "PRAGMA application_id") != SqliteSchema.ApplicationId)
            {
                throw new StateStoreException(path, "not an OmniBroker state database");
            }
            var version = (int)SqliteSchema.Scalar(connection, "PRAGMA user_version");
            if (version > SqliteSchema.CurrentVersion)
            {
                throw new StateStoreException(path, $"written by a newer OmniBroker (schema {version}; this version reads up to {SqliteSchema.CurrentVersion})");
            }
            long Count(string sql) => SqliteSchema.Scalar(connection, sql);
            var wal = new FileInfo(path + "-wal");
            return new StateSummary(path, version,
                Count("SELECT count(*) FROM sessions"),
                Count("SELECT count(*) FROM subscriptions"),
                Count("SELECT count(*) FROM messages WHERE state = 0"),
                Count("SELECT count(*) FROM messages WHERE state <> 0"),
                Count("SELECT count(*) FROM inbound_qos2"),
                Count("SELECT count(*) FROM retained"),
                Count("SELECT count(*) FROM wills"),
                new FileInfo(path).Length,
                wal.Exists ? wal.Length : 0,
                Count("SELECT coalesce(sum(length(payload)), 0) FROM messages"));
        }
        catch (SqliteException ex)
        {
            throw new StateStoreException(path, $"unreadable ({ex.Message.TrimEnd('.')})", ex);
        }
    }

    /// <summary>Checkpoints the WAL and rewrites the file without free pages (VACUUM). Returns the sizes before and after.</summary>
    /// <exception cref="StateStoreException">a broker is using the file, or it cannot be compacted.</exception>
    public static (long Before, long After) Compact(string path)
    {
        Inspect(path);
        using var fileLock = StateFileLock.Acquire(path);
        var wal = new FileInfo(path + "-wal");
        var before = new FileInfo(path).Length + (wal.Exists ? wal.Length : 0);
        try
        {
            using (var connection = SqliteSchema.OpenConnection(path))
            {
                SqliteSchema.Execute(connection, "PRAGMA wal_checkpoint(TRUNCATE)");
                SqliteSchema.Execute(connection, "VACUUM");
                SqliteSchema.Execute(connection, "PRAGMA wal_checkpoint(TRUNCATE)");
            }
        }
        catch (SqliteException ex)
        {
            throw new StateStoreException(path, $"cannot be compacted ({ex.Message.TrimEnd('.')})", ex);
        }
        wal.Refresh();
        return (before, new FileInfo(path).Length + (wal.Exists ? wal.Length : 0));
    }
}

/// <summary>An exclusive lock on &lt;state.db&gt;.lock held while a broker (or an offline tool that writes) uses the
/// database: a second broker on the same data directory, or a compaction under a running broker, is refused.
/// The operating system releases it when the process dies, SIGKILL included.</summary>
public sealed class StateFileLock : IDisposable
{
    private readonly FileStream _stream;

    private StateFileLock(FileStream stream) => _stream = stream;

    public static StateFileLock Acquire(string databasePath)
    {
        var path = databasePath + ".lock";
        try
        {
            return new StateFileLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException ex)
        {
            throw new StateStoreException(databasePath, $"in use by another process (a running broker holds {path}): {ex.Message}", ex);
        }
    }

    public void Dispose() => _stream.Dispose();
}
