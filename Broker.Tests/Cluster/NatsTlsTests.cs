using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using FluentAssertions;
using OmniBroker.Tests.Storage;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Cluster;

/// <summary>
/// A cluster node against a real nats-server that requires TLS and verifies client certificates (certificates made by
/// the test): it joins with the right CA and client certificate, and stops at start-up with one line naming the TLS
/// keys when it trusts another CA.
/// </summary>
[Collection(ClusterFixture.Collection)]
public sealed class NatsTlsTests : IDisposable
{
    private readonly string _root = TempDirectory.Create("omnibroker-nats-tls");

    [Fact]
    public async Task Start_TlsWithClientCertificate_NodeJoins()
    {
        var pki = Pki.Create(_root, "good");
        using var nats = await TlsNatsServer.StartAsync(_root, pki);
        var policies = Policies();

        using var node = await BrokerHostProcess.StartAsync(Data("node"), BrokerHostProcess.FreePort(), policies, NodeArgs(nats.Port, pki.CaFile, pki));

        (await node.WaitForLineAsync(l => l.Contains("[7000]", StringComparison.Ordinal), TimeSpan.FromSeconds(60)))
            .Should().Contain("tls://127.0.0.1");
    }

    [Fact]
    public async Task Start_TlsAndNKeySeedFile_NodeJoinsAsTheNKeyUser()
    {
        var pki = Pki.Create(_root, "nkey");
        var user = NATS.NKeys.KeyPair.CreatePair(NATS.NKeys.PrefixByte.User);
        var seedFile = Path.Combine(_root, "user.nk");
        File.WriteAllText(seedFile, user.GetSeed() + "\n");
        using var nats = await TlsNatsServer.StartAsync(_root, pki, nkeyUser: user.GetPublicKey());

        using var node = await BrokerHostProcess.StartAsync(Data("nkey-node"), BrokerHostProcess.FreePort(), Policies(),
            [.. NodeArgs(nats.Port, pki.CaFile, pki), "--Cluster:Nats:NKeyFile=" + seedFile]);

        (await node.WaitForLineAsync(l => l.Contains("[7000]", StringComparison.Ordinal), TimeSpan.FromSeconds(60)))
            .Should().Contain("tls://127.0.0.1", "the server admits only that NKey user");
    }

    [Fact]
    public async Task Start_WrongCa_ExitsWithOneLineNamingTlsKeys()
    {
        var pki = Pki.Create(_root, "good");
        var other = Pki.Create(_root, "other");
        using var nats = await TlsNatsServer.StartAsync(_root, pki);

        using var node = BrokerHostProcess.Launch(Data("wrong-ca"), BrokerHostProcess.FreePort(), Policies(), NodeArgs(nats.Port, other.CaFile, pki));
        var exit = await node.WaitForExitAsync(TimeSpan.FromSeconds(90));

        exit.Should().NotBe(0, node.Describe());
        node.Output.Where(l => l.Contains("omnibroker: cluster:", StringComparison.Ordinal)).Should()
            .ContainSingle().Which.Should().Contain("Cluster:Nats:TlsCaFile", node.Describe());
    }

    private static string[] NodeArgs(int port, string caFile, Pki client) =>
    [
        "--Cluster:Nats:Urls=tls://127.0.0.1:" + port.ToString(CultureInfo.InvariantCulture), "--Cluster:NodeId=tls-node",
        "--Cluster:Nats:TlsCaFile=" + caFile, "--Cluster:Nats:TlsCertFile=" + client.ClientCertFile, "--Cluster:Nats:TlsKeyFile=" + client.ClientKeyFile,
    ];

    private string Data(string name) => Directory.CreateDirectory(Path.Combine(_root, name)).FullName;

    private string Policies()
    {
        var dir = Directory.CreateDirectory(Path.Combine(_root, "policies")).FullName;
        File.WriteAllText(Path.Combine(dir, "p.yaml"), "version: 1\nrules: []\n");
        return dir;
    }

    public void Dispose() => TempDirectory.Delete(_root);

