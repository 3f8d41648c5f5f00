using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OmniBroker.Auth.Revocation;
using OmniBroker.Mqtt.Diagnostics;
using OmniBroker.Mqtt.Engine;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace OmniBroker.Host.Metrics;

/// <summary>
/// The host's OpenTelemetry <see cref="MeterProvider"/> listening to <see cref="BrokerMetrics.Meter"/>, read only by
/// the pull exporter, plus the registrations of the observable gauges' data sources (the engine, and every
/// <see cref="IBrokerStateSource"/>, <see cref="IPolicyStateSource"/>, <see cref="ICrlStateSource"/> or
/// <see cref="ICertificateExpirySource"/> in DI). Created when the endpoint is mapped, i.e. before the listeners
/// start, so no measurement of the first connections is missed. Disposed with the host.
/// </summary>
internal sealed class MetricsHost : IDisposable
{
    private readonly MeterProvider _provider;
    private readonly List<IDisposable> _registrations = [];

    public MetricsHost(IServiceProvider services, IOptions<MetricsOptions> options)
        : this(options.Value, CollectSources(services))
    {
    }

    internal MetricsHost(MetricsOptions options, IEnumerable<object> sources, params string[] extraMeters)
    {
        Options = options;
        Exporter = new PrometheusPullExporter();
        _provider = Sdk.CreateMeterProviderBuilder()
            .AddMeter([BrokerMetrics.MeterName, .. extraMeters])
            // Instruments carry InstrumentAdvice bucket bounds; this view pins them for any second-based
            // histogram without advice so no histogram falls back to OpenTelemetry's millisecond defaults.
            .AddView(instrument => instrument.Unit == "s" && instrument.GetType().Name.StartsWith("Histogram", StringComparison.Ordinal)
                ? new ExplicitBucketHistogramConfiguration { Boundaries = [.. BrokerMetrics.LatencyBucketsSeconds] }
                : null)
            .AddReader(new BaseExportingMetricReader(Exporter))
            .Build();

        foreach (var source in sources.Distinct(ReferenceEqualityComparer.Instance))
        {
            _registrations.Add(BrokerMetrics.RegisterSource(source!));
        }

        BrokerMetrics.PrimeSeries();
    }

    public MetricsOptions Options { get; }

    public PrometheusPullExporter Exporter { get; }

    /// <summary>The exposition, or null when the collection timed out.</summary>
    public byte[]? Scrape() => Exporter.Scrape((int)Math.Clamp(Options.CollectTimeout.TotalMilliseconds, 1, int.MaxValue));

    private static IEnumerable<object> CollectSources(IServiceProvider services)
    {
        var list = new List<object>();
        if (services.GetService<MqttBroker>() is { } broker)
        {
            list.Add(new MqttBrokerMetricsSource(broker));
        }

        if (services.GetService<RevocationMetrics>() is { } revocation)
        {
            list.Add(new RevocationCrlStateSource(revocation));
        }

        list.AddRange(services.GetServices<IBrokerStateSource>());
        list.AddRange(services.GetServices<IPolicyStateSource>());
        list.AddRange(services.GetServices<ICrlStateSource>());
        list.AddRange(services.GetServices<ICertificateExpirySource>());
        return list;
    }

    public void Dispose()
    {
        foreach (var r in _registrations)
        {
            r.Dispose();
        }

        _provider.Dispose();
    }
}

/// <summary>Engine state and connected certificates for the observable gauges.</summary>
internal sealed class MqttBrokerMetricsSource(MqttBroker broker) : IBrokerStateSource, ICertificateExpirySource
{
    private readonly ConnectedClientsExpirySource _expiries = new(broker.GetConnectedClients);

    public long SessionCount => broker.SessionCount;

    public long SubscriptionCount => broker.SubscriptionCount;

    public long RetainedMessageCount => broker.RetainedMessageCount;

    public IEnumerable<DateTimeOffset> GetConnectedCertificateExpiries() => _expiries.GetConnectedCertificateExpiries();
}

/// <summary>notAfter of every connected client's certificate, from a snapshot of the connected clients.</summary>
internal sealed class ConnectedClientsExpirySource(Func<IReadOnlyList<ConnectedClientInfo>> snapshot) : ICertificateExpirySource
{
    public IEnumerable<DateTimeOffset> GetConnectedCertificateExpiries()
    {
        foreach (var client in snapshot())
        {
            if (client.Certificate is { } cert)
            {
                // NotAfter is local time (Kind=Local); the offset constructor keeps the instant.
                yield return new DateTimeOffset(cert.NotAfter);
            }
        }
    }
}
