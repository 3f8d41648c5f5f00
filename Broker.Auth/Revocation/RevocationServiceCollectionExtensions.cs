using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OmniBroker.Auth.Pki;

namespace OmniBroker.Auth.Revocation;

/// <summary>The revocation parts wired together (used by DI, tests and benchmarks alike).</summary>
internal sealed class RevocationRuntime : IDisposable
{
    private readonly bool _ownsHttp;

    public RevocationRuntime(RevocationOptions options, ILoggerFactory? loggerFactory = null, TimeProvider? time = null,
        HttpClient? http = null, IRevocationObserver? observer = null, IConnectedIdentityRegistry? registry = null,
        IServiceProvider? services = null)
    {
        loggerFactory ??= NullLoggerFactory.Instance;
        time ??= TimeProvider.System;
        _ownsHttp = http is null;
        Http = http ?? HttpBodyReader.CreateClient();
        Options = options;
        Logger = loggerFactory.CreateLogger("OmniBroker.Auth.Revocation");
        Metrics = new RevocationMetrics(observer, services?.GetService(typeof(System.Diagnostics.Metrics.IMeterFactory)) as System.Diagnostics.Metrics.IMeterFactory);
        Crls = new CrlStore(options, Http, Metrics, Logger, time, services is null ? null : () => ConfiguredCas(services));
        OcspCache = new OcspCache(options);
        Ocsp = new OcspClient(Http, options, Metrics, Logger, time);
        Checker = new RevocationChecker(options, Crls, OcspCache, Ocsp, Metrics, Logger, time);
        Monitor = new RevocationMonitor(Checker, options, services, registry, Metrics, Logger, time);
        Fetcher = new CrlFetcher(Crls, options, time);
    }

    public RevocationOptions Options { get; }

    /// <summary>The trust anchors and configured intermediates: CRL files they sign are verified at load.</summary>
    private static IEnumerable<System.Security.Cryptography.X509Certificates.X509Certificate2> ConfiguredCas(IServiceProvider services) =>
        services.GetService<TrustStore>() is { } trust ? [.. trust.Anchors, .. trust.Intermediates] : [];

    public HttpClient Http { get; }

    public ILogger Logger { get; }

    public RevocationMetrics Metrics { get; }

    public CrlStore Crls { get; }

    public OcspCache OcspCache { get; }

    public OcspClient Ocsp { get; }

    public RevocationChecker Checker { get; }

    public RevocationMonitor Monitor { get; }

    public CrlFetcher Fetcher { get; }

    public void Dispose()
    {
        Monitor.Dispose();
        Fetcher.Dispose();
        Crls.Dispose();
        Metrics.Dispose();
        if (_ownsHttp)
        {
            Http.Dispose();
        }
    }
}

public static class RevocationServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="IRevocationChecker"/>, <see cref="RevocationMetrics"/> and the background services
    /// (CRL refresh, connected-client monitor), configured from <paramref name="section"/> (the
    /// <c>Revocation</c> section; see <see cref="RevocationOptionsLoader"/> for the keys). <paramref name="defaults"/>
    /// runs first, so explicit configuration wins over it (e.g. <c>o => o.UseDevelopmentPki(crlFiles)</c>).
    /// Throws <see cref="RevocationConfigurationException"/> listing every configuration error.
    /// The monitor finds the <see cref="IConnectedIdentityRegistry"/> in the container when it runs.
    /// </summary>
    public static IServiceCollection AddOmniBrokerRevocation(this IServiceCollection services, IConfiguration section,
        Action<RevocationOptions>? defaults = null)
    {
        RevocationOptions options = new();
        defaults?.Invoke(options);
        RevocationOptionsLoader.Load(section, options);

        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(options);
        services.AddSingleton(sp => new RevocationRuntime(options, sp.GetService<ILoggerFactory>(), sp.GetRequiredService<TimeProvider>(),
            http: null, observer: sp.GetService<IRevocationObserver>(), registry: null, services: sp));
        services.AddSingleton(sp => sp.GetRequiredService<RevocationRuntime>().Metrics);
        services.AddSingleton<OmniBroker.Mqtt.Diagnostics.IPrimedMetrics>(sp => sp.GetRequiredService<RevocationMetrics>());
        services.AddSingleton<IRevocationChecker>(sp => sp.GetRequiredService<RevocationRuntime>().Checker);
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<RevocationRuntime>().Fetcher);
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<RevocationRuntime>().Monitor);
        return services;
    }

    /// <summary>
    /// <see cref="AddOmniBrokerRevocation"/> for the development PKI in <paramref name="pkiDirectory"/>: its CRL files
    /// are created or re-issued at start and every hour, and watched (mode crl-then-ocsp, hard-fail, monitor every
    /// 10 s) unless <paramref name="section"/> says otherwise.
    /// </summary>
    public static IServiceCollection AddDevelopmentPkiRevocation(this IServiceCollection services, IConfiguration section, string pkiDirectory)
    {
        // Registered before the revocation services so the CRL files exist when the CRL store first loads them.
        services.AddHostedService<DevelopmentCrlPublisher>();
        return services.AddOmniBrokerRevocation(section, o => o.UseDevelopmentPki(DevelopmentPkiRevocation.CrlPaths(pkiDirectory)));
    }
}
