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
/// the pull exporter, plus the registration of the observable gauges' data sources (<see cref="ServiceSources"/>).
/// Created when the endpoint is mapped, i.e. before the listeners start, so no measurement of the first
/// connections is missed. Disposed with the host.
/// </summary>
internal sealed class MetricsHost : IDisposable
{
    private readonly MeterProvider _provider;
    private readonly List<IDisposable> _registrations = [];

    public MetricsHost(IServiceProvider services, IOptions<MetricsOptions> options)
        : this(options.Value, [new ServiceSources(services)])
    {
    }

    internal MetricsHost(MetricsOptions options, IEnumerable<object> sources)
    {
        Options = options;
        Exporter = new PrometheusPullExporter();
        // Histogram bounds come from each instrument's InstrumentAdvice (BrokerMetrics.LatencyBucketsSeconds).
        _provider = Sdk.CreateMeterProviderBuilder()
            .AddMeter(BrokerMetrics.MeterName)
            .AddMeter(OmniBroker.Enrollment.EnrollmentMetrics.MeterName)
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

    public void Dispose()
    {
        foreach (var r in _registrations)
        {
            r.Dispose();
        }

        _provider.Dispose();
    }
}

/// <summary>
/// The gauges' sources from DI: the engine, the revocation CRL store, and every <see cref="IBrokerStateSource"/>,
/// <see cref="IPolicyStateSource"/>, <see cref="ICrlStateSource"/> and <see cref="ICertificateExpirySource"/> registered.
/// Resolved at the first scrape, not when the endpoint is mapped: resolving the policy loads it, and a broken policy
/// must fail start-up with its own error, not endpoint mapping.
/// </summary>
internal sealed class ServiceSources(IServiceProvider services) : IBrokerStateSource, IPolicyStateSource, ICrlStateSource, ICertificateExpirySource
{
    private readonly Lazy<Resolved> _resolved = new(() => Resolve(services), LazyThreadSafetyMode.ExecutionAndPublication);

    private sealed record Resolved(IBrokerStateSource[] State, IPolicyStateSource[] Policy, ICrlStateSource[] Crl, ICertificateExpirySource[] Expiry);

    private static Resolved Resolve(IServiceProvider services)
    {
        var all = new List<object>();
        if (services.GetService<MqttBroker>() is { } broker)
        {
            all.Add(new MqttBrokerMetricsSource(broker));
        }

        if (services.GetService<RevocationMetrics>() is { } revocation)
        {
            all.Add(new RevocationCrlStateSource(revocation));
        }

        all.AddRange(services.GetServices<IBrokerStateSource>());
        all.AddRange(services.GetServices<IPolicyStateSource>());
        all.AddRange(services.GetServices<ICrlStateSource>());
        all.AddRange(services.GetServices<ICertificateExpirySource>());
        var distinct = all.Distinct(ReferenceEqualityComparer.Instance).ToArray();
        return new Resolved(
            distinct.OfType<IBrokerStateSource>().ToArray(),
            distinct.OfType<IPolicyStateSource>().ToArray(),
            distinct.OfType<ICrlStateSource>().ToArray(),
            distinct.OfType<ICertificateExpirySource>().ToArray());
    }

    public long SessionCount => _resolved.Value.State.Sum(s => s.SessionCount);

    public long SubscriptionCount => _resolved.Value.State.Sum(s => s.SubscriptionCount);

    public long RetainedMessageCount => _resolved.Value.State.Sum(s => s.RetainedMessageCount);

    public bool IsPolicyLoaded => _resolved.Value.Policy.Any(p => p.IsPolicyLoaded);

    public long PolicyVersion => _resolved.Value.Policy.FirstOrDefault(p => p.IsPolicyLoaded)?.PolicyVersion ?? 0;

    public IEnumerable<CrlState> GetCrlStates() => _resolved.Value.Crl.SelectMany(c => c.GetCrlStates());

    public IEnumerable<DateTimeOffset> GetConnectedCertificateExpiries() =>
        _resolved.Value.Expiry.SelectMany(e => e.GetConnectedCertificateExpiries());
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
