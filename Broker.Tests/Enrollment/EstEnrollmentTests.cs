using FluentAssertions;
using OmniBroker.Host.Cli;
using OmniBroker.Tests.EndToEnd;
using Xunit;

namespace OmniBroker.Tests.Enrollment;

/// <summary>Initial enrollment over EST (RFC 7030) with curl and openssl only: cacerts, one-time tokens,
/// bootstrap certificates under the policy's enroll rule, and the refusals of bad input.</summary>
[Collection(EstCollection.Name)]
public sealed class EstEnrollmentTests(EstBroker est)
{
    private const string CertsOnly = "application/pkcs7-mime; smime-type=certs-only";

    [Fact]
    public async Task Cacerts_Get_CertsOnlyWithIntermediateAndRoot()
    {
        var work = est.NewWorkDirectory("cacerts");

        var (status, type, _) = await est.CurlAsync(work, "cacerts", null);

        status.Should().Be(200);
        type.Should().StartWith("application/pkcs7-mime");
        var printed = await EstBroker.ShellAsync(work, "base64 -d out.txt | openssl pkcs7 -inform DER -print_certs | grep '^subject='");
        printed.ExitCode.Should().Be(0, printed.ToString());
        printed.Output.Should().HaveCount(2).And.Contain(l => l.Contains("OmniBroker Dev Intermediate CA")).And.Contain(l => l.Contains("OmniBroker Dev Root CA"));
    }

    [Fact]
    public async Task SimpleEnroll_WithToken_BoundSubjectIssuedConnectsAndTokenUsedOnce()
    {
        var work = est.NewWorkDirectory("token");
        var token = await TokenAsync("sensor-201");
        await CsrAsync(work, "/CN=sensor-201");

        var (status, type, body) = await est.CurlAsync(work, "simpleenroll", "csr.b64", $"-u '{token}'");

        status.Should().Be(200, body);
        type.Should().Be(CertsOnly);
        var printed = await EstBroker.PrintCertsAsync(work, "issued.crt");
        printed.ExitCode.Should().Be(0, printed.ToString());
        var text = string.Join("\n", printed.Output);
        text.Should().Contain("CN=sensor-201").And.Contain("OU=sensors").And.Contain("O=Acme").And.Contain("L=berlin")
            .And.Contain("URI:urn:device:sensor-201").And.Contain("temperature-sensor").And.Contain("TLS Web Client Authentication");

        var published = await est.MosquittoPubAsync(new DeviceFiles(Path.Combine(work, "issued.crt"), Path.Combine(work, "dev.key")), "5", "sensor-201",
            ["-t", "devices/sensor-201/telemetry", "-q", "1", "-m", "21.5"]);
        published.ExitCode.Should().Be(0, published + est.BrokerWarnings());

        (status, _, body) = await est.CurlAsync(work, "simpleenroll", "csr.b64", $"-u '{token}'");
        status.Should().Be(403);
        body.Should().Contain("already used");
    }

    [Fact]
    public async Task SimpleEnroll_TokenWithCsrForAnotherSubject_Refused403AndTokenKept()
    {
        var work = est.NewWorkDirectory("token-other");
        var token = await TokenAsync("sensor-202");
        await CsrAsync(work, "/O=Acme/OU=operators/CN=sensor-202");

        var (status, type, body) = await est.CurlAsync(work, "simpleenroll", "csr.b64", $"-u '{token}'");

        status.Should().Be(403);
        type.Should().StartWith("text/plain");
        body.Should().Contain("OU=operators");
        await CsrAsync(work, "/CN=sensor-202");
        (status, _, body) = await est.CurlAsync(work, "simpleenroll", "csr.b64", $"-u '{token}'");
        status.Should().Be(200, "a refused CSR does not use the token up: " + body);
    }

    [Fact]
    public async Task SimpleEnroll_UnknownToken_Refused401WithBasicChallenge()
    {
        var work = est.NewWorkDirectory("token-unknown");
        await CsrAsync(work, "/CN=sensor-203");

        var (status, _, body) = await est.CurlAsync(work, "simpleenroll", "csr.b64", "-u 'deadbeef0000:nope' -D headers.txt");

        status.Should().Be(401);
        body.Should().Contain("unknown enrollment token");
        (await File.ReadAllTextAsync(Path.Combine(work, "headers.txt"))).Should().ContainEquivalentOf("www-authenticate: Basic");
    }

