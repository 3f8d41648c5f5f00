using System.Text.Json.Nodes;
using FluentAssertions;
using OmniBroker.Tests.EndToEnd;
using Xunit;
using static OmniBroker.Tests.Enrollment.EstEnrollmentTests;

namespace OmniBroker.Tests.Enrollment;

/// <summary>Renewal with the current certificate: EST simplereenroll (curl + openssl) and MQTT 5.0 request/response
/// (paho). Each test renews its own development PKI sensor (sensor-101...).</summary>
[Collection(EstCollection.Name)]
public sealed class EstRenewalTests(EstBroker est)
{
    private const int NotAuthorizedV5 = 0x87;

    private static string Subject(string cn) => $"/C=DE/L=berlin/O=Acme/OU=sensors/CN={cn}";

    private static string San(string cn) => $"-addext 'subjectAltName=URI:urn:device:{cn}'";

    [Fact]
    public async Task SimpleReenroll_SameKey_CopiesIdentitySupersedesOldAndKeepsPolicyDecisions()
    {
        var work = est.NewWorkDirectory("renew-same-key");
        var device = est.Device("sensor-101");
        await CsrAsync(work, Subject("sensor-101"), San("sensor-101"), key: $"-key '{device.Key}'");

        var (status, type, body) = await est.CurlAsync(work, "simplereenroll", "csr.b64", Client(device));

        status.Should().Be(200, body);
        type.Should().Be("application/pkcs7-mime; smime-type=certs-only");
        var printed = await EstBroker.PrintCertsAsync(work, "renewed.crt");
        var old = await EstBroker.ShellAsync(work, EstBroker.DescribeCommand(device.Certificate));
        var renewedText = printed.Output.Where(l => !l.StartsWith("serial=", StringComparison.Ordinal)).ToArray();
        renewedText.Should().Equal(old.Output.Where(l => !l.StartsWith("serial=", StringComparison.Ordinal)), "subject, SAN, device type and EKU are copied");
        printed.Output.Single(l => l.StartsWith("serial=", StringComparison.Ordinal)).Should().NotBe(old.Output.Single(l => l.StartsWith("serial=", StringComparison.Ordinal)));

        var renewed = new DeviceFiles(Path.Combine(work, "renewed.crt"), device.Key);
        var before = await ProbeAsync(device, "sensor-101");
        var after = await ProbeAsync(renewed, "sensor-101");
        ((int?)after["connack"]).Should().Be(0);
        after["suback"]!.AsArray().Select(c => (int)c!).Should().Equal(before["suback"]!.AsArray().Select(c => (int)c!)).And.Equal(1, NotAuthorizedV5);
        after["acks"]!.AsArray().Select(a => (int?)a).Should().Equal(before["acks"]!.AsArray().Select(a => (int?)a));
        ((int?)after["acks"]![1]).Should().Be(NotAuthorizedV5);

        var inventory = await EstBroker.ShellAsync(work, $"curl -sS '{est.Broker.HttpBaseUrl}api/certificates?cn=sensor-101'");
        var rows = JsonNode.Parse(string.Join("", inventory.Output))!.AsArray();
        rows.Select(r => (string?)r!["status"]).Should().BeEquivalentTo(["superseded", "active"]);
        rows.Single(r => (string?)r!["status"] == "superseded")!["supersededBy"]!.GetValue<string>()
            .Should().Be((string?)rows.Single(r => (string?)r!["status"] == "active")!["serial"]);

        (status, _, body) = await est.CurlAsync(work, "simplereenroll", "csr.b64", Client(device));
        status.Should().Be(403, "a superseded certificate cannot renew again");
        body.Should().Contain("superseded");
    }

    [Fact]
    public async Task SimpleReenroll_NewKey_RenewedCertificateConnectsWithNewKey()
    {
        var work = est.NewWorkDirectory("renew-new-key");
        var device = est.Device("sensor-102");
        await CsrAsync(work, Subject("sensor-102"), San("sensor-102"));

        var (status, _, body) = await est.CurlAsync(work, "simplereenroll", "csr.b64", Client(device));

        status.Should().Be(200, body);
        (await EstBroker.PrintCertsAsync(work, "renewed.crt")).ExitCode.Should().Be(0);
        var keysMatch = await EstBroker.ShellAsync(work, "test \"$(openssl x509 -in renewed.crt -noout -pubkey)\" = \"$(openssl pkey -in dev.key -pubout)\"");
        keysMatch.ExitCode.Should().Be(0, "the renewed certificate certifies the CSR's new key");
        var published = await est.MosquittoPubAsync(new DeviceFiles(Path.Combine(work, "renewed.crt"), Path.Combine(work, "dev.key")), "5", "sensor-102",
            ["-t", "devices/sensor-102/telemetry", "-q", "1", "-m", "22.0"]);
        published.ExitCode.Should().Be(0, published + est.BrokerWarnings());
    }

    [Theory]
    [InlineData("/C=DE/L=berlin/O=Acme/OU=sensors/CN=sensor-999", "urn:device:sensor-103", "subject")]
    [InlineData("/C=DE/L=munich/O=Acme/OU=sensors/CN=sensor-103", "urn:device:sensor-103", "subject")]
    [InlineData("/C=DE/L=berlin/O=Acme/OU=sensors/CN=sensor-103", "urn:device:sensor-999", "subjectAltName")]
    public async Task SimpleReenroll_ChangedSubjectOrSan_Refused403(string subject, string san, string named)
    {
        var work = est.NewWorkDirectory("renew-changed");
        await CsrAsync(work, subject, $"-addext 'subjectAltName=URI:{san}'");

        var (status, type, body) = await est.CurlAsync(work, "simplereenroll", "csr.b64", Client(est.Device("sensor-103")));

        status.Should().Be(403);
        type.Should().StartWith("text/plain");
        body.Should().Contain(named).And.Contain("differs");
    }

