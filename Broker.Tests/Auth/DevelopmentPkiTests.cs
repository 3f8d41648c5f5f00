using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using FluentAssertions;
using OmniBroker.Auth;
using OmniBroker.Auth.Pki;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Auth;

public sealed class DevelopmentPkiTests : IClassFixture<DevelopmentPkiTests.Fixture>
{
    private readonly Fixture _fixture;

    public DevelopmentPkiTests(Fixture fixture)
    {
        _fixture = fixture;
    }

    /// <summary>One PKI for the class: creating one costs a few key generations.</summary>
    public sealed class Fixture : IDisposable
    {
        public Fixture()
        {
            Root = TempDirectory.Create("omnibroker-devpki");
            Directory = Path.Combine(Root, "data", "pki");
            Pki = DevelopmentPki.LoadOrCreate(Directory, new Uri("http://127.0.0.1:9191"), out var created);
            Created = created;
        }

        public string Root { get; }
        public string Directory { get; }
        public DevelopmentPki Pki { get; }
        public bool Created { get; }

        public void Dispose()
        {
            Pki.Dispose();
            TempDirectory.Delete(Root);
        }
    }

    private DevelopmentPki Pki => _fixture.Pki;

    private ClientCertificateValidator Validator() => new(new TrustStore([Pki.RootCertificate]));

    private static IReadOnlyList<X509Certificate2> DeviceFile(string path) => PemCertificates.LoadAll(path);

    [Fact]
    public void LoadOrCreate_EmptyDirectory_CreatesEveryFile()
    {
        _fixture.Created.Should().BeTrue();
        foreach (var file in new[] { "root-ca.crt", "root-ca.key", "intermediate-ca.crt", "intermediate-ca.key", "ca-chain.crt", "server.crt", "server.key", "index.json" })
        {
            File.Exists(Path.Combine(_fixture.Directory, file)).Should().BeTrue(file);
        }
        foreach (var device in DevelopmentPki.DefaultDevices)
        {
            File.Exists(Pki.GetDeviceCertificatePath(device.CommonName)).Should().BeTrue();
            File.Exists(Pki.GetDeviceKeyPath(device.CommonName)).Should().BeTrue();
        }
        System.IO.Directory.GetDirectories(Path.GetDirectoryName(_fixture.Directory)!).Should().ContainSingle("no staging directory is left behind");
    }

