using System.Diagnostics;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Storage;

/// <summary>
/// <see cref="ISessionStore"/> on SQLite (WAL). One writer thread owns the connection and commits in groups: it takes
/// every operation appended since the previous commit (at most <see cref="StorageOptions.MaxBatch"/>, after waiting
/// <see cref="StorageOptions.CommitDelay"/> when set) and writes them in one transaction with prepared commands.
/// A commit is in the WAL file (survives a crash of the broker process); with Storage:Synchronous=full it is also
/// synced to the disk (survives power loss). A failed commit (disk full, I/O error)
/// is rolled back, its waiters are told (<see cref="StoreUnavailableException"/>), <see cref="IsWritable"/> turns false
/// and the same operations are retried every second until they succeed.
/// </summary>
public sealed class SqliteSessionStore : ISessionStore
{
    private static readonly TimeSpan s_retryInterval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan s_aliveInterval = TimeSpan.FromSeconds(2);
    private const int SqliteFull = 13;

    private readonly StorageOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly SqliteConnection _connection;
    private readonly StateFileLock _fileLock;
    private readonly SqliteStateWriter _writer;
    private readonly BatchCoalescer _coalescer = new();
    private readonly Lock _queueLock = new();
    private readonly SemaphoreSlim _signal = new(0);
    private List<StoreOperation> _pending = new();
    private List<StoreOperation> _spare = new();
    private TaskCompletionSource _pendingCommit = NewCommit();
    private TaskCompletionSource? _writingCommit;
    private long _appended;
    private long _writingUpTo;
    private long _committed;
    /// <summary>Positions of batches that were committed only in part (database full): their waiters were told they
    /// failed, and so must be a waiter that asks only afterwards (a releaser runs behind the writer). Oldest first.</summary>
    private readonly Queue<(long From, long To, long Timestamp)> _failedRanges = new();
    private volatile bool _writable = true;
    private volatile bool _stopping;
    private Thread? _thread;
    private WalCheckpointer? _checkpointer;
    private DateTimeOffset _aliveWritten;

    private SqliteSessionStore(StorageOptions options, string path, SqliteConnection connection, StateFileLock fileLock, ILogger logger, TimeProvider time)
    {
        _fileLock = fileLock;
        _options = options;
        Path = path;
        _connection = connection;
        _logger = logger;
        _time = time;
        _writer = new SqliteStateWriter(connection);
    }

    public string Path { get; }

    public StoreDurability Durability => _options.Durability;

    public bool IsWritable => _writable;

    /// <summary>Opens (creating when missing) and checks the database. Throws <see cref="StateStoreException"/> naming the
    /// file when it is corrupt, not a state database, or of a newer schema; such a file is not modified.</summary>
    public static SqliteSessionStore Open(StorageOptions options, string path, ILogger logger, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var directory = System.IO.Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }
        var fileLock = StateFileLock.Acquire(path);
        SqliteConnection connection;
        try
        {
            connection = SqliteSchema.OpenConnection(path);
        }
        catch (SqliteException ex)
        {
            fileLock.Dispose();
            throw new StateStoreException(path, $"cannot be opened ({ex.Message.TrimEnd('.')})", ex);
        }
        try
        {
            SqliteSchema.CheckAndMigrate(connection, path);
            SqliteSchema.Execute(connection, options.Synchronous == StorageSynchronous.Full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
            SqliteSchema.Execute(connection, $"PRAGMA wal_autocheckpoint={WalCheckpointer.BackstopPages}");
            if (options.MaxSizeMegabytes > 0)
            {
                var pageSize = SqliteSchema.Scalar(connection, "PRAGMA page_size");
                SqliteSchema.Execute(connection, $"PRAGMA max_page_count={options.MaxSizeMegabytes * 1024L * 1024L / pageSize}");
            }
            return new SqliteSessionStore(options, path, connection, fileLock, logger, time ?? TimeProvider.System);
        }
        catch (Exception ex) when (ex is StateStoreException or SqliteException)
        {
            connection.Dispose();
            fileLock.Dispose();
            throw ex as StateStoreException ?? new StateStoreException(path, ex.Message, ex);
        }
    }

    public Task<StoredState> LoadAsync(CancellationToken cancellationToken)
    {
        if (_thread is not null)
        {
            throw new InvalidOperationException("the state is loaded once, before the first write");
        }
        StoredState state;
        try
        {
            state = SqliteStateReader.Load(_connection);
        }
        catch (Exception ex) when (ex is SqliteException or InvalidDataException or InvalidCastException)
        {
            throw new StateStoreException(Path, $"corrupt ({ex.Message.TrimEnd('.')}); restore it from a backup or move it away to start empty", ex);
        }
        StartWriter();
        return Task.FromResult(state);
    }