    [Fact]
    public async Task SimpleEnroll_BootstrapCertificate_AllowedSubjectIssuedAndConnects()
    {
        var work = est.NewWorkDirectory("bootstrap");
        await CsrAsync(work, "/C=DE/O=Acme/OU=sensors/CN=sensor-0042", "-addext '1.3.6.1.4.1.59999.1.1=ASN1:UTF8String:temperature-sensor'");

        var (status, type, body) = await est.CurlAsync(work, "simpleenroll", "csr.b64", Bootstrap("0042"));

        status.Should().Be(200, body);
        type.Should().Be(CertsOnly);
        var printed = await EstBroker.PrintCertsAsync(work, "issued.crt");
        string.Join("\n", printed.Output).Should().Contain("CN=sensor-0042").And.Contain("temperature-sensor").And.Contain("OmniBroker Dev Intermediate CA");
        var published = await est.MosquittoPubAsync(new DeviceFiles(Path.Combine(work, "issued.crt"), Path.Combine(work, "dev.key")), "3.1.1", "sensor-0042",
            ["-t", "devices/sensor-0042/telemetry", "-q", "1", "-m", "19.0"]);
        published.ExitCode.Should().Be(0, published + est.BrokerWarnings());
    }

    [Theory]
    [InlineData("/C=DE/O=Acme/OU=sensors/CN=sensor-0042", "temperature-sensor", "cert.cn")] // another device's identity
    [InlineData("/C=DE/O=Acme/OU=gateways/CN=sensor-0043", "temperature-sensor", "cert.ou")]
    [InlineData("/C=DE/O=Acme/OU=sensors/OU=operators/CN=sensor-0043", "temperature-sensor", "cert.ou")] // a second OU slipped in
    [InlineData("/C=DE/O=Acme/OU=sensors/CN=sensor-0043", "gateway", "deviceType")]
    [InlineData("/C=DE/O=Acme/OU=sensors/L=berlin/CN=sensor-0043", "temperature-sensor", "cert.l")] // not constrained by the rule
    public async Task SimpleEnroll_BootstrapAsksForSubjectTheRuleDoesNotAllow_Refused403(string subject, string deviceType, string named)
    {
        var work = est.NewWorkDirectory("bootstrap-refused");
        await CsrAsync(work, subject, $"-addext '1.3.6.1.4.1.59999.1.1=ASN1:UTF8String:{deviceType}'");

        var (status, type, body) = await est.CurlAsync(work, "simpleenroll", "csr.b64", Bootstrap("0043"));

        status.Should().Be(403, body);
        type.Should().StartWith("text/plain");
        body.Should().Contain(named);
    }

    [Fact]
    public async Task SimpleEnroll_NoCredentials_Refused401()
    {
        var work = est.NewWorkDirectory("anonymous");
        await CsrAsync(work, "/CN=sensor-204");

        var (status, _, body) = await est.CurlAsync(work, "simpleenroll", "csr.b64");

        status.Should().Be(401);
        body.Should().Contain("token").And.Contain("bootstrap");
    }

    [Fact]
    public async Task SimpleEnroll_CsrSignatureBroken_Refused400AndTokenKept()
    {
        var work = est.NewWorkDirectory("bad-signature");
        var token = await TokenAsync("sensor-205");
        var made = await EstBroker.ShellAsync(work, """
            openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout dev.key -subj /CN=sensor-205 -outform DER -out csr.der 2>/dev/null &&
            /usr/bin/python3 -c "import sys; d=bytearray(open('csr.der','rb').read()); d[-3]^=0x01; open('bad.der','wb').write(d)" &&
            base64 bad.der > csr.b64
            """);
        made.ExitCode.Should().Be(0, made.ToString());

        var (status, _, body) = await est.CurlAsync(work, "simpleenroll", "csr.b64", $"-u '{token}'");

        status.Should().Be(400);
        body.Should().Contain("signature");
    }

