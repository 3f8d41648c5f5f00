using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using BenchmarkDotNet.Attributes;
using OmniBroker.Host.Metrics;
using OmniBroker.Mqtt.Diagnostics;
using OmniBroker.Mqtt.Engine;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Benchmarks;

/// <summary>
/// One Prometheus scrape with 10,000 connected clients: the expiry gauges walk 10,000 real X.509 certificates
/// (three observable callbacks, each one pass), then every series is rendered in the text format. Budget: under
/// 50 ms per scrape. The connected-client list is simulated with the same adapter the host uses over MqttBroker.
///   dotnet run -c Release --project Broker.Benchmarks -- --filter '*MetricsBenchmarks*'
/// </summary>
[MemoryDiagnoser]
public class MetricsBenchmarks
{
    private const int Clients = 10_000;

    private MetricsHost _host = null!;
    private IDisposable _registration = null!;
    private ConnectedClientsExpirySource _expiries = null!;

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
        var clients = new List<ConnectedClientInfo>(Clients);
        for (int i = 0; i < Clients; i++)
        {
            var request = new CertificateRequest($"CN=device-{i:D5},O=Benchmark", leafKey, HashAlgorithmName.SHA256);
            var serial = BitConverter.GetBytes(i + 1L);
            // notAfter spread over -10 .. +400 days so every bucket is populated.
            var notAfter = now.AddDays(-10 + (i % 410));
            var cert = request.Create(ca, now.AddDays(-30), notAfter, serial);
            clients.Add(new ConnectedClientInfo($"device-{i:D5}", new IPEndPoint(IPAddress.Loopback, 10_000 + (i % 50_000)),
                i % 2 == 0 ? MqttProtocolVersion.V500 : MqttProtocolVersion.V311, cert, now));
        }

        IReadOnlyList<ConnectedClientInfo> snapshot = clients;
        _expiries = new ConnectedClientsExpirySource(() => snapshot);
        _host = new MetricsHost(new MetricsOptions(), []);
        _registration = BrokerMetrics.RegisterSource(_expiries);

        // Realistic counters: every label combination in use.
        foreach (var reason in BrokerMetrics.HandshakeFailureReasons)
        {
            BrokerMetrics.HandshakeFailed(reason, 0.004);
        }

        for (int i = 0; i < 1000; i++)
        {
            BrokerMetrics.HandshakeSucceeded(0.001 * (i % 50));
            BrokerMetrics.MessageIn((MqttQos)(i % 3), 128);
            BrokerMetrics.MessageOut((MqttQos)(i % 3), 128);
        }

        if (Scrape() is null)
        {
            throw new InvalidOperationException("the scrape did not complete");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _registration.Dispose();
        _host.Dispose();
    }

    /// <summary>Collect (all observable callbacks) + render of the whole exposition.</summary>
    [Benchmark]
    public byte[]? Scrape() => _host.Scrape();

    /// <summary>The expiry summary alone: one pass over the 10,000 certificates.</summary>
    [Benchmark]
    public long SummarizeCertificateExpiries() => BrokerMetrics.SummarizeExpiries([_expiries], DateTimeOffset.UtcNow).Count;
}
