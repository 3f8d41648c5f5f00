using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using OmniBroker.Auth.Diagnostics;
using OmniBroker.Mqtt.Diagnostics;

namespace OmniBroker.Auth;

public static class AuthServiceCollectionExtensions
{
    /// <summary>
    /// Registers client-certificate authentication against <paramref name="trust"/>: the cached
    /// <see cref="ClientCertificateValidator"/>, the <see cref="IConnectedIdentityRegistry"/> (with its expiry timer)
    /// the <see cref="TlsMetrics"/> and the connection-level authenticator. An <see cref="IRevocationChecker"/> and any <see cref="IHandshakeObserver"/>s
    /// registered in DI are used when present.
    /// </summary>
    public static IServiceCollection AddClientCertificateAuthentication(this IServiceCollection services, TrustStore trust)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(trust);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(trust);
        services.TryAddSingleton(sp =>
        {
            var store = sp.GetRequiredService<TrustStore>();
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("OmniBroker.Auth.Trust");
            AuthLog.TrustConfigured(logger, store.Anchors.Count, string.Join("; ", store.Anchors.Select(a => a.Subject)), store.Intermediates.Count);
            return new ClientCertificateValidator(store, sp.GetRequiredService<TimeProvider>());
        });
        services.TryAddSingleton<ConnectedIdentityRegistry>();
        services.TryAddSingleton<IConnectedIdentityRegistry>(sp => sp.GetRequiredService<ConnectedIdentityRegistry>());
        services.TryAddSingleton(sp => new TlsMetrics(sp.GetService<IMeterFactory>(), sp.GetRequiredService<ConnectedIdentityRegistry>(),
            sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<IPrimedMetrics>(sp => sp.GetRequiredService<TlsMetrics>());
        services.TryAddSingleton(sp => new ClientCertificateAuthenticator(
            sp.GetRequiredService<ClientCertificateValidator>(),
            sp.GetRequiredService<ConnectedIdentityRegistry>(),
            sp.GetService<IRevocationChecker>(),
            sp.GetServices<IHandshakeObserver>().Prepend(sp.GetRequiredService<TlsMetrics>()),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetService<ILogger<ClientCertificateAuthenticator>>()));
        return services;
    }

    /// <summary>
    /// Registers the <see cref="OmniBroker.Mqtt.Abstractions.IRestoredIdentityValidator"/> that re-checks a restored
    /// session's certificate as a handshake would (chain, validity, key usage, then revocation when an
    /// <see cref="IRevocationChecker"/> is registered). Needs <see cref="AddClientCertificateAuthentication"/>.
    /// </summary>
    public static IServiceCollection AddRestoredCertificateValidation(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddSingleton<OmniBroker.Mqtt.Abstractions.IRestoredIdentityValidator, Revocation.RestoredCertificateValidator>();
        return services;
    }
}
