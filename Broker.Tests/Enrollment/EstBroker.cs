using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using FluentAssertions;
using OmniBroker.Auth.Pki;
using OmniBroker.Auth.Revocation;
using OmniBroker.Host;
using OmniBroker.Tests.EndToEnd;
using OmniBroker.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace OmniBroker.Tests.Enrollment;

[CollectionDefinition(Name)]
public sealed class EstCollection : ICollectionFixture<EstBroker>
{
    public const string Name = "est";
}

/// <summary>
/// The host with EST enabled (127.0.0.1, free port), the development PKI it issues from, the shipped policies
/// (policies/certificates.yaml: renew, factory enroll) and a manufacturer CA made with openssl as the bootstrap
/// trust anchor. Before the start: extra sensors (sensor-101...) so each test renews its own device, sensor-109
/// revoked in the development CRL, and expired-001 whose validity ended yesterday. Clients: curl, openssl,
/// mosquitto and paho, run through bash in a per-test directory.
/// </summary>
public sealed class EstBroker : EndToEndBroker
{
    private readonly string _directory = TempDirectory.Create("omnibroker-est");

    public string Directory => _directory;

    public string EstUrl => $"https://127.0.0.1:{Broker.App.Services.GetRequiredService<BrokerEndpoints>().EstEndPoint!.Port}/.well-known/est";

    public string ManufacturerDirectory => Path.Combine(_directory, "manufacturer");

    public DeviceFiles Device(string commonName) => new(
        Path.Combine(_directory, "pki", "devices", commonName + ".crt"), Path.Combine(_directory, "pki", "devices", commonName + ".key"));

    protected override async Task<TestBroker> StartBrokerAsync()
    {
        using (var pki = DevelopmentPki.Create(Path.Combine(_directory, "pki"), new Uri("http://127.0.0.1:9090/")))
        {
            for (var i = 101; i <= 110; i++)
            {
                pki.IssueDevice(new DeviceCertificateRequest($"sensor-{i}", "Acme", "sensors", "temperature-sensor") { Locality = "berlin" });
            }
            DevelopmentPkiRevocation.EnsureCrls(pki, TimeProvider.System);
            DevelopmentPkiRevocation.Revoke(pki, null, "sensor-109", X509RevocationReason.KeyCompromise, TimeProvider.System);
            WriteExpired(pki);
        }
        CaFile = Path.Combine(_directory, "pki", "ca-chain.crt");

        // The manufacturer's CA and one device's manufacturer (bootstrap) certificate, made by openssl alone.
        System.IO.Directory.CreateDirectory(ManufacturerDirectory);
        var made = await ShellAsync(ManufacturerDirectory, """
            set -e
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout mfg-ca.key -out mfg-ca.crt -days 30 \
              -subj "/O=Acme Manufacturing/CN=Acme Manufacturing CA" \
              -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
            for serial in 0042 0043; do
              openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout idev-$serial.key -out idev-$serial.csr \
                -subj "/O=Acme Manufacturing/OU=factory/CN=$serial" 2>/dev/null
              printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' > idev.ext
              openssl x509 -req -in idev-$serial.csr -CA mfg-ca.crt -CAkey mfg-ca.key -CAcreateserial -out idev-$serial.crt -days 30 -extfile idev.ext 2>/dev/null
            done
            """);
        made.ExitCode.Should().Be(0, made.ToString());

        return await TestBroker.StartAsync(dataDirectory: _directory, settings: new Dictionary<string, string?>
        {
            ["Policy:Directory"] = DevelopmentPkiBroker.ExamplePolicies,
            ["Est:Enabled"] = "true",
            ["Est:Address"] = "127.0.0.1",
            ["Est:Port"] = "0",
            ["Est:BootstrapTrustAnchors"] = Path.Combine(ManufacturerDirectory, "mfg-ca.crt"),
            // Every 1-year certificate is "due" so the CONNACK property can be seen.
            ["Est:ExpiryWarningDays"] = "400",
        });
    }

    /// <summary>Runs a bash script in <paramref name="directory"/> (bounded).</summary>
    public static async Task<ClientResult> ShellAsync(string directory, string script)
    {
        using var process = ClientProcess.Start("bash", ["-c", $"cd '{directory}' && {script}"]);
        return await process.WaitForExitAsync(ClientTimeout);
    }

    /// <summary>A fresh directory for one test's files.</summary>
    public string NewWorkDirectory(string test)
    {
        var path = Path.Combine(_directory, "work", test + "-" + Guid.NewGuid().ToString("N")[..8]);
        System.IO.Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>POSTs <paramref name="bodyFile"/> with curl; returns "status content-type" and leaves the body in out.txt.</summary>
    public async Task<(int Status, string ContentType, string Body)> CurlAsync(string work, string operation, string? bodyFile, string extra = "", string contentType = "application/pkcs10")
    {
        var data = bodyFile is null ? "" : $"-H 'Content-Type: {contentType}' --data-binary @{bodyFile}";
        var result = await ShellAsync(work, $"curl -sS --cacert '{CaFile}' {extra} {data} -o out.txt -w '%{{http_code}} %{{content_type}}' '{EstUrl}/{operation}'");
        result.ExitCode.Should().Be(0, result.ToString());
        var line = string.Join("", result.Output).Trim();
        var space = line.IndexOf(' ', StringComparison.Ordinal);
        return (int.Parse(line[..space], CultureInfo.InvariantCulture), line[(space + 1)..], await File.ReadAllTextAsync(Path.Combine(work, "out.txt")));
    }

    /// <summary>openssl's view of a certs-only response body in out.txt: writes the leaf to <paramref name="pem"/> and prints subjects.</summary>
    public static async Task<ClientResult> PrintCertsAsync(string work, string pem) =>
        await ShellAsync(work, $"base64 -d out.txt | openssl pkcs7 -inform DER -print_certs -out {pem} && {DescribeCommand(pem)}");

    /// <summary>openssl printing subject (/C=../CN=..), issuer, serial, SAN, EKU and the device-type extension.</summary>
    public static string DescribeCommand(string pem) =>
        $"openssl x509 -in '{pem}' -noout -nameopt compat -subject -issuer -serial -ext subjectAltName,extendedKeyUsage && openssl x509 -in '{pem}' -noout -text | grep -A1 '1.3.6.1.4.1.59999.1.1'";

    private void WriteExpired(DevelopmentPki pki)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var builder = new X500DistinguishedNameBuilder();
        builder.AddCommonName("expired-001");
        builder.AddOrganizationalUnitName("sensors");
        builder.AddOrganizationName("Acme");
        builder.AddCountryOrRegion("DE");
        var request = new CertificateRequest(builder.Build(), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(DevelopmentPki.CreateDeviceTypeExtension("temperature-sensor"));
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.Create(pki.IntermediateCertificate.SubjectName, X509SignatureGenerator.CreateForECDsa(pki.IntermediateKey),
            now.AddDays(-30), now.AddDays(-1), RandomNumberGenerator.GetBytes(16).Select((b, i) => i == 0 ? (byte)(b & 0x7F | 0x40) : b).ToArray());
        File.WriteAllText(Device("expired-001").Certificate, certificate.ExportCertificatePem() + "\n");
        File.WriteAllText(Device("expired-001").Key, key.ExportPkcs8PrivateKeyPem() + "\n");
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        TempDirectory.Delete(_directory);
    }
}
