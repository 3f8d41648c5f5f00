using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OmniBroker.Auth.Revocation;

namespace OmniBroker.Auth.Pki;

/// <summary>Keeps the development PKI's CRL files present and current: at start, then every hour.</summary>
internal sealed class DevelopmentCrlPublisher : BackgroundService
{
    private readonly DevelopmentPki? _pki;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public DevelopmentCrlPublisher(IServiceProvider services, TimeProvider time, ILoggerFactory loggers)
    {
        _pki = services.GetService<DevelopmentPki>();
        _time = time;
        _logger = loggers.CreateLogger("OmniBroker.Auth.Revocation");
    }

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        Publish();
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using PeriodicTimer timer = new(TimeSpan.FromHours(1), _time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                Publish();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutdown, including the one after a failed start (no StopAsync then): not an error.
        }
    }

    private void Publish()
    {
        if (_pki is null)
        {
            return;
        }

        try
        {
            DevelopmentPkiRevocation.EnsureCrls(_pki, _time);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            RevocationLog.CrlFileUnreadable(_logger, DevelopmentPkiRevocation.IntermediateCrlPath(_pki.Directory), $"cannot publish the development CRLs: {ex.Message}");
        }
    }
}
