using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OmniBroker.Host.Metrics;

namespace OmniBroker.Tests.Metrics;

/// <summary>
/// The host's metrics wiring alone (<see cref="MetricsEndpointExtensions.AddOmniBrokerMetrics"/> and
/// <see cref="MetricsEndpointExtensions.MapPrometheusMetrics"/>: OpenTelemetry's Prometheus exporter) on a real
/// Kestrel listener on 127.0.0.1, for tests that drive the components' meter classes directly and read them back
/// through a real HTTP scrape. The meter provider listens to every "OmniBroker.*" meter of the process, so tests
/// running concurrently may add to counters: compare before and after, and allow for more.
/// </summary>
internal sealed class MetricsScrapeHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private MetricsScrapeHost(WebApplication app, HttpClient http)
    {
        _app = app;
        Http = http;
    }

    public IServiceProvider Services => _app.Services;

    public HttpClient Http { get; }

    /// <summary>Starts the endpoint; <paramref name="configure"/> registers the meter classes under test (as
    /// <c>IPrimedMetrics</c> too when their zero series matter).</summary>
    public static async Task<MetricsScrapeHost> StartAsync(Action<IServiceCollection>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        builder.Services.AddOmniBrokerMetrics();
        configure?.Invoke(builder.Services);
        var app = builder.Build();
        app.MapPrometheusMetrics();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new MetricsScrapeHost(app, new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromSeconds(30) });
    }

    public async Task<string> ScrapeTextAsync() => await Http.GetStringAsync("/metrics");

    public async Task<Exposition> ScrapeAsync() => Exposition.Parse(await ScrapeTextAsync());

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
