using System.Net.Security;
using FluentAssertions;
using Microsoft.Extensions.DependencyInjection;
using OmniBroker.Auth;
using OmniBroker.Auth.Pki;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Metrics;

/// <summary>Two real hosts in one process (as in this test run, or an application embedding the broker): each host's
/// /metrics shows its own meters only, and keeps counting when the other host stops.</summary>
[Collection(MetricsCollection.Name)]
public sealed class MetricsIsolationTests
{
    [Fact]
    public async Task Metrics_SecondHostInProcess_NeitherSeenNorEndsFirstHostsSeries()
    {
        await using var first = await TestBroker.StartAsync();
        using var http = new HttpClient { BaseAddress = first.HttpBaseUrl, Timeout = TimeSpan.FromSeconds(30) };
        var pki = first.App.Services.GetRequiredService<DevelopmentPki>();
        var device = PemCertificates.LoadWithKey(pki.GetDeviceCertificatePath("sensor-001"), pki.GetDeviceKeyPath("sensor-001"), out var chain);

        await using (var second = await TestBroker.StartAsync())
        {
            var secondPki = second.App.Services.GetRequiredService<DevelopmentPki>();
            var secondDevice = PemCertificates.LoadWithKey(secondPki.GetDeviceCertificatePath("sensor-001"), secondPki.GetDeviceKeyPath("sensor-001"), out var secondChain);
            await using var connected = await ConnectAsync(second.MqttPort, secondPki.RootCertificate, secondDevice, secondChain);

            // A connection on the second host is not one of the first host's.
            var e = Exposition.Parse(await http.GetStringAsync("/metrics"));
            e.ValueOrZero("omnibroker_connections_active", "protocol=3.1.1").Should().Be(0, e.Text);
        }

        // The second host disposed its meters; the first host's series go on.
        var before = Exposition.Parse(await http.GetStringAsync("/metrics"));
        await using (await ConnectAsync(first.MqttPort, pki.RootCertificate, device, chain))
        {
            var after = Exposition.Parse(await http.GetStringAsync("/metrics"));
            (after.ValueOrZero("omnibroker_connections_total", "protocol=3.1.1") - before.ValueOrZero("omnibroker_connections_total", "protocol=3.1.1"))
                .Should().Be(1, after.Text);
            after.Value("omnibroker_connections_active", "protocol=3.1.1").Should().Be(1, after.Text);
        }
    }

    private static async Task<SslStream> ConnectAsync(int port, System.Security.Cryptography.X509Certificates.X509Certificate2 root,
        System.Security.Cryptography.X509Certificates.X509Certificate2 device, System.Security.Cryptography.X509Certificates.X509Certificate2Collection chain)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var stream = await TlsTestClient.HandshakeAsync(port, root, device, chain, cancellationToken: timeout.Token);
        // The development policy wants the CN as client id.
        await stream.WriteAsync(RevocationMetricsEndToEndTests.Connect311("sensor-001"), timeout.Token);
        var connack = new byte[4];
        await stream.ReadExactlyAsync(connack, timeout.Token);
        connack.Should().Equal([0x20, 0x02, 0x00, 0x00]);
        return stream;
    }
}
