using FluentAssertions;
using OmniBroker.Host;
using OmniBroker.Host.Configuration;
using OmniBroker.Policy;
using OmniBroker.Tests.EndToEnd;
using OmniBroker.Tests.Support;
using Microsoft.Extensions.Configuration;
using Xunit;

namespace OmniBroker.Tests.Enrollment;

/// <summary>The Est section's validation, the policy's enroll/renew rules, and a superseded certificate refused at
/// CONNECT when Est:SupersededGracePeriod is 0.</summary>
public sealed class EstConfigurationTests
{
    [Fact]
    public void Build_BadEstKeys_EveryKeyNamed()
    {
        var directory = TempDirectory.Create("omnibroker-est-config");
        try
        {
            var build = () => OmniBrokerApp.Build([], configuration => configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["DataDirectory"] = directory,
                ["Mqtt:Port"] = "0",
                ["Http:Url"] = "http://127.0.0.1:0",
                ["Est:Enabled"] = "yes",
                ["Est:Port"] = "70000",
                ["Est:CaCertificate"] = Path.Combine(directory, "missing-ca.crt"),
                ["Est:BootstrapTrustAnchors"] = Path.Combine(directory, "missing-anchor.crt"),
                ["Est:RatePerIdentityPerMinute"] = "0",
                ["Est:CaKeyPassphraseEnvironmentVariable"] = "OMNIBROKER_TEST_UNSET_" + Guid.NewGuid().ToString("N"),
            }));

            var errors = build.Should().Throw<BrokerConfigurationException>().Which.Errors;

            errors.Should().Contain(e => e.StartsWith("Est:Enabled: 'yes' is not true or false", StringComparison.Ordinal));
            errors.Should().Contain(e => e.StartsWith("Est:Port: '70000'", StringComparison.Ordinal));
            errors.Should().Contain(e => e.StartsWith("Est:CaCertificate: file", StringComparison.Ordinal));
            errors.Should().Contain(e => e.StartsWith("Est:CaKey: required when Est:CaCertificate is set", StringComparison.Ordinal));
            errors.Should().Contain(e => e.StartsWith("Est:BootstrapTrustAnchors: file", StringComparison.Ordinal));
            errors.Should().Contain(e => e.StartsWith("Est:RatePerIdentityPerMinute:", StringComparison.Ordinal));
            errors.Should().Contain(e => e.StartsWith("Est:CaKeyPassphraseEnvironmentVariable: environment variable", StringComparison.Ordinal));
        }
        finally
        {
            TempDirectory.Delete(directory);
        }
    }

    [Theory]
    [InlineData("actions: [enroll]\n    match: { cert.o: Factory }", "allows enroll but has no 'subject'")]
    [InlineData("actions: [connect]\n    subject: { cert.cn: x }", "'subject' only applies to enroll")]
    [InlineData("actions: [enroll]\n    subject: { cert.serial: x }", "cannot be asked for in a CSR")]
    public void PolicyLoad_BadEnrollRule_RejectedWithReason(string rule, string message)
    {
        var directory = TempDirectory.Create("omnibroker-est-policy");
        try
        {
            File.WriteAllText(Path.Combine(directory, "p.yaml"), $"version: 1\nrules:\n  - id: r\n    effect: allow\n    {rule}\n");

            var load = () => PolicyAuthorizer.Load(directory);

            load.Should().Throw<PolicyLoadException>().Which.Errors.Should().Contain(e => e.Message.Contains(message));
        }
        finally
        {
            TempDirectory.Delete(directory);
        }
    }

    [Fact]
    public async Task SupersededCertificate_GracePeriodZero_RefusedAtConnectWhileRenewedConnects()
    {
        await using var broker = await TestBroker.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Policy:Directory"] = DevelopmentPkiBroker.ExamplePolicies,
            ["Est:Enabled"] = "true",
            ["Est:Address"] = "127.0.0.1",
            ["Est:Port"] = "0",
            ["Est:SupersededGracePeriod"] = "0",
        });
        var work = Path.Combine(broker.DataDirectory, "work");
        Directory.CreateDirectory(work);
        var pki = Path.Combine(broker.DataDirectory, "pki");
        var port = ((BrokerEndpoints)broker.App.Services.GetService(typeof(BrokerEndpoints))!).EstEndPoint!.Port;
        var est = $"https://127.0.0.1:{port}/.well-known/est";
        var renewed = await EstBroker.ShellAsync(work, $"""
            openssl req -new -key '{pki}/devices/sensor-002.key' -subj '/C=DE/L=munich/O=Acme/OU=sensors/CN=sensor-002' \
              -addext 'subjectAltName=URI:urn:device:sensor-002' -outform DER 2>/dev/null | base64 > renew.b64 &&
            curl -sS -f --cacert '{pki}/ca-chain.crt' --cert '{pki}/devices/sensor-002.crt' --key '{pki}/devices/sensor-002.key' \
              -H 'Content-Type: application/pkcs10' --data-binary @renew.b64 '{est}/simplereenroll' | base64 -d \
              | openssl pkcs7 -inform DER -print_certs -out renewed.crt
            """);
        renewed.ExitCode.Should().Be(0, renewed.ToString());

        var old = await MosquittoAsync(broker, Path.Combine(pki, "devices", "sensor-002.crt"), Path.Combine(pki, "devices", "sensor-002.key"));
        var current = await MosquittoAsync(broker, Path.Combine(work, "renewed.crt"), Path.Combine(pki, "devices", "sensor-002.key"));

        old.ExitCode.Should().NotBe(0, "the superseded certificate is refused once the grace period (0 h) has passed");
        current.ExitCode.Should().Be(0, current.ToString());
        await broker.Logs.WaitForAsync(entry => entry.EventId.Id == 1403);
    }

    private static async Task<ClientResult> MosquittoAsync(TestBroker broker, string certificate, string key)
    {
        using var process = ClientProcess.Start("mosquitto_pub", ["-h", "127.0.0.1", "-p", broker.MqttPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--cafile", Path.Combine(broker.DataDirectory, "pki", "ca-chain.crt"), "--cert", certificate, "--key", key, "-V", "mqttv5",
            "-i", "sensor-002", "-t", "devices/sensor-002/telemetry", "-m", "20.1", "-q", "1"]);
        return await process.WaitForExitAsync(EndToEndBroker.ClientTimeout);
    }
}
