using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OmniBroker.Mqtt.Abstractions;
using System.Diagnostics.Metrics;
using OmniBroker.Mqtt.Diagnostics;
using OmniBroker.Policy.Diagnostics;
using OmniBroker.Policy.Hosting;

namespace OmniBroker.Policy;

public static class PolicyServiceCollectionExtensions
{
    /// <summary>Registers the policy authorizer (<see cref="PolicyAuthorizer"/>, also as <see cref="IMqttAuthorizer"/>,
    /// replacing any earlier authorizer, with its <see cref="PolicyMetrics"/>) and the hosted service that reloads it on file change and SIGHUP.
    /// The policy is loaded when first resolved (at the latest when hosted services start); an invalid policy
    /// throws <see cref="PolicyLoadException"/> listing every error, which fails start-up.</summary>
    public static IServiceCollection AddOmniBrokerPolicy(this IServiceCollection services, string policyDirectory) =>
        services.AddOmniBrokerPolicy(options => options.Directory = policyDirectory);

    /// <summary>As <see cref="AddOmniBrokerPolicy(IServiceCollection, string)"/>, with options bound from the
    /// "Policy" section (Directory, ReloadDebounce, WatchFiles, ReloadOnSighup).</summary>
    public static IServiceCollection AddOmniBrokerPolicy(this IServiceCollection services, IConfiguration configuration) =>
        services.AddOmniBrokerPolicy(options => configuration.GetSection(PolicyOptions.SectionName).Bind(options));

    /// <summary>Options bound from the "Policy" section, with the directory as the host resolved it (absolute path,
    /// default applied).</summary>
    public static IServiceCollection AddOmniBrokerPolicy(this IServiceCollection services, IConfiguration configuration, string policyDirectory) =>
        services.AddOmniBrokerPolicy(options =>
        {
            configuration.GetSection(PolicyOptions.SectionName).Bind(options);
            options.Directory = policyDirectory;
        });

    public static IServiceCollection AddOmniBrokerPolicy(this IServiceCollection services, Action<PolicyOptions> configure)
    {
        services.AddOptions<PolicyOptions>().Configure(configure);
        services.TryAddSingleton(sp => PolicyAuthorizer.Load(
            sp.GetRequiredService<IOptions<PolicyOptions>>().Value.Directory,
            sp.GetService<ILogger<PolicyAuthorizer>>(),
            sp.GetRequiredService<PolicyMetrics>()));
        services.TryAddSingleton(sp => new PolicyMetrics(sp.GetService<IMeterFactory>()));
        services.AddSingleton<IPrimedMetrics>(sp => sp.GetRequiredService<PolicyMetrics>());
        services.Replace(ServiceDescriptor.Singleton<IMqttAuthorizer>(sp => sp.GetRequiredService<PolicyAuthorizer>()));
        services.AddHostedService<PolicyReloadService>();
        return services;
    }
}
