using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using OmniBroker.Auth;
using OmniBroker.Enrollment.Inventory;
using OmniBroker.Enrollment.Issuing;
using OmniBroker.Enrollment.Mqtt;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Policy;

namespace OmniBroker.Enrollment;

public static class EnrollmentServiceCollectionExtensions
{
    /// <summary>
    /// Registers enrollment: the inventory and token store (<paramref name="inventoryPath"/>), the issuing CA, the
    /// <see cref="EnrollmentService"/>, the MQTT renewal handler and the CONNECT-time inventory wrapper around the
    /// <see cref="IMqttAuthorizer"/> registered so far (call it after the policy). <paramref name="bootstrapTrust"/>
    /// null: only token enrollment.
    /// </summary>
    public static IServiceCollection AddOmniBrokerEnrollment(this IServiceCollection services, EstOptions options, IssuingCertificateAuthority ca, string inventoryPath, TrustStore? bootstrapTrust)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddMetrics();
        services.AddSingleton(options);
        services.AddSingleton(ca);
        services.AddSingleton(sp => new SqliteCertificateStore(inventoryPath, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<ICertificateInventory>(sp => sp.GetRequiredService<SqliteCertificateStore>());
        services.AddSingleton<IEnrollmentTokenStore>(sp => sp.GetRequiredService<SqliteCertificateStore>());
        services.AddSingleton(sp => new EnrollmentRateLimiter(options.RatePerIdentityPerMinute, options.RateTotalPerSecond, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new EnrollmentMetrics(sp.GetRequiredService<IMeterFactory>(), sp.GetRequiredService<ICertificateInventory>(), options.ExpiryWarningDays, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new EnrollmentService(
            options,
            ca,
            sp.GetRequiredService<ICertificateInventory>(),
            sp.GetRequiredService<IEnrollmentTokenStore>(),
            sp.GetRequiredService<ClientCertificateValidator>(),
            bootstrapTrust is null ? null : new ClientCertificateValidator(bootstrapTrust, sp.GetRequiredService<TimeProvider>()),
            sp.GetService<IRevocationChecker>(),
            sp.GetService<PolicyAuthorizer>(),
            sp.GetRequiredService<EnrollmentRateLimiter>(),
            sp.GetRequiredService<EnrollmentMetrics>(),
            sp.GetRequiredService<ILogger<EnrollmentService>>()));
        services.AddSingleton<MqttRenewalHandler>();

        // Decorate whatever authorizer is registered (the policy's), keeping its lifetime and factory.
        var inner = services.LastOrDefault(d => d.ServiceType == typeof(IMqttAuthorizer));
        if (inner is not null)
        {
            services.Remove(inner);
            services.AddSingleton<IMqttAuthorizer>(sp => new InventoryMqttAuthorizer(
                Resolve(sp, inner),
                sp.GetRequiredService<ICertificateInventory>(),
                options,
                sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<ILogger<InventoryMqttAuthorizer>>()));
        }
        return services;
    }

    private static IMqttAuthorizer Resolve(IServiceProvider sp, ServiceDescriptor descriptor) =>
        (IMqttAuthorizer)(descriptor.ImplementationInstance
            ?? descriptor.ImplementationFactory?.Invoke(sp)
            ?? ActivatorUtilities.CreateInstance(sp, descriptor.ImplementationType!));
}
