using System.Diagnostics;
using System.Net.Security;
using System.Numerics;
using System.Security.Cryptography.X509Certificates;
using FluentAssertions;
using Microsoft.Extensions.DependencyInjection;
using OmniBroker.Auth;
using OmniBroker.Auth.Pki;
using OmniBroker.Auth.Revocation;
using OmniBroker.Host.Cli;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Revocation;

/// <summary>`omnibroker pki revoke`, the development PKI's CRL and OCSP endpoints, and a revoked device dropped by the running broker.</summary>
public sealed class DevelopmentPkiRevocationTests
{
    [Fact]
    public void Revoke_ByCommonName_IndexMarkedAndCrlRegeneratedWithHigherNumber()
    {
        string dir = TempDirectory.Create("omni-devpki");
        try
        {
            using DevelopmentPki pki = DevelopmentPki.Create(Path.Combine(dir, "pki"), new Uri("http://127.0.0.1:9090/"));
            DevelopmentPkiRevocation.EnsureCrls(pki, TimeProvider.System).Should().BeTrue();
            ParsedCrl before = ParsedCrl.Parse(File.ReadAllBytes(DevelopmentPkiRevocation.IntermediateCrlPath(pki.Directory)));
            before.Number.Should().Be(BigInteger.One);
            before.RevokedCount.Should().Be(0);
            before.IsSignedBy(pki.IntermediateCertificate, out _).Should().BeTrue();

            IReadOnlyList<IssuedCertificate> revoked = DevelopmentPkiRevocation.Revoke(pki, serial: null, "sensor-002",
                X509RevocationReason.KeyCompromise, TimeProvider.System);

            revoked.Should().ContainSingle().Which.CommonName.Should().Be("sensor-002");
            using DevelopmentPki reloaded = DevelopmentPki.Load(pki.Directory);
            reloaded.FindBySerial(revoked[0].Serial)!.IsRevoked.Should().BeTrue();
            reloaded.FindBySerial(revoked[0].Serial)!.RevocationReason.Should().Be("keyCompromise");
            ParsedCrl after = ParsedCrl.Parse(File.ReadAllBytes(DevelopmentPkiRevocation.IntermediateCrlPath(pki.Directory)));
            after.Number.Should().Be(new BigInteger(2));
            after.TryGetRevoked(revoked[0].Serial, out CrlEntry entry).Should().BeTrue();
            entry.Reason.Should().Be((int)X509RevocationReason.KeyCompromise);
            after.IsSignedBy(pki.IntermediateCertificate, out _).Should().BeTrue();
            ParsedCrl.Parse(File.ReadAllBytes(DevelopmentPkiRevocation.RootCrlPath(pki.Directory))).Number.Should().Be(BigInteger.One, "the root CRL did not change");

            Action again = () => DevelopmentPkiRevocation.Revoke(pki, revoked[0].Serial, null, X509RevocationReason.Unspecified, TimeProvider.System);
            again.Should().Throw<InvalidOperationException>().WithMessage("*already revoked*");
        }
        finally
        {
            TempDirectory.Delete(dir);
        }
    }

    [Fact]
    public async Task PkiRevokeCommand_ArgumentsAndOutcomes_ExitCodes()
    {
        string dir = TempDirectory.Create("omni-devpki-cli");
        try
        {
            (int code, string output, string error) = await RunCliAsync("pki", "revoke", "--cn", "gw-berlin", "--data-dir", dir);
            code.Should().Be(CliCommands.ExitOk, error);
            output.Should().Contain("Revoked ").And.Contain("CN=gw-berlin").And.Contain("reason: keyCompromise").And.Contain("1 revoked");

            (code, _, error) = await RunCliAsync("pki", "revoke", "--cn", "gw-berlin", "--data-dir", dir);
            code.Should().Be(CliCommands.ExitFailure);
            error.Should().Contain("already revoked");

            (code, _, error) = await RunCliAsync("pki", "revoke", "--serial", "0BADC0DE", "--data-dir", dir);
            code.Should().Be(CliCommands.ExitFailure);
            error.Should().Contain("no certificate with serial 0BADC0DE");

            (code, _, error) = await RunCliAsync("pki", "revoke", "--data-dir", dir);
            code.Should().NotBe(CliCommands.ExitOk);
            error.Should().Contain("exactly one of --serial or --cn");

            (code, _, error) = await RunCliAsync("pki", "revoke", "--cn", "sensor-001", "--reason", "bored", "--data-dir", dir);
            code.Should().Be(CliCommands.ExitBadConfiguration);
            error.Should().Contain("'bored' is not a revocation reason");
        }
        finally
        {
            TempDirectory.Delete(dir);
        }
    }

