using System.Runtime.InteropServices;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace OmniBroker.Policy.Hosting;

/// <summary>Where the policy lives and how it is reloaded. Bound from the "Policy" configuration section.</summary>
public sealed class PolicyOptions
{
    public const string SectionName = "Policy";

    public string Directory { get; set; } = "./policies";

    /// <summary>Quiet time after the last file event before reloading: editors and `git checkout` write in bursts.</summary>
    public TimeSpan ReloadDebounce { get; set; } = TimeSpan.FromMilliseconds(500);

    public bool WatchFiles { get; set; } = true;

    public bool ReloadOnSighup { get; set; } = true;
}

/// <summary>
/// Reloads the policy when its files change (FileSystemWatcher, debounced) and on SIGHUP. Reloads run one at a
/// time on this service's loop, never on the watcher's or the signal's thread.
/// </summary>
internal sealed class PolicyReloadService : BackgroundService
{
    public const string SighupTrigger = "SIGHUP";
    public const string FileTrigger = "file change";

    private readonly PolicyAuthorizer _authorizer;
    private readonly PolicyOptions _options;
    private readonly ILogger _logger;
    private readonly Channel<string> _triggers = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private FileSystemWatcher? _watcher;
    private PosixSignalRegistration? _signal;

    public PolicyReloadService(PolicyAuthorizer authorizer, IOptions<PolicyOptions> options, ILogger<PolicyReloadService> logger)
    {
        _authorizer = authorizer;
        _options = options.Value;
        _logger = logger;
    }

    /// <summary>Asks for a reload; coalesced with other requests that arrive within the debounce time.</summary>
    public void RequestReload(string trigger)
    {
        PolicyLog.PolicyReloadRequested(_logger, trigger);
        _triggers.Writer.TryWrite(trigger);
    }

    /// <summary>Hooks up the watcher and the signal before returning, so that a SIGHUP sent once the host has
    /// started is never met by the default action (terminate). ExecuteAsync runs later, on its own task.</summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        _watcher = _options.WatchFiles ? CreateWatcher() : null;
        _signal = _options.ReloadOnSighup ? RegisterSighup() : null;
        PolicyLog.PolicyWatching(_logger, _authorizer.Directory, _watcher is not null, (int)_options.ReloadDebounce.TotalMilliseconds, _signal is not null);
        return base.StartAsync(cancellationToken);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _watcher?.Dispose();
        _watcher = null;
        await base.StopAsync(cancellationToken).ConfigureAwait(false);

        // Kept until the loop has stopped: a late SIGHUP must still be caught, not terminate the process.
        _signal?.Dispose();
        _signal = null;
    }

    public override void Dispose()
    {
        _watcher?.Dispose();
        _signal?.Dispose();
        base.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var reader = _triggers.Reader;
        try
        {
            while (await reader.WaitToReadAsync(stoppingToken).ConfigureAwait(false))
            {
                var triggers = new SortedSet<string>(StringComparer.Ordinal);
                while (reader.TryRead(out var t))
                {
                    triggers.Add(t);
                }

                // A signal is a deliberate request: answer at once. File events come in bursts: wait for quiet.
                if (!triggers.Contains(SighupTrigger))
                {
                    while (await WaitForMoreAsync(reader, stoppingToken).ConfigureAwait(false))
                    {
                        while (reader.TryRead(out var t))
                        {
                            triggers.Add(t);
                        }
                    }
                }

                Reload(string.Join(", ", triggers));
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task<bool> WaitForMoreAsync(ChannelReader<string> reader, CancellationToken stoppingToken)
    {
        using var quiet = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        quiet.CancelAfter(_options.ReloadDebounce);
        try
        {
            return await reader.WaitToReadAsync(quiet.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private void Reload(string trigger)
    {
        try
        {
            _authorizer.Reload(trigger);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            PolicyLog.PolicyReloadFailed(_logger, ex, trigger, _authorizer.Version.ToString());
        }
    }

    private FileSystemWatcher? CreateWatcher()
    {
        try
        {
            var watcher = new FileSystemWatcher(Path.GetFullPath(_authorizer.Directory))
            {
                IncludeSubdirectories = true,
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite
                    | NotifyFilters.Size | NotifyFilters.CreationTime,
            };

            // Every event counts (not only *.yaml): Kubernetes swaps ConfigMaps by renaming a "..data" symlink.
            // A reload of unchanged content is cheap and a no-op.
            FileSystemEventHandler changed = (_, _) => RequestReload(FileTrigger);
            watcher.Changed += changed;
            watcher.Created += changed;
            watcher.Deleted += changed;
            watcher.Renamed += (_, _) => RequestReload(FileTrigger);
            watcher.Error += (_, e) =>
            {
                PolicyLog.PolicyWatcherError(_logger, e.GetException());
                RequestReload(FileTrigger);
            };
            watcher.EnableRaisingEvents = true;
            return watcher;
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or PlatformNotSupportedException)
        {
            // e.g. the inotify instance limit: keep running on SIGHUP alone.
            PolicyLog.PolicyWatcherError(_logger, ex);
            return null;
        }
    }

    private PosixSignalRegistration? RegisterSighup()
    {
        try
        {
            return PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
            {
                // SIGHUP would otherwise terminate the process.
                context.Cancel = true;
                RequestReload(SighupTrigger);
            });
        }
        catch (PlatformNotSupportedException)
        {
            return null;
        }
    }
}
