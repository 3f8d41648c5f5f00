using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using FluentAssertions;
using Microsoft.Extensions.DependencyInjection;
using OmniBroker.Auth;
using OmniBroker.Auth.Pki;
using OmniBroker.Auth.Revocation;
using OmniBroker.Host.Cli;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Metrics;

/// <summary>
/// Issue 9 defect 6: soft-fail admissions and live revocation drops of the real host, read back from a real scrape
/// of /metrics. Counters are process-wide (other hosts in this process record too), so checks are deltas.
/// </summary>
[Collection(MetricsCollection.Name)]
public sealed class RevocationMetricsEndToEndTests
{
    [Fact]
    public async Task SoftFail_NoRevocationSourceReachable_AdmissionExportedAsSoftFailNotPlainSuccess()
    {
        using var pki = TestPki.Create();
        var directory = TempDirectory.Create("omnibroker-softfail");
        try
        {
            var policies = Path.Combine(directory, "policies");
            Directory.CreateDirectory(policies);
            File.WriteAllText(Path.Combine(policies, "tests.yaml"), MetricsEndToEndTests.TestPolicy);
            // The test PKI publishes no CRL and names no OCSP responder: every status is unknown.
            await using var broker = await TestBroker.StartAsync(pki.WriteFiles(Path.Combine(directory, "tls")), Path.Combine(directory, "data"),
                settings: new Dictionary<string, string?>
                {
                    ["Policy:Directory"] = policies,
                    ["Revocation:Mode"] = "crl",
                    ["Revocation:FailurePolicy"] = "soft-fail",
                });
            using var http = new HttpClient { BaseAddress = broker.HttpBaseUrl, Timeout = TimeSpan.FromSeconds(30) };
            var before = Exposition.Parse(await http.GetStringAsync("/metrics"));

            var result = await TlsTestClient.ConnectAsync(broker.MqttPort, pki.Root, pki.Good, [pki.IssuerOf(pki.Good)]);

            result.Outcome.Should().Be(TlsClientOutcome.ConnAck, "soft-fail admits a client whose status is unknown");
            var after = Exposition.Parse(await http.GetStringAsync("/metrics"));
            Delta(before, after, "omnibroker_tls_handshakes_total", "outcome=success", "reason=revocation_soft_fail").Should().BeGreaterThanOrEqualTo(1);
            Delta(before, after, "omnibroker_revocation_checks_total", "result=soft_fail_admitted").Should().BeGreaterThanOrEqualTo(1);
        }
        finally
        {
            TempDirectory.Delete(directory);
        }
    }

    [Fact]
    public async Task LiveDrop_DeviceRevokedWhileConnected_ExportedWithReasonRevoked()
    {
        await using var broker = await TestBroker.StartAsync();
        using var http = new HttpClient { BaseAddress = broker.HttpBaseUrl, Timeout = TimeSpan.FromSeconds(30) };
        var pki = broker.App.Services.GetRequiredService<DevelopmentPki>();
        var device = PemCertificates.LoadWithKey(pki.GetDeviceCertificatePath("sensor-002"), pki.GetDeviceKeyPath("sensor-002"), out var chain);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using SslStream connected = await TlsTestClient.HandshakeAsync(broker.MqttPort, pki.RootCertificate, device, chain, cancellationToken: timeout.Token);
        await connected.WriteAsync(Connect311("sensor-002"), timeout.Token);
        var connack = new byte[4];
        await connected.ReadExactlyAsync(connack, timeout.Token);
        connack.Should().Equal([0x20, 0x02, 0x00, 0x00]);
        var before = Exposition.Parse(await http.GetStringAsync("/metrics"));

        var code = await CliCommands.InvokeAsync(["pki", "revoke", "--cn", "sensor-002", "--data-dir", broker.DataDirectory], new StringWriter(), new StringWriter());

        code.Should().Be(CliCommands.ExitOk);
        (await broker.Logs.WaitForAsync(e => e.EventId.Id == 4030)).Message.Should().Contain("sensor-002");
        var after = Exposition.Parse(await http.GetStringAsync("/metrics"));
        Delta(before, after, "omnibroker_revocation_live_drops_total", "reason=revoked").Should().BeGreaterThanOrEqualTo(1);
        after.Value("omnibroker_revocation_live_drops_total", "reason=revoked")
            .Should().BeGreaterThanOrEqualTo(broker.App.Services.GetRequiredService<RevocationMetrics>().ConnectionsRevoked);
    }

    private static double Delta(Exposition before, Exposition after, string name, params string[] labels) =>
        after.Value(name, labels) - before.ValueOrZero(name, labels);

    /// <summary>MQTT 3.1.1 CONNECT (§3.1), clean session, keep alive 60 s.</summary>
    internal static byte[] Connect311(string clientId)
    {
        var id = System.Text.Encoding.UTF8.GetBytes(clientId);
        byte[] variable = [0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 0x04, 0x02, 0x00, 0x3C, (byte)(id.Length >> 8), (byte)id.Length, .. id];
        return [0x10, (byte)variable.Length, .. variable];
    }
}
