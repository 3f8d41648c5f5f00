using Microsoft.Data.Sqlite;

namespace OmniBroker.Storage;

/// <summary>
/// Checkpoints the WAL from a connection of its own, on a timer, so that the writer's commits never do it. SQLite's
/// automatic checkpoint runs inside the commit that crosses the WAL size limit, and with synchronous=NORMAL a
/// checkpoint is where the database file is fsynced: every few hundred commits one acknowledgement batch waited for a
/// disk sync it does not need (strict durability is about the WAL, which the commit has already written). A passive
/// checkpoint runs beside the writer (SQLite allows one checkpointer next to one writer) and never blocks it. The
/// writer connection keeps a large automatic checkpoint as a backstop, should this one fall behind.
/// </summary>
internal sealed class WalCheckpointer : IAsyncDisposable
{
    private static readonly TimeSpan s_interval = TimeSpan.FromMilliseconds(250);
    /// <summary>Automatic checkpoint of the writer connection, in pages: reached only if this checkpointer cannot run.</summary>
    public const int BackstopPages = 16_384;

    private readonly SqliteConnection _connection;
    private readonly Func<long> _commits;
    private readonly Timer _timer;
    private readonly Lock _sync = new();
    private long _checkpointedAt;
    private bool _disposed;

    private WalCheckpointer(SqliteConnection connection, Func<long> commits)
    {
        _connection = connection;
        _commits = commits;
        _timer = new Timer(_ => Run(), null, s_interval, s_interval);
    }

    /// <param name="commits">How far the writer has committed: nothing to do while it stays the same.</param>
    /// <returns>null when a second connection cannot be opened: the writer's automatic checkpoint then does the work.</returns>
    public static WalCheckpointer? TryStart(string path, Func<long> commits)
    {
        try
        {
            return new WalCheckpointer(SqliteSchema.OpenConnection(path), commits);
        }
        catch (SqliteException)
        {
            return null;
        }
    }

    private void Run()
    {
        lock (_sync)
        {
            var committed = _commits();
            if (_disposed || committed == _checkpointedAt)
            {
                return;
            }
            try
            {
                SqliteSchema.Execute(_connection, "PRAGMA wal_checkpoint(PASSIVE)");
                _checkpointedAt = committed;
            }
            catch (SqliteException)
            {
                // Busy or an I/O error: tried again at the next tick; the writer reports write failures itself.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _timer.DisposeAsync().ConfigureAwait(false);
        lock (_sync)
        {
            _disposed = true;
            _connection.Dispose();
        }
    }
}