    public long Append(StoreOperation operation)
    {
        bool wake;
        long position;
        lock (_queueLock)
        {
            _pending.Add(operation);
            position = ++_appended;
            wake = _pending.Count == 1 || _pending.Count == _options.MaxBatch;
        }
        if (wake)
        {
            StartWriter();
            _signal.Release();
        }
        return position;
    }

    public ValueTask WaitCommittedAsync(long position)
    {
        lock (_queueLock)
        {
            if (position <= _committed)
            {
                return FailedLocked(position)
                    ? ValueTask.FromException(new StoreUnavailableException($"state database {Path} is full"))
                    : ValueTask.CompletedTask;
            }
            return new ValueTask(position <= _writingUpTo && _writingCommit is { } writing ? writing.Task : _pendingCommit.Task);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopping)
        {
            return;
        }
        _stopping = true;
        _signal.Release();
        if (_thread is { } thread)
        {
            await Task.Run(() => thread.Join()).ConfigureAwait(false);
        }
        if (_checkpointer is { } checkpointer)
        {
            await checkpointer.DisposeAsync().ConfigureAwait(false);
        }
        _writer.Dispose();
        _connection.Dispose();
        _signal.Dispose();
        _fileLock.Dispose();
    }

    private int PendingCount
    {
        get
        {
            lock (_queueLock)
            {
                return _pending.Count;
            }
        }
    }

    private void StartWriter()
    {
        if (_thread is not null)
        {
            return;
        }
        lock (_queueLock)
        {
            if (_thread is not null)
            {
                return;
            }
            _checkpointer = WalCheckpointer.TryStart(Path, () => Volatile.Read(ref _committed));
            _thread = new Thread(WriterLoop) { IsBackground = true, Name = "OmniBroker state writer" };
            _thread.Start();
        }
    }

    private void WriterLoop()
    {
        var delay = _options.EffectiveCommitDelay;
        while (true)
        {
            var stopping = _stopping;
            if (!stopping)
            {
                _signal.Wait(_writable ? s_aliveInterval : s_retryInterval);
                if (delay > TimeSpan.Zero)
                {
                    // Let more operations join this commit, until the delay passed or a full batch waits (relaxed: the
                    // delay bounds the documented loss window).
                    var until = Stopwatch.GetTimestamp() + (long)(delay.TotalSeconds * Stopwatch.Frequency);
                    while (!_stopping && PendingCount < _options.MaxBatch && Stopwatch.GetTimestamp() < until)
                    {
                        _signal.Wait(TimeSpan.FromMilliseconds(Math.Max(1, (until - Stopwatch.GetTimestamp()) * 1000.0 / Stopwatch.Frequency)));
                    }
                }
            }

            List<StoreOperation> batch;
            TaskCompletionSource commit;
            lock (_queueLock)
            {
                batch = _pending;
                _pending = _spare;
                _spare = batch;
                commit = _pendingCommit;
                _pendingCommit = NewCommit();
                _writingCommit = commit;
                _writingUpTo = _appended;
            }

            var now = _time.GetUtcNow();
            var alive = now - _aliveWritten >= s_aliveInterval || stopping;
            if (batch.Count > 0 || alive)
            {
                if (Commit(batch, alive ? now : null, out var complete))
                {
                    lock (_queueLock)
                    {
                        if (!complete)
                        {
                            RecordFailedLocked(_committed + 1, _writingUpTo);
                        }
                        _committed = _writingUpTo;
                        _writingCommit = null;
                    }
                    batch.Clear();
                    if (complete)
                    {
                        commit.TrySetResult();
                    }
                    else
                    {
                        commit.TrySetException(new StoreUnavailableException($"state database {Path} is full"));
                    }
                }
                else
                {
                    lock (_queueLock)
                    {
                        // Retried first, before anything appended meanwhile: order is kept.
                        batch.AddRange(_pending);
                        (_pending, _spare) = (batch, _pending);
                        _spare.Clear();
                        _writingCommit = null;
                    }
                    commit.TrySetException(new StoreUnavailableException($"state database {Path} cannot be written"));
                }
            }
            else
            {
                lock (_queueLock)
                {
                    _writingCommit = null;
                }
                commit.TrySetResult();
            }

            if (stopping)
            {
                TaskCompletionSource last;
                lock (_queueLock)
                {
                    last = _pendingCommit;
                }
                last.TrySetException(new StoreUnavailableException($"state database {Path} is closed"));
                return;
            }
        }
    }

