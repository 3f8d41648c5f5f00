using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OmniBroker.Mqtt.Diagnostics;
using OpenTelemetry.Metrics;

namespace OmniBroker.Host.Metrics;

public static class MetricsEndpointExtensions
{
    /// <summary>Every meter whose name starts with "OmniBroker." is exported: a component adds its meter class
    /// (created from IMeterFactory, named "OmniBroker.Component") and nothing here changes.</summary>
    public const string MeterNamePattern = "OmniBroker.*";

    /// <summary>Registers the OpenTelemetry meter provider listening to <see cref="MeterNamePattern"/> with the
    /// Prometheus exporter, and the host's <see cref="AdminMetrics"/>; options from the "Metrics" section when
    /// <paramref name="configuration"/> is given. Call before the service provider is built.</summary>
    public static IServiceCollection AddOmniBrokerMetrics(this IServiceCollection services, IConfiguration? configuration = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<MetricsOptions>();
        if (configuration is not null)
        {
            options.Bind(configuration.GetSection(MetricsOptions.SectionName));
        }

        services.TryAddSingleton<AdminMetrics>();
        services.AddSingleton<IPrimedMetrics>(sp => sp.GetRequiredService<AdminMetrics>());
        services.AddOpenTelemetry().WithMetrics(metrics =>
        {
            metrics
                .AddMeter(MeterNamePattern)
                // Every scrape collects afresh: a cached answer would hide a just-counted event from a scrape that follows it.
                .AddPrometheusExporter(exporter => exporter.ScrapeResponseCacheDurationMilliseconds = 0);
            // Only this host's meters (from its IMeterFactory) and process-wide static ones: a meter listener sees every
            // meter of the process, and a second host in the same process (tests, an embedding application) would
            // otherwise share metric streams with this one: gauges overwritten by the other host's values, and
            // streams ended when the other host disposes its meters.
            ((IDeferredMeterProviderBuilder)metrics).Configure((sp, builder) =>
            {
                var factory = sp.GetRequiredService<IMeterFactory>();
                builder.AddView(instrument => instrument.Meter.Scope is null || ReferenceEquals(instrument.Meter.Scope, factory)
                    ? null
                    : MetricStreamConfiguration.Drop);
            });
        });
        return services;
    }

    /// <summary>Maps GET <paramref name="pattern"/> (default: Metrics:Path, "/metrics") to the Prometheus exposition.
    /// Builds the meter provider (before the listeners start, so no measurement of the first connections is missed)
    /// and then primes every registered <see cref="IPrimedMetrics"/>, so their zero-valued series exist from the first
    /// scrape.</summary>
    public static IEndpointConventionBuilder MapPrometheusMetrics(this IEndpointRouteBuilder endpoints, string? pattern = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var services = endpoints.ServiceProvider;
        services.GetRequiredService<MeterProvider>();
        foreach (var metrics in services.GetServices<IPrimedMetrics>())
        {
            metrics.PrimeSeries();
        }

        var path = pattern ?? services.GetRequiredService<IOptions<MetricsOptions>>().Value.Path;
        return endpoints.MapPrometheusScrapingEndpoint(path).WithDisplayName("Prometheus metrics");
    }
}
