using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OmniBroker.Auth.Pki;
using OmniBroker.Auth.Revocation;
using OmniBroker.Host.Configuration;

namespace OmniBroker.Host.Revocation;

/// <summary>Host wiring of revocation checking (configuration section <c>Revocation</c>).</summary>
public static class RevocationHostExtensions
{
    public const string Section = "Revocation";

    /// <summary>
    /// Registers the revocation checker, CRL refresh and connected-client monitor. With the development PKI, its
    /// CRL files are created/re-issued at start and watched (mode crl-then-ocsp, hard-fail, monitor every 10 s)
    /// unless the <c>Revocation</c> section says otherwise.
    /// </summary>
    /// <exception cref="BrokerConfigurationException">the Revocation section is invalid.</exception>
    public static void AddOmniBrokerRevocation(this WebApplicationBuilder builder, BrokerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(settings);
        try
        {
            if (settings.UsesDevelopmentPki)
            {
                // Registered before the revocation services so the CRL files exist when the CRL store first loads them.
                builder.Services.AddHostedService<DevelopmentCrlPublisher>();
                builder.Services.AddOmniBrokerRevocation(builder.Configuration.GetSection(Section),
                    o => o.UseDevelopmentPki(DevelopmentPkiRevocation.CrlPaths(settings.DevelopmentPkiDirectory)));
            }
            else
            {
                builder.Services.AddOmniBrokerRevocation(builder.Configuration.GetSection(Section));
            }
        }
        catch (RevocationConfigurationException ex)
        {
            throw new BrokerConfigurationException(ex.Errors);
        }
    }
}

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
        _logger = loggers.CreateLogger("OmniBroker.Host.Revocation");
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