    [Fact]
    public async Task SimpleEnroll_BadInput_Refused4xxWithReason()
    {
        var work = est.NewWorkDirectory("bad-input");
        var token = await TokenAsync("sensor-206");
        await CsrAsync(work, "/CN=sensor-206");
        var made = await EstBroker.ShellAsync(work, """
            openssl req -new -newkey rsa:1024 -nodes -keyout weak.key -subj /CN=sensor-206 -outform DER 2>/dev/null | base64 > weak.b64 &&
            echo 'this is not base64!' > junk.txt && head -c 40000 /dev/zero | base64 > big.b64
            """);
        made.ExitCode.Should().Be(0, made.ToString());

        (await est.CurlAsync(work, "simpleenroll", "csr.b64", $"-u '{token}'", contentType: "text/plain")).Status.Should().Be(415);
        (await est.CurlAsync(work, "simpleenroll", "csr.b64", $"-u '{token}'", contentType: "application/json")).Body.Should().Contain("application/pkcs10");
        (await est.CurlAsync(work, "simpleenroll", "junk.txt", $"-u '{token}'")).Status.Should().Be(400);
        (await est.CurlAsync(work, "simpleenroll", "big.b64", $"-u '{token}'")).Status.Should().Be(413);
        var weak = await est.CurlAsync(work, "simpleenroll", "weak.b64", $"-u '{token}'");
        weak.Status.Should().Be(400);
        weak.Body.Should().Contain("RSA key of 1024 bits");
        (await est.CurlAsync(work, "simpleenroll", "csr.b64", $"-u '{token}'")).Status.Should().Be(200, "nothing above used the token");
    }

    [Fact]
    public async Task CertificatesApiAndPkiList_AfterTokenEnrollment_ListIssuedCertificate()
    {
        var work = est.NewWorkDirectory("inventory");
        var token = await TokenAsync("sensor-207");
        await CsrAsync(work, "/CN=sensor-207");
        (await est.CurlAsync(work, "simpleenroll", "csr.b64", $"-u '{token}'")).Status.Should().Be(200);

        var api = await EstBroker.ShellAsync(work, $"curl -sS '{est.Broker.HttpBaseUrl}api/certificates?cn=sensor-207&status=active&expiringWithinDays=400'");
        var bad = await EstBroker.ShellAsync(work, $"curl -sS -o /dev/null -w '%{{http_code}}' '{est.Broker.HttpBaseUrl}api/certificates?status=sleepy'");
        var (code, listed, error) = await CliAsync("pki", "list", "--cn", "sensor-207", "--data-dir", est.Directory);

        string.Join("", api.Output).Should().Contain("\"commonName\":\"sensor-207\"").And.Contain("\"status\":\"active\"").And.Contain("\"issuedVia\":\"token\"");
        string.Join("", bad.Output).Should().Be("400");
        code.Should().Be(CliCommands.ExitOk, error);
        listed.Should().Contain("CN=sensor-207").And.Contain("active").And.Contain("token").And.Contain("1 certificate(s)");
    }

    private string Bootstrap(string serial) =>
        $"--cert '{Path.Combine(est.ManufacturerDirectory, $"idev-{serial}.crt")}' --key '{Path.Combine(est.ManufacturerDirectory, $"idev-{serial}.key")}'";

    private async Task<string> TokenAsync(string commonName)
    {
        var (code, output, error) = await CliAsync("pki", "token", "--cn", commonName, "--o", "Acme", "--ou", "sensors",
            "--device-type", "temperature-sensor", "--l", "berlin", "--expires", "1h", "--data-dir", est.Directory);
        code.Should().Be(CliCommands.ExitOk, error);
        return output.Trim();
    }

    /// <summary>A new P-256 key (dev.key) and its CSR as RFC 8951 wants it: base64 of the DER (csr.b64).</summary>
    internal static async Task CsrAsync(string work, string subject, string extra = "", string key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout dev.key")
    {
        var made = await EstBroker.ShellAsync(work, $"openssl req -new {key} -subj '{subject}' {extra} -outform DER 2>/dev/null | base64 > csr.b64 && test -s csr.b64");
        made.ExitCode.Should().Be(0, made.ToString());
    }

    internal static async Task<(int Code, string Output, string Error)> CliAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await CliCommands.InvokeAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
