using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OmniBroker.Mqtt.Diagnostics;
using System.Diagnostics.Metrics;
using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Mqtt.Engine;

public static class MqttBrokerServiceCollectionExtensions
{
    /// <summary>Registers the singleton <see cref="MqttBroker"/> and <see cref="MqttConnectionHandler"/>
    /// (use it with <c>listenOptions.UseConnectionHandler&lt;MqttConnectionHandler&gt;()</c>).
    /// The <see cref="IMqttAuthorizer"/> is taken from DI when registered, else <see cref="AllowAllAuthorizer.Instance"/>;
    /// an <see cref="ISessionStore"/> when registered makes persistent sessions durable.</summary>
    public static IServiceCollection AddMqttBroker(this IServiceCollection services, Action<MqttBrokerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<MqttBrokerOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }
        services.TryAddSingleton(sp => new MqttBroker(
            sp.GetRequiredService<IOptions<MqttBrokerOptions>>().Value,
            sp.GetService<IMqttAuthorizer>() ?? AllowAllAuthorizer.Instance,
            sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance,
            sp.GetService<TimeProvider>() ?? TimeProvider.System,
            sp.GetRequiredService<MqttMetrics>(),
            sp.GetService<ISessionStore>()));
        services.TryAddSingleton(sp => new MqttMetrics(sp.GetService<IMeterFactory>()));
        services.AddSingleton<IPrimedMetrics>(sp => sp.GetRequiredService<MqttMetrics>());
        services.TryAddSingleton<MqttConnectionHandler>();
        return services;
    }
}
