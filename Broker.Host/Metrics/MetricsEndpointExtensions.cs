using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using OmniBroker.Auth;
using OmniBroker.Auth.Revocation;

namespace OmniBroker.Host.Metrics;

public static class MetricsEndpointExtensions
{
    /// <summary>Registers the OpenTelemetry meter provider, the Prometheus pull exporter, the handshake observer
    /// that counts the MQTT listener's TLS handshakes and the revocation observer (OCSP, caches, CRL refreshes); options from the "Metrics" section when
    /// <paramref name="configuration"/> is given. Call before the service provider is built.</summary>
    public static IServiceCollection AddOmniBrokerMetrics(this IServiceCollection services, IConfiguration? configuration = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<MetricsOptions>();
        if (configuration is not null)
        {
            options.Bind(configuration.GetSection(MetricsOptions.SectionName));
        }

        services.TryAddSingleton<MetricsHost>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHandshakeObserver, MetricsHandshakeObserver>());
        services.TryAddSingleton<IRevocationObserver, MetricsRevocationObserver>();
        return services;
    }

    /// <summary>Maps GET <paramref name="pattern"/> (default: Metrics:Path, "/metrics") to the Prometheus text
    /// exposition 0.0.4. Resolving the meter provider here starts it before the listeners accept anything.</summary>
    public static IEndpointConventionBuilder MapPrometheusMetrics(this IEndpointRouteBuilder endpoints, string? pattern = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var host = endpoints.ServiceProvider.GetRequiredService<MetricsHost>();
        return endpoints.MapGet(pattern ?? host.Options.Path, () =>
        {
            var body = host.Scrape();
            return body is null
                ? Results.Text("metrics collection timed out\n", "text/plain; charset=utf-8", statusCode: StatusCodes.Status503ServiceUnavailable)
                : Results.Bytes(body, PrometheusTextWriter.ContentType);
        }).WithDisplayName("Prometheus metrics");
    }
}
