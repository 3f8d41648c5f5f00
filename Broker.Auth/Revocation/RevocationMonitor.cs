using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace OmniBroker.Auth.Revocation;

/// <summary>
/// Re-checks every connected identity each <see cref="RevocationOptions.MonitorInterval"/> (and at once when
/// a CRL changes): a certificate of its chain that expired, or a chain that a refreshed CRL or OCSP answer
/// says is revoked, gets <see cref="ConnectedIdentity.Revoke"/>, and the engine disconnects it. An unknown
/// status does not drop anyone: a PKI outage must not empty the broker.
/// </summary>
internal sealed class RevocationMonitor : BackgroundService
{
    private readonly RevocationChecker _checker;
    private readonly RevocationOptions _options;
    private readonly IServiceProvider? _services;
    private readonly RevocationMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly ConditionalWeakTable<ConnectedIdentity, string> _dropped = new();
    private IConnectedIdentityRegistry? _registry;

    public RevocationMonitor(RevocationChecker checker, RevocationOptions options, IServiceProvider? services,
        IConnectedIdentityRegistry? registry, RevocationMetrics metrics, ILogger logger, TimeProvider time)
    {
        _checker = checker;
        _options = options;
        _services = services;
        _registry = registry;
        _metrics = metrics;
        _logger = logger;
        _time = time;
        checker.Crls.Changed += _ => Wake();
    }

    /// <summary>Makes the next pass start now.</summary>
    public void Wake()
    {
        try
        {
            _wake.Release();
        }
        catch (SemaphoreFullException)
        {
            // a pass is already requested
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RunOnceAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                // One failed pass must not end live revocation for the life of the process.
                RevocationLog.MonitorFailed(_logger, ex);
            }

            try
            {
                await _wake.WaitAsync(_options.MonitorInterval, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>One pass over the connected identities; returns how many were dropped.</summary>
    public async Task<int> RunOnceAsync(CancellationToken cancellationToken)
    {
        _registry ??= _services?.GetService<IConnectedIdentityRegistry>();
        DateTimeOffset now = _time.GetUtcNow();
        int dropped = 0;
        int checkedCount = 0;
        if (_registry is not null)
        {
            IReadOnlyCollection<ConnectedIdentity> identities = _registry.Snapshot();
            checkedCount = identities.Count;
            ParallelOptions parallel = new() { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken };
            await Parallel.ForEachAsync(identities, parallel, async (identity, token) =>
            {
                if (await CheckOneAsync(identity, now, token).ConfigureAwait(false))
                {
                    Interlocked.Increment(ref dropped);
                }
            }).ConfigureAwait(false);
        }

        _checker.OcspCache.Purge(now);
        RevocationLog.MonitorPass(_logger, checkedCount, dropped);
        return dropped;
    }

    private async Task<bool> CheckOneAsync(ConnectedIdentity identity, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (_dropped.TryGetValue(identity, out _))
        {
            return false;
        }

        IReadOnlyList<X509Certificate2> chain = identity.Chain;
        if (chain.Count == 0)
        {
            return false;
        }

        foreach (X509Certificate2 cert in chain)
        {
            if (CertificateRevocationInfo.Get(cert).NotAfter < now)
            {
                string what = ReferenceEquals(cert, chain[0]) ? "certificate" : $"issuing certificate '{cert.Subject}'";
                Drop(identity, chain[0], "expired", $"{what} expired {CertificateRevocationInfo.Get(cert).NotAfter:O}");
                return true;
            }
        }

        RevocationCheckResult result = await _checker.CheckAsync(chain, RevocationCheckPurpose.Monitor, cancellationToken).ConfigureAwait(false);
        if (result.Status == RevocationStatus.Revoked)
        {
            Drop(identity, chain[0], "revoked", result.Detail);
            return true;
        }

        return false;
    }

    private void Drop(ConnectedIdentity identity, X509Certificate2 leaf, string reason, string detail)
    {
        if (!_dropped.TryAdd(identity, reason))
        {
            return;
        }

        _metrics.ConnectionDropped(expired: reason == "expired");
        RevocationLog.ConnectionDropped(_logger, leaf.Subject, CertificateRevocationInfo.Get(leaf).SerialHex, reason, detail);
        identity.Revoke(reason);
    }
}

/// <summary>Runs the CRL store's background work: file watching/polling and distribution point refreshes.</summary>
internal sealed class CrlFetcher : BackgroundService
{
    private static readonly TimeSpan s_minimumWait = TimeSpan.FromMilliseconds(200);
    private readonly CrlStore _store;
    private readonly RevocationOptions _options;
    private readonly TimeProvider _time;

    public CrlFetcher(CrlStore store, RevocationOptions options, TimeProvider time)
    {
        _store = store;
        _options = options;
        _time = time;
    }

    /// <summary>Loads the CRL files before the host starts its listeners (hosted services start before the server):
    /// no device is checked against CRLs that are not loaded yet.</summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        _store.StartWatching();
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            DateTimeOffset next;
            try
            {
                next = await _store.RefreshDueAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }

            TimeSpan wait = next - _time.GetUtcNow();
            if (wait < s_minimumWait)
            {
                wait = s_minimumWait;
            }
            else if (wait > _options.CrlFilePollInterval)
            {
                wait = _options.CrlFilePollInterval;
            }

            try
            {
                if (await _store.WakeSignal.WaitAsync(wait, stoppingToken).ConfigureAwait(false))
                {
                    while (_store.WakeSignal.Wait(0))
                    {
                        // coalesce a burst of file events or registrations into one refresh
                    }
                }
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }
}