    /// <summary>Writes a batch. On a full database (SQLITE_FULL: disk full or Storage:MaxSizeMegabytes) the batch is
    /// written again operation by operation, each in a savepoint, keeping what fits: deletions (PUBACK, PUBCOMP,
    /// expiry) free space and must not be held back by the insert that did not fit. The batch's waiters are told it
    /// failed (their publishers get 0x97 and publish again), so nothing not stored is acknowledged. Returns false when
    /// nothing was written and the batch must be retried.</summary>
    private bool Commit(List<StoreOperation> batch, DateTimeOffset? alive, out bool complete)
    {
        var clock = Stopwatch.GetTimestamp();
        complete = false;
        try
        {
            Write(batch, alive, salvage: false);
            complete = true;
            if (!_writable)
            {
                _writable = true;
                StorageLog.WritesRecovered(_logger, Path, batch.Count);
            }
            if (batch.Count > 0)
            {
                StorageLog.Committed(_logger, batch.Count, Stopwatch.GetElapsedTime(clock).TotalMilliseconds);
            }
            return true;
        }
        catch (SqliteException ex)
        {
            if (_writable)
            {
                _writable = false;
                StorageLog.WriteFailed(_logger, Path, ex.SqliteErrorCode, ex.Message, batch.Count);
            }
            if (ex.SqliteErrorCode != SqliteFull)
            {
                return false;
            }
        }
        try
        {
            var dropped = Write(batch, alive, salvage: true);
            StorageLog.Salvaged(_logger, Path, batch.Count - dropped, dropped);
            return true;
        }
        catch (SqliteException)
        {
            return false;
        }
    }

    private int Write(List<StoreOperation> batch, DateTimeOffset? alive, bool salvage)
    {
        if (salvage)
        {
            return Salvage(batch);
        }
        using (var transaction = _connection.BeginTransaction())
        {
            _writer.Begin(transaction);
            foreach (var operation in _coalescer.Coalesce(batch))
            {
                _writer.Apply(operation);
            }
            if (alive is { } now)
            {
                _writer.SaveMeta(SqliteStateReader.LastAliveKey, now.ToUnixTimeMilliseconds());
            }
            transaction.Commit();
        }
        if (alive is { } written)
        {
            _aliveWritten = written;
        }
        return 0;
    }

    /// <summary>One transaction per operation: SQLITE_FULL may roll back a whole transaction, so savepoints cannot
    /// isolate the operation that does not fit. Slow, but only while the database is full.</summary>
    private int Salvage(List<StoreOperation> batch)
    {
        var dropped = 0;
        foreach (var operation in batch)
        {
            try
            {
                using var transaction = _connection.BeginTransaction();
                _writer.Begin(transaction);
                _writer.Apply(operation);
                transaction.Commit();
            }
            catch (Exception ex) when (ex is SqliteException { SqliteErrorCode: SqliteFull } or InvalidOperationException)
            {
                // InvalidOperationException: SQLite already rolled the transaction back itself.
                dropped++;
            }
        }
        return dropped;
    }

    /// <summary>How long a partly written batch is remembered for late waiters, and how many such batches at most.
    /// A waiter asks within moments of its append (its connection's releaser), so both are generous.</summary>
    private static readonly TimeSpan s_failedRangeAge = TimeSpan.FromMinutes(10);
    private const int MaxFailedRanges = 65_536;

    private void RecordFailedLocked(long from, long to)
    {
        var now = Stopwatch.GetTimestamp();
        while (_failedRanges.TryPeek(out var oldest)
            && (_failedRanges.Count >= MaxFailedRanges || Stopwatch.GetElapsedTime(oldest.Timestamp, now) > s_failedRangeAge))
        {
            _failedRanges.Dequeue();
        }
        _failedRanges.Enqueue((from, to, now));
    }

    private bool FailedLocked(long position)
    {
        foreach (var range in _failedRanges)
        {
            if (position >= range.From && position <= range.To)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Completed by the writer thread, outside its locks, with the waiters' continuations run right there: a
    /// waiter releases held acknowledgements (a queue operation and a signal to its connection's writer), and a hop
    /// through the thread pool per commit was a large part of an acknowledgement's latency on a busy machine.</summary>
    private static TaskCompletionSource NewCommit() => new(TaskCreationOptions.None);
}