    [Theory]
    [InlineData("sensor-109", "revoked", "Revoked")] // revoked in the development CRL before the start
    [InlineData("expired-001", "expired", "expired")]
    public async Task SimpleReenroll_RevokedOrExpiredCertificate_Refused403(string device, string subjectCn, string named)
    {
        _ = subjectCn;
        var work = est.NewWorkDirectory("renew-" + device);
        await CsrAsync(work, Subject(device), San(device));

        var (status, _, body) = await est.CurlAsync(work, "simplereenroll", "csr.b64", Client(est.Device(device)));

        status.Should().Be(403);
        body.Should().ContainEquivalentOf(named);
    }

    [Fact]
    public async Task MqttRenew_PahoRequestWithResponseTopic_RepliesCertificateThatConnects()
    {
        var work = est.NewWorkDirectory("mqtt-renew");
        var device = est.Device("sensor-104");
        var made = await EstBroker.ShellAsync(work, $"openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout dev.key -subj '{Subject("sensor-104")}' {San("sensor-104")} -out csr.pem 2>/dev/null");
        made.ExitCode.Should().Be(0, made.ToString());

        var result = await RenewOverMqttAsync(device, "sensor-104", await File.ReadAllTextAsync(Path.Combine(work, "csr.pem")));

        ((int?)result["connack"]).Should().Be(0);
        result["connackUserProperties"]!["omnibroker-certificate-not-after"]!.GetValue<string>().Should().MatchRegex(@"^\d{4}-\d\d-\d\dT");
        ((string?)result["connackUserProperties"]!["omnibroker-certificate-renew"]).Should().Be("due");
        ((int?)result["ack"]).Should().Be(0);
        var reply = result["reply"]!;
        ((string?)reply["topic"]).Should().Be("replies/sensor-104/renew");
        ((string?)reply["correlation"]).Should().Be("req-1");
        ((string?)reply["userProperties"]!["status"]).Should().Be("issued", reply.ToJsonString());
        ((string?)reply["contentType"]).Should().Be("application/pem-certificate-chain");
        await File.WriteAllTextAsync(Path.Combine(work, "renewed.crt"), (string?)reply["payload"]);
        var subject = await EstBroker.ShellAsync(work, "openssl x509 -in renewed.crt -noout -nameopt compat -subject");
        string.Join("", subject.Output).Should().Contain("CN=sensor-104");
        var published = await est.MosquittoPubAsync(new DeviceFiles(Path.Combine(work, "renewed.crt"), Path.Combine(work, "dev.key")), "5", "sensor-104",
            ["-t", "devices/sensor-104/telemetry", "-q", "1", "-m", "23.0"]);
        published.ExitCode.Should().Be(0, published + est.BrokerWarnings());
    }

    [Fact]
    public async Task MqttRenew_ChangedSubject_RepliesRefusedAndIssuesNothing()
    {
        var work = est.NewWorkDirectory("mqtt-renew-refused");
        var made = await EstBroker.ShellAsync(work, $"openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout dev.key -subj '{Subject("gw-berlin")}' -out csr.pem 2>/dev/null");
        made.ExitCode.Should().Be(0, made.ToString());

        var result = await RenewOverMqttAsync(est.Device("sensor-105"), "sensor-105", await File.ReadAllTextAsync(Path.Combine(work, "csr.pem")));

        var reply = result["reply"]!;
        ((string?)reply["userProperties"]!["status"]).Should().Be("refused");
        ((string?)reply["userProperties"]!["reason"]).Should().Be("subject-changed");
        ((string?)reply["userProperties"]!["http-status"]).Should().Be("403");
        ((string?)reply["payload"]).Should().Contain("differs");
        var inventory = await EstBroker.ShellAsync(work, $"curl -sS '{est.Broker.HttpBaseUrl}api/certificates?cn=gw-berlin&status=active'");
        string.Join("", inventory.Output).Should().NotContain("renew-mqtt");
    }

    private static string Client(DeviceFiles device) => $"--cert '{device.Certificate}' --key '{device.Key}'";

    private async Task<JsonObject> RenewOverMqttAsync(DeviceFiles device, string clientId, string csr)
    {
        var spec = est.PahoSpec("5");
        spec["client"] = EndToEndBroker.PahoClient(clientId, device);
        spec["csr"] = csr;
        spec["responseTopic"] = $"replies/{clientId}/renew";
        spec["correlation"] = "req-1";
        var (result, process) = await EndToEndBroker.RunPahoAsync("renew.py", spec);
        process.ExitCode.Should().Be(0, process.ToString());
        return result;
    }

    private async Task<JsonObject> ProbeAsync(DeviceFiles device, string clientId)
    {
        var spec = est.PahoSpec("5");
        spec["client"] = EndToEndBroker.PahoClient(clientId, device);
        spec["subscribe"] = new object[] { new object[] { $"devices/{clientId}/commands/#", 1 }, new object[] { "devices/sensor-002/commands/#", 1 } };
        spec["publish"] = new object[]
        {
            new Dictionary<string, object?> { ["topic"] = $"devices/{clientId}/telemetry", ["payload"] = "20.0", ["qos"] = 1 },
            new Dictionary<string, object?> { ["topic"] = "devices/sensor-002/telemetry", ["payload"] = "forged", ["qos"] = 1 },
        };
        var (result, process) = await EndToEndBroker.RunPahoAsync("probe.py", spec);
        process.ExitCode.Should().Be(0, process.ToString());
        return result;
    }
}
