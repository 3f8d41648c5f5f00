using Microsoft.Extensions.Logging;

namespace OmniBroker.Storage;

/// <summary>Storage log messages; event ids 1450-1499 are stable.</summary>
internal static partial class StorageLog
{
    [LoggerMessage(1450, LogLevel.Information, "State database {Path} opened ({Durability} durability)")]
    public static partial void Opened(ILogger logger, string path, string durability);

    [LoggerMessage(1451, LogLevel.Error, "State database {Path} cannot be written (SQLite error {Code}: {Message}); {Count} changes kept in memory and retried, new QoS 1/2 messages are refused until it recovers")]
    public static partial void WriteFailed(ILogger logger, string path, int code, string message, int count);

    [LoggerMessage(1452, LogLevel.Warning, "State database {Path} writable again; {Count} retried changes committed")]
    public static partial void WritesRecovered(ILogger logger, string path, int count);

    [LoggerMessage(1453, LogLevel.Trace, "State commit of {Count} changes in {ElapsedMs} ms")]
    public static partial void Committed(ILogger logger, int count, double elapsedMs);

    [LoggerMessage(1454, LogLevel.Warning, "State database {Path} is full: {Written} changes written, {Dropped} that did not fit were not stored (their publishers were refused with 0x97)")]
    public static partial void Salvaged(ILogger logger, string path, int written, int dropped);
}
