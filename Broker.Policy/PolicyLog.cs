using Microsoft.Extensions.Logging;

namespace OmniBroker.Policy;

/// <summary>Policy log events; ids 3000-3099 are reserved for Broker.Policy.</summary>
internal static partial class PolicyLog
{
    [LoggerMessage(EventId = 3000, Level = LogLevel.Information,
        Message = "Policy {Version} loaded from {Directory}: {FileCount} files, {RuleCount} rules")]
    public static partial void PolicyLoaded(ILogger logger, string version, string directory, int fileCount, int ruleCount);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Error,
        Message = "Policy reload ({Trigger}) rejected with {ErrorCount} errors; policy {Version} stays in force")]
    public static partial void PolicyReloadRejected(ILogger logger, string trigger, int errorCount, string version);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Error, Message = "Policy error: {Error}")]
    public static partial void PolicyError(ILogger logger, string error);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Information,
        Message = "Policy {Version} applied ({Trigger}), replacing {OldVersion}: {FileCount} files, {RuleCount} rules")]
    public static partial void PolicyApplied(ILogger logger, string version, string trigger, string oldVersion, int fileCount, int ruleCount);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Debug,
        Message = "Policy reload ({Trigger}): files unchanged, policy {Version} stays in force")]
    public static partial void PolicyUnchanged(ILogger logger, string trigger, string version);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Debug, Message = "Policy reload requested ({Trigger})")]
    public static partial void PolicyReloadRequested(ILogger logger, string trigger);

    [LoggerMessage(EventId = 3006, Level = LogLevel.Warning,
        Message = "Policy directory watcher failed; reloading to catch up, and SIGHUP still reloads")]
    public static partial void PolicyWatcherError(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 3007, Level = LogLevel.Error, Message = "A PolicyChanged subscriber failed")]
    public static partial void PolicyChangedHandlerFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 3008, Level = LogLevel.Information,
        Message = "Watching {Directory} for policy changes (file watch: {Watch}, debounce {DebounceMs} ms, SIGHUP: {Sighup})")]
    public static partial void PolicyWatching(ILogger logger, string directory, bool watch, int debounceMs, bool sighup);

    [LoggerMessage(EventId = 3009, Level = LogLevel.Error, Message = "Policy reload ({Trigger}) failed unexpectedly; policy {Version} stays in force")]
    public static partial void PolicyReloadFailed(ILogger logger, Exception exception, string trigger, string version);
}