    [Fact]
    public async Task BrokerEndpoints_OpensslOcspClientAndCrlDownload_SeeGoodThenRevoked()
    {
        await using TestBroker broker = await TestBroker.StartAsync();
        DevelopmentPki pki = broker.App.Services.GetRequiredService<DevelopmentPki>();
        string device = pki.GetDeviceCertificatePath("sensor-001");
        Uri ocsp = new(broker.HttpBaseUrl, "pki/ocsp");

        (string before, string beforeErr) = await OpensslOcspClientAsync(pki, device, ocsp);
        before.Should().Contain(": good", beforeErr);
        beforeErr.Should().Contain("Response verify OK");

        (int code, _, string error) = await RunCliAsync("pki", "revoke", "--cn", "sensor-001", "--data-dir", broker.DataDirectory);
        code.Should().Be(CliCommands.ExitOk, error);

        (string after, string afterErr) = await OpensslOcspClientAsync(pki, device, ocsp);
        after.Should().Contain(": revoked", afterErr).And.Contain("Reason: keyCompromise");
        afterErr.Should().Contain("Response verify OK");

        using HttpClient http = new() { Timeout = TimeSpan.FromSeconds(15) };
        byte[] crl = await http.GetByteArrayAsync(new Uri(broker.HttpBaseUrl, "pki/crl/intermediate.crl"));
        ParsedCrl parsed = ParsedCrl.Parse(crl);
        parsed.IsSignedBy(pki.IntermediateCertificate, out _).Should().BeTrue();
        parsed.TryGetRevoked(pki.IssuedCertificates.Single(c => c.CommonName == "sensor-001").Serial, out _).Should().BeTrue();
        ParsedCrl.Parse(await http.GetByteArrayAsync(new Uri(broker.HttpBaseUrl, "pki/crl/root.crl"))).IsSignedBy(pki.RootCertificate, out _).Should().BeTrue();

        // GET form (RFC 6960 Appendix A.1), answered by our own client/parser.
        X509Certificate2 leaf = PemCertificates.LoadAll(device)[0];
        OcspCertId id = OcspCertId.Create(leaf, pki.IntermediateCertificate, System.Security.Cryptography.HashAlgorithmName.SHA1);
        byte[] request = OcspRequest.Build(id, []);
        byte[] response = await http.GetByteArrayAsync(new Uri(broker.HttpBaseUrl, "pki/ocsp/" + Uri.EscapeDataString(Convert.ToBase64String(request))));
        OcspResponseParser.Validate(response, leaf, pki.IntermediateCertificate, null, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(5))
            .Status.Should().Be(OcspCertStatus.Revoked);

        byte[] junk = await (await http.PostAsync(ocsp, new ByteArrayContent("junk"u8.ToArray()))).Content.ReadAsByteArrayAsync();
        junk.Should().Equal(OcspResponseBuilder.BuildError(OcspResponseStatus.MalformedRequest));
        broker.Logs.WithEventId(4040).Should().NotBeEmpty();
    }

    [Fact]
    public async Task RunningBroker_DeviceRevokedWithCli_ConnectedClientDroppedAndRefusedAfterwards()
    {
        await using TestBroker broker = await TestBroker.StartAsync();
        DevelopmentPki pki = broker.App.Services.GetRequiredService<DevelopmentPki>();
        X509Certificate2 device = PemCertificates.LoadWithKey(pki.GetDeviceCertificatePath("sensor-001"), pki.GetDeviceKeyPath("sensor-001"), out X509Certificate2Collection chain);
        X509Certificate2 other = PemCertificates.LoadWithKey(pki.GetDeviceCertificatePath("sensor-002"), pki.GetDeviceKeyPath("sensor-002"), out X509Certificate2Collection otherChain);

        using CancellationTokenSource timeout = new(TimeSpan.FromSeconds(60));
        await using SslStream connected = await TlsTestClient.HandshakeAsync(broker.MqttPort, pki.RootCertificate, device, chain, cancellationToken: timeout.Token);
        await connected.WriteAsync(Connect311("sensor-001"), timeout.Token);
        byte[] connack = new byte[4];
        await connected.ReadExactlyAsync(connack, timeout.Token);
        connack[0].Should().Be(0x20);
        connack[3].Should().Be(0x00, "the device is accepted before revocation");

        (int code, _, string error) = await RunCliAsync("pki", "revoke", "--cn", "sensor-001", "--data-dir", broker.DataDirectory);
        code.Should().Be(CliCommands.ExitOk, error);

        // MQTT 3.1.1 has no server DISCONNECT: the broker closes the connection.
        byte[] buffer = new byte[16];
        int read;
        try
        {
            read = await connected.ReadAsync(buffer, timeout.Token);
        }
        catch (IOException)
        {
            read = 0;
        }

        read.Should().Be(0, "the revoked device is disconnected by the broker");
        timeout.IsCancellationRequested.Should().BeFalse();
        (await broker.Logs.WaitForAsync(e => e.EventId.Id == 4030)).Message.Should().Contain("sensor-001").And.Contain("revoked");

        TlsClientResult again = await TlsTestClient.ConnectAsync(broker.MqttPort, pki.RootCertificate, device, chain);
        again.Outcome.Should().NotBe(TlsClientOutcome.ConnAck, "the revoked certificate is refused at the next handshake");
        TlsClientResult stillFine = await TlsTestClient.ConnectAsync(broker.MqttPort, pki.RootCertificate, other, otherChain);
        stillFine.Outcome.Should().Be(TlsClientOutcome.ConnAck);
    }

    /// <summary>MQTT 3.1.1 CONNECT (§3.1), clean session, keep alive 60 s, client id = the device's CN as the policies expect.</summary>
    private static byte[] Connect311(string clientId)
    {
        byte[] id = System.Text.Encoding.UTF8.GetBytes(clientId);
        byte[] variable = [0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 0x04, 0x02, 0x00, 0x3C, (byte)(id.Length >> 8), (byte)id.Length, .. id];
        return [0x10, (byte)variable.Length, .. variable];
    }

    private static async Task<(int Code, string Output, string Error)> RunCliAsync(params string[] args)
    {
        StringWriter output = new();
        StringWriter error = new();
        int code = await CliCommands.InvokeAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    /// <summary>`openssl ocsp` as an independent OCSP client (it sends a nonce and verifies the response).</summary>
    private static async Task<(string Output, string Error)> OpensslOcspClientAsync(DevelopmentPki pki, string deviceCertificate, Uri responder)
    {
        ProcessStartInfo start = new("openssl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[] { "ocsp", "-issuer", pki.IntermediateCertificatePath, "-cert", deviceCertificate, "-url", responder.ToString(),
            "-CAfile", pki.CaChainPath, "-timeout", "10" })
        {
            start.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using CancellationTokenSource timeout = new(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
        return (await stdout, await stderr);
    }
}