    [Fact]
    public void LoadOrCreate_SecondTime_ReusesTheSameCertificates()
    {
        using var again = DevelopmentPki.LoadOrCreate(_fixture.Directory, new Uri("http://127.0.0.1:9999"), out var created);

        created.Should().BeFalse();
        again.RootCertificate.Thumbprint.Should().Be(Pki.RootCertificate.Thumbprint);
        again.IntermediateCertificate.Thumbprint.Should().Be(Pki.IntermediateCertificate.Thumbprint);
        again.HttpBaseUrl.Should().Be(new Uri("http://127.0.0.1:9191"), "the URLs baked into issued certificates do not change");
        again.IssuedCertificates.Select(c => c.Serial).Should().BeEquivalentTo(Pki.IssuedCertificates.Select(c => c.Serial));
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void KeyFiles_OwnerReadWriteOnly()
    {
        foreach (var key in new[] { "root-ca.key", "intermediate-ca.key", "server.key", "devices/sensor-001.key" })
        {
            File.GetUnixFileMode(Path.Combine(_fixture.Directory, key)).Should().Be(UnixFileMode.UserRead | UnixFileMode.UserWrite, key);
            File.ReadAllText(Path.Combine(_fixture.Directory, key)).Should().StartWith("-----BEGIN PRIVATE KEY-----");
        }
    }

    [Fact]
    public void Hierarchy_EcdsaP256_RootTenYearsIntermediateFiveYearsPathLengthZero()
    {
        Pki.RootCertificate.GetECDsaPublicKey()!.KeySize.Should().Be(256);
        (Pki.RootCertificate.NotAfter - Pki.RootCertificate.NotBefore).TotalDays.Should().BeInRange(3650, 3654);
        (Pki.IntermediateCertificate.NotAfter - Pki.IntermediateCertificate.NotBefore).TotalDays.Should().BeInRange(1825, 1828);
        var constraints = Pki.IntermediateCertificate.Extensions.OfType<X509BasicConstraintsExtension>().Single();
        constraints.CertificateAuthority.Should().BeTrue();
        constraints.HasPathLengthConstraint.Should().BeTrue();
        constraints.PathLengthConstraint.Should().Be(0);
        Pki.IntermediateCertificate.Extensions.OfType<X509KeyUsageExtension>().Single().KeyUsages
            .Should().HaveFlag(X509KeyUsageFlags.KeyCertSign).And.HaveFlag(X509KeyUsageFlags.CrlSign);
        File.ReadAllText(Pki.CaChainPath).Should().Be(Pki.IntermediateCertificate.ExportCertificatePem() + "\n" + Pki.RootCertificate.ExportCertificatePem() + "\n");
    }

    [Fact]
    public void DefaultDevices_ValidateAgainstRootWithTheIntermediateTheyCarry()
    {
        var validator = Validator();
        foreach (var device in DevelopmentPki.DefaultDevices)
        {
            var certificates = DeviceFile(Pki.GetDeviceCertificatePath(device.CommonName));
            certificates.Should().HaveCount(2, "device files hold leaf + intermediate so clients send the chain");
            certificates[1].Thumbprint.Should().Be(Pki.IntermediateCertificate.Thumbprint);

            var result = validator.Validate(certificates[0], certificates.Skip(1));

            result.IsValid.Should().BeTrue($"{device.CommonName}: {result.Detail}");
            result.Chain.Should().HaveCount(3);
        }
    }

    [Theory]
    [InlineData("sensor-001", "CN=sensor-001, OU=sensors, O=Acme, L=berlin, C=DE", "temperature-sensor")]
    [InlineData("sensor-002", "CN=sensor-002, OU=sensors, O=Acme, L=munich, C=DE", "temperature-sensor")]
    [InlineData("gw-berlin", "CN=gw-berlin, OU=gateways, O=Acme, L=berlin, C=DE", "gateway")]
    [InlineData("backend-telemetry", "CN=backend-telemetry, OU=backend, O=Acme, C=DE", "service")]
    [InlineData("legacy-001", "CN=legacy-001, OU=sensors, O=Acme, C=DE", "legacy-thermostat")]
    public void DefaultDevices_SubjectDeviceTypeAndExtensions(string cn, string subject, string deviceType)
    {
        var leaf = DeviceFile(Pki.GetDeviceCertificatePath(cn))[0];

        leaf.Subject.Should().Be(subject);
        DevelopmentPki.ReadDeviceType(leaf).Should().Be(deviceType);
        leaf.Extensions[DevelopmentPki.DeviceTypeOid]!.Critical.Should().BeFalse();
        leaf.GetECDsaPublicKey()!.KeySize.Should().Be(256);
        (leaf.NotAfter - leaf.NotBefore).TotalDays.Should().BeInRange(365, 366);
        leaf.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>()
            .Select(o => o.Value).Should().Equal(ClientCertificateValidator.ClientAuthOid);
        leaf.Extensions.OfType<X509KeyUsageExtension>().Single().KeyUsages.Should().Be(X509KeyUsageFlags.DigitalSignature);
        var san = leaf.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        san.Format(false).Should().Contain("urn:device:" + cn);
        if (cn == "backend-telemetry")
        {
            san.Format(false).Should().Contain("spiffe://acme/backend/telemetry");
        }
        leaf.Extensions.OfType<X509AuthorityInformationAccessExtension>().Single().EnumerateOcspUris().Should().Equal("http://127.0.0.1:9191/pki/ocsp");
        leaf.Extensions["2.5.29.31"]!.Format(false).Should().Contain("http://127.0.0.1:9191/pki/crl/intermediate.crl");
    }

    [Fact]
    public void Intermediate_PointsAtRootCrlAndOcsp()
    {
        Pki.IntermediateCertificate.Extensions["2.5.29.31"]!.Format(false).Should().Contain("http://127.0.0.1:9191/pki/crl/root.crl");
        Pki.IntermediateCertificate.Extensions.OfType<X509AuthorityInformationAccessExtension>().Single().EnumerateOcspUris().Should().Equal("http://127.0.0.1:9191/pki/ocsp");
    }

    [Fact]
    public void ServerCertificate_LocalhostAndLoopbackWithChain()
    {
        using var server = Pki.LoadServerCertificate(out var chain);

        server.HasPrivateKey.Should().BeTrue();
        chain.Should().ContainSingle().Which.Thumbprint.Should().Be(Pki.IntermediateCertificate.Thumbprint);
        server.MatchesHostname("localhost").Should().BeTrue();
        server.MatchesHostname("127.0.0.1").Should().BeTrue();
        server.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages[0].Value.Should().Be("1.3.6.1.5.5.7.3.1");
    }

    [Fact]
    public void Index_ListsEveryIssuedCertificateWithStatus()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Pki.IndexPath));
        var rows = json.RootElement.GetProperty("certificates").EnumerateArray().ToList();

        rows.Select(r => r.GetProperty("cn").GetString()).Should().Contain(["sensor-001", "sensor-002", "gw-berlin", "backend-telemetry", "legacy-001", "localhost"]);
        var sensor = rows.Single(r => r.GetProperty("cn").GetString() == "sensor-001");
        sensor.GetProperty("serial").GetString().Should().Be(DeviceFile(Pki.GetDeviceCertificatePath("sensor-001"))[0].SerialNumber);
        sensor.GetProperty("status").GetString().Should().Be("good");
        sensor.GetProperty("revokedAt").ValueKind.Should().Be(JsonValueKind.Null);
        sensor.GetProperty("subject").GetString().Should().Contain("CN=sensor-001");
        sensor.TryGetProperty("notAfter", out _).Should().BeTrue();
    }

    [Fact]
    public void IssueDevice_NewDevice_ValidatesAndIsIndexed()
    {
        var issued = Pki.IssueDevice(new DeviceCertificateRequest("sensor-issued", "Acme", "sensors", "humidity-sensor") { Locality = "hamburg", Days = 30 });

        var certificates = DeviceFile(Pki.GetDeviceCertificatePath("sensor-issued"));
        Validator().Validate(certificates[0], certificates.Skip(1)).IsValid.Should().BeTrue();
        certificates[0].Subject.Should().Be("CN=sensor-issued, OU=sensors, O=Acme, L=hamburg, C=DE");
        DevelopmentPki.ReadDeviceType(certificates[0]).Should().Be("humidity-sensor");
        (certificates[0].NotAfter - certificates[0].NotBefore).TotalDays.Should().BeInRange(30, 31);
        using var reloaded = DevelopmentPki.Load(_fixture.Directory);
        reloaded.FindBySerial(issued.Serial)!.CommonName.Should().Be("sensor-issued");
    }

    [Fact]
    public void IssueDevice_ExistingCommonName_Refused()
    {
        var act = () => Pki.IssueDevice(new DeviceCertificateRequest("sensor-001", "Acme", "sensors", "temperature-sensor"));

        act.Should().Throw<InvalidOperationException>().WithMessage("*CN=sensor-001 already exists*");
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("")]
    [InlineData("with space")]
    public void IssueDevice_UnsafeCommonName_Refused(string cn)
    {
        var act = () => Pki.IssueDevice(new DeviceCertificateRequest(cn, "Acme", "sensors", "x"));

        act.Should().Throw<ArgumentException>().WithMessage("*CN*");
    }

    [Fact]
    public void DeviceCertificate_OpenSslVerifiesForClientAuth()
    {
        var (exitCode, output) = Run("openssl", "verify", "-CAfile", Pki.RootCertificatePath, "-untrusted", Pki.IntermediateCertificatePath,
            "-purpose", "sslclient", Pki.GetDeviceCertificatePath("gw-berlin"));

        exitCode.Should().Be(0, output);
        output.Should().Contain(": OK");
    }

    [Fact]
    public void ServerCertificate_OpenSslVerifiesForServerAuth()
    {
        var (exitCode, output) = Run("openssl", "verify", "-CAfile", Pki.CaChainPath, "-purpose", "sslserver", "-verify_hostname", "localhost", Pki.ServerCertificatePath);

        exitCode.Should().Be(0, output);
    }

    private static (int ExitCode, string Output) Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(30_000))
        {
            process.Kill();
            throw new TimeoutException($"{file} did not exit");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
