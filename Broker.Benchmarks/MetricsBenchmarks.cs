using System.Diagnostics.Metrics;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OmniBroker.Auth;
using OmniBroker.Auth.Diagnostics;
using OmniBroker.Host.Metrics;
using OmniBroker.Mqtt.Diagnostics;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Benchmarks;

/// <summary>
/// One Prometheus scrape (OpenTelemetry's exporter, over HTTP on loopback) with 10,000 connected clients: the
/// expiry gauges walk 10,000 real X.509 certificates (three observable callbacks, each one pass), then every series is
/// rendered. Budget: under 50 ms per scrape.
///   dotnet run -c Release --project Broker.Benchmarks -- --filter '*MetricsBenchmarks*'
/// </summary>
[MemoryDiagnoser]
public class MetricsBenchmarks
{
    private const int Clients = 10_000;

    private WebApplication _app = null!;
    private HttpClient _http = null!;
    private DateTimeOffset[] _expiries = null!;

    [GlobalSetup]
    public void Setup()
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Benchmark CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        var now = DateTimeOffset.UtcNow;
        using var ca = caRequest.CreateSelfSigned(now.AddDays(-60), now.AddYears(5));

        // One leaf key for all: key generation is not what is measured, and the gauges only read notAfter.
        using var leafKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var certificates = new List<X509Certificate2>(Clients);
        for (int i = 0; i < Clients; i++)
        {
            var request = new CertificateRequest($"CN=device-{i:D5},O=Benchmark", leafKey, HashAlgorithmName.SHA256);
            // notAfter spread over -10 .. +400 days so every bucket is populated.
            certificates.Add(request.Create(ca, now.AddDays(-30), now.AddDays(-10 + (i % 410)), BitConverter.GetBytes(i + 1L)));
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        builder.Services.AddOmniBrokerMetrics();
        // As the registry does: read notAfter of each connected certificate at every scrape.
        builder.Services.AddSingleton(sp => new TlsMetrics(sp.GetRequiredService<IMeterFactory>(),
            () => certificates.Select(static c => new DateTimeOffset(c.NotAfter)), TimeProvider.System));
        builder.Services.AddSingleton(sp => new MqttMetrics(sp.GetRequiredService<IMeterFactory>()));
        builder.Services.AddSingleton<IPrimedMetrics>(sp => sp.GetRequiredService<TlsMetrics>());
        builder.Services.AddSingleton<IPrimedMetrics>(sp => sp.GetRequiredService<MqttMetrics>());
        _app = builder.Build();
        _app.MapPrometheusMetrics();
        _app.StartAsync().GetAwaiter().GetResult();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _http = new HttpClient { BaseAddress = new Uri(address) };
        _expiries = certificates.Select(static c => new DateTimeOffset(c.NotAfter)).ToArray();

        // Realistic counters: every label combination in use.
        var tls = _app.Services.GetRequiredService<TlsMetrics>();
        var mqtt = _app.Services.GetRequiredService<MqttMetrics>();
        foreach (var reason in Enum.GetValues<CertificateFailureReason>())
        {
            tls.OnHandshakeFailed(reason, TimeSpan.FromMilliseconds(4));
        }

        for (int i = 0; i < 1000; i++)
        {
            tls.OnHandshakeSucceeded(TimeSpan.FromMilliseconds(i % 50));
            mqtt.MessageIn((MqttQos)(i % 3), 128);
            mqtt.MessageOut((MqttQos)(i % 3), 128);
        }

        if (Scrape() == 0)
        {
            throw new InvalidOperationException("the scrape returned nothing");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _http.Dispose();
        _app.StopAsync().GetAwaiter().GetResult();
        _app.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    /// <summary>Collect (all observable callbacks) + render + HTTP of the whole exposition; returns its length.</summary>
    [Benchmark]
    public int Scrape() => _http.GetByteArrayAsync("/metrics").GetAwaiter().GetResult().Length;

    /// <summary>The expiry summary alone: one pass over the 10,000 certificates.</summary>
    [Benchmark]
    public long SummarizeCertificateExpiries() => CertificateExpirySummary.Of(_expiries, DateTimeOffset.UtcNow).Count;
}
