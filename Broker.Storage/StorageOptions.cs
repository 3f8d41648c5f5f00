using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Storage;

public enum StorageMode
{
    /// <summary>SQLite at <see cref="StorageOptions.Path"/> (default &lt;DataDirectory&gt;/state.db).</summary>
    Sqlite,

    /// <summary>Nothing persisted: sessions, queued and retained messages are lost at restart.</summary>
    Memory,
}

public enum StorageSynchronous
{
    Normal,
    Full,
}

/// <summary>The Storage configuration section.</summary>
public sealed class StorageOptions
{
    public const string Section = "Storage";
    public const string FileName = "state.db";

    public StorageMode Mode { get; set; } = StorageMode.Sqlite;

    /// <summary>The database file; empty: &lt;DataDirectory&gt;/state.db.</summary>
    public string? Path { get; set; }

    public StoreDurability Durability { get; set; } = StoreDurability.Strict;

    /// <summary>When a commit reaches the disk. <see cref="StorageSynchronous.Normal"/> (default): a commit is in the WAL
    /// file, which survives a crash or SIGKILL of the broker; the WAL is synced at checkpoints, so an operating-system
    /// crash or power loss can lose the most recent commits. <see cref="StorageSynchronous.Full"/>: every group commit is
    /// synced (fsync) before anything waiting for it is acknowledged, which survives power loss too, at the disk's sync
    /// latency per commit.</summary>
    public StorageSynchronous Synchronous { get; set; } = StorageSynchronous.Normal;

    /// <summary>How long the writer may wait for more operations before a commit. Strict: 0 (a batch is whatever
    /// arrived during the previous commit); relaxed: 100 ms, which is also the loss window on a crash.</summary>
    public TimeSpan? CommitDelay { get; set; }

    /// <summary>Operations per commit at most. Default 4096.</summary>
    public int MaxBatch { get; set; } = 4096;

    /// <summary>Upper bound of the database file in MiB (0: none). Past it writes fail as on a full disk: new QoS 1/2
    /// messages are refused (5.0: 0x97) and the broker keeps serving.</summary>
    public int MaxSizeMegabytes { get; set; }

    public TimeSpan EffectiveCommitDelay => CommitDelay ?? (Durability == StoreDurability.Strict ? TimeSpan.Zero : TimeSpan.FromMilliseconds(100));

    public string ResolvePath(string dataDirectory) =>
        string.IsNullOrWhiteSpace(Path) ? System.IO.Path.Combine(dataDirectory, FileName) : System.IO.Path.GetFullPath(Path.Trim());

    /// <summary>Every problem, each naming its key.</summary>
    public IReadOnlyList<string> GetValidationErrors()
    {
        var errors = new List<string>();
        if (CommitDelay is { } delay && (delay < TimeSpan.Zero || delay > TimeSpan.FromSeconds(10)))
        {
            errors.Add($"{Section}:CommitDelay: {delay} must be between 0 and 10 seconds");
        }
        if (MaxBatch is < 1 or > 1_000_000)
        {
            errors.Add($"{Section}:MaxBatch: {MaxBatch} must be between 1 and 1000000");
        }
        if (MaxSizeMegabytes < 0)
        {
            errors.Add($"{Section}:MaxSizeMegabytes: {MaxSizeMegabytes} must not be negative");
        }
        return errors;
    }
}

/// <summary>The state database cannot be used (corrupt, written by a newer version, not a state database,
/// unreadable). The message names the file; nothing has been written to it.</summary>
public sealed class StateStoreException(string path, string problem, Exception? inner = null)
    : Exception($"state database {path}: {problem}", inner)
{
    public string Path { get; } = path;
}
