using System.Net.Http;
using System.Security.Cryptography.X509Certificates;
using FluentAssertions;
using Microsoft.Extensions.DependencyInjection;
using OmniBroker.Auth;
using OmniBroker.Auth.Pki;
using OmniBroker.Host;
using OmniBroker.Host.Cli;
using OmniBroker.Host.Configuration;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Host;

/// <summary>The host with the development PKI (no TLS configuration), started in-process.</summary>
public sealed class HostStartupTests : IAsyncLifetime
{
    private string _directory = null!;

    public Task InitializeAsync()
    {
        _directory = TempDirectory.Create("omnibroker-startup");
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        TempDirectory.Delete(_directory);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Serve_NoTlsConfiguration_CreatesDevelopmentPkiOnceAndReusesIt()
    {
        var data = Path.Combine(_directory, "data");
        string firstRoot;
        await using (var broker = await TestBroker.StartAsync(dataDirectory: data))
        {
            File.Exists(Path.Combine(data, "pki", "ca-chain.crt")).Should().BeTrue();
            firstRoot = PemCertificates.LoadAll(Path.Combine(data, "pki", "root-ca.crt"))[0].Thumbprint;
            broker.Logs.WithEventId(2020).Should().ContainSingle("the PKI was created by this start");
        }

        await using (var broker = await TestBroker.StartAsync(dataDirectory: data))
        {
            PemCertificates.LoadAll(Path.Combine(data, "pki", "root-ca.crt"))[0].Thumbprint.Should().Be(firstRoot);
            broker.Logs.WithEventId(2020).Should().BeEmpty();
            broker.Logs.WithEventId(2021).Should().ContainSingle("the existing PKI is loaded");
        }
    }

    [Fact]
    public async Task Serve_DevelopmentPkiDevice_HandshakeAcceptedAndHealthzOk()
    {
        await using var broker = await TestBroker.StartAsync();
        var pki = Path.Combine(broker.DataDirectory, "pki");
        var chain = PemCertificates.LoadAll(Path.Combine(pki, "devices", "sensor-001.crt"));
        using var device = X509Certificate2.CreateFromPemFile(Path.Combine(pki, "devices", "sensor-001.crt"), Path.Combine(pki, "devices", "sensor-001.key"));
        var root = PemCertificates.LoadAll(Path.Combine(pki, "root-ca.crt"))[0];

        await using (var ssl = await TlsTestClient.HandshakeAsync(broker.MqttPort, root, device, chain.Skip(1)))
        {
            ssl.RemoteCertificate!.Subject.Should().Be("CN=localhost, OU=broker, O=OmniBroker Development, C=DE");
            await ssl.WriteAsync(TlsTestClient.Connect311);
            var accepted = await broker.Logs.WaitForAsync(e => e.EventId.Id == 2000);
            accepted.Value("Subject").Should().Be(device.Subject);
        }

        using var http = new HttpClient { BaseAddress = broker.HttpBaseUrl, Timeout = TimeSpan.FromSeconds(10) };
        (await http.GetStringAsync("/healthz")).Should().Be("ok\n");
    }

    [Fact]
    public async Task Serve_StartupBanner_PrintsPasteableMosquittoLines()
    {
        await using var broker = await TestBroker.StartAsync();

        var banner = StartupBanner.Create(
            broker.App.Services.GetRequiredService<BrokerSettings>(),
            broker.App.Services.GetRequiredService<BrokerEndpoints>(),
            broker.App.Services.GetRequiredService<DevelopmentPkiState>());

        var pki = Path.Combine(broker.DataDirectory, "pki");
        banner.Should().Contain($"mosquitto_sub -h localhost -p {broker.MqttPort} --cafile {Path.Combine(pki, "ca-chain.crt")} --cert {Path.Combine(pki, "devices", "backend-telemetry.crt")} --key {Path.Combine(pki, "devices", "backend-telemetry.key")} -i backend-telemetry -t 'devices/+/telemetry' -V mqttv5 -v");
        banner.Should().Contain($"mosquitto_pub -h localhost -p {broker.MqttPort} --cafile {Path.Combine(pki, "ca-chain.crt")} --cert {Path.Combine(pki, "devices", "sensor-001.crt")}");
        banner.Should().Contain("-i sensor-001 -t devices/sensor-001/telemetry");
    }

    [Fact]
    public async Task PkiIssue_Cli_WritesDeviceThatValidatesAgainstTheChain()
    {
        var data = Path.Combine(_directory, "cli-data");
        var output = new StringWriter();
        var error = new StringWriter();

        var exitCode = await CliCommands.InvokeAsync(["pki", "issue", "--cn", "sensor-777", "--o", "Acme", "--ou", "sensors", "--device-type", "temperature-sensor",
            "--days", "10", "--l", "hamburg", "--data-dir", data], output, error);

        exitCode.Should().Be(0, error.ToString());
        output.ToString().Should().Contain("Issued CN=sensor-777, OU=sensors, O=Acme, L=hamburg, C=DE");
        using var pki = DevelopmentPki.Load(Path.Combine(data, "pki"));
        var certificates = PemCertificates.LoadAll(pki.GetDeviceCertificatePath("sensor-777"));
        var result = new ClientCertificateValidator(new TrustStore([pki.RootCertificate])).Validate(certificates[0], certificates.Skip(1));
        result.IsValid.Should().BeTrue(result.Detail);
        DevelopmentPki.ReadDeviceType(certificates[0]).Should().Be("temperature-sensor");
        pki.IssuedCertificates.Should().Contain(c => c.CommonName == "sensor-777" && c.Serial == certificates[0].SerialNumber);

        var again = await CliCommands.InvokeAsync(["pki", "issue", "--cn", "sensor-777", "--o", "Acme", "--ou", "sensors", "--device-type", "t", "--data-dir", data], new StringWriter(), error);
        again.Should().Be(2);
        error.ToString().Should().Contain("already exists");
    }
}
