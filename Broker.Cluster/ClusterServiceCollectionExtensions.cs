using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OmniBroker.Mqtt.Engine;

namespace OmniBroker.Cluster;

public static class ClusterServiceCollectionExtensions
{
    /// <summary>Registers the <see cref="ClusterNode"/> and starts it with the host. Register it before the state
    /// restore so that restored subscriptions are announced to the cluster.</summary>
    public static IServiceCollection AddOmniBrokerCluster(this IServiceCollection services, ClusterOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        services.AddSingleton(options);
        services.AddSingleton(sp => new ClusterNode(options, sp.GetRequiredService<MqttBroker>(), sp.GetRequiredService<ILoggerFactory>(),
            sp.GetService<TimeProvider>(), sp.GetService<System.Diagnostics.Metrics.IMeterFactory>(), sp.GetService<Replica.SessionReplica>()));
        services.AddHostedService(sp => new ClusterHostedService(sp.GetRequiredService<ClusterNode>()));
        return services;
    }

    private sealed class ClusterHostedService(ClusterNode node) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => node.StartAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => node.StopAsync();
    }
}