    /// <summary>A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.</summary>
    private sealed record Pki(string CaFile, string ServerCertFile, string ServerKeyFile, string ClientCertFile, string ClientKeyFile)
    {
        public static Pki Create(string root, string name)
        {
            var dir = Directory.CreateDirectory(Path.Combine(root, "pki-" + name)).FullName;
            using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var caRequest = new CertificateRequest($"CN=NATS test CA {name}", caKey, HashAlgorithmName.SHA256);
            caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
            using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
            var caFile = Path.Combine(dir, "ca.crt");
            File.WriteAllText(caFile, ca.ExportCertificatePem());
            var (serverCert, serverKey) = Leaf(dir, "server", ca, server: true);
            var (clientCert, clientKey) = Leaf(dir, "client", ca, server: false);
            return new Pki(caFile, serverCert, serverKey, clientCert, clientKey);
        }

        private static (string Cert, string Key) Leaf(string dir, string name, X509Certificate2 ca, bool server)
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
                [new Oid(server ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
            var san = new SubjectAlternativeNameBuilder();
            san.AddIpAddress(IPAddress.Loopback);
            san.AddDnsName("localhost");
            request.CertificateExtensions.Add(san.Build());
            var serial = RandomNumberGenerator.GetBytes(12);
            serial[0] &= 0x7F;
            using var cert = request.Create(ca, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1), serial);
            var certFile = Path.Combine(dir, name + ".crt");
            var keyFile = Path.Combine(dir, name + ".key");
            File.WriteAllText(certFile, cert.ExportCertificatePem());
            File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
            return (certFile, keyFile);
        }
    }

    /// <summary>One nats-server with JetStream, TLS required and client certificates verified; stopped by PID.</summary>
    private sealed class TlsNatsServer : IDisposable
    {
        private readonly Process _process;
        private readonly List<string> _output = [];

        private TlsNatsServer(Process process, int port)
        {
            _process = process;
            Port = port;
        }

        public int Port { get; }

        /// <param name="nkeyUser">when set, the only user the server admits (an NKey public key).</param>
        public static async Task<TlsNatsServer> StartAsync(string root, Pki pki, string? nkeyUser = null)
        {
            var port = BrokerHostProcess.FreePort();
            var store = Directory.CreateDirectory(Path.Combine(root, "js-" + port.ToString(CultureInfo.InvariantCulture))).FullName;
            var config = Path.Combine(root, "nats-" + port.ToString(CultureInfo.InvariantCulture) + ".conf");
            File.WriteAllText(config, $$"""
                listen: "127.0.0.1:{{port}}"
                jetstream { store_dir: "{{store}}" }
                tls {
                  cert_file: "{{pki.ServerCertFile}}"
                  key_file: "{{pki.ServerKeyFile}}"
                  ca_file: "{{pki.CaFile}}"
                  verify: true
                }
                {{(nkeyUser is null ? "" : "authorization { users: [ { nkey: \"" + nkeyUser + "\" } ] }")}}
                """);
            var start = new ProcessStartInfo(NatsServerCluster.Executable)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add(config);
            var process = new Process { StartInfo = start };
            var server = new TlsNatsServer(process, port);
            process.OutputDataReceived += (_, e) => server.Add(e.Data);
            process.ErrorDataReceived += (_, e) => server.Add(e.Data);
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (!server.Output.Any(l => l.Contains("Server is ready", StringComparison.Ordinal)))
            {
                if (process.HasExited || DateTime.UtcNow > deadline)
                {
                    server.Dispose();
                    throw new InvalidOperationException("nats-server with TLS did not start\n" + string.Join("\n", server.Output));
                }
                await Task.Delay(100);
            }
            return server;
        }

        private string[] Output
        {
            get
            {
                lock (_output)
                {
                    return [.. _output];
                }
            }
        }

        private void Add(string? line)
        {
            if (line is not null)
            {
                lock (_output)
                {
                    _output.Add(line);
                }
            }
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(10_000);
            }
            _process.Dispose();
        }
    }
}
