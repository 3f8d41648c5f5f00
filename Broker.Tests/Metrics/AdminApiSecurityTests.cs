using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using FluentAssertions;
using OmniBroker.Host.Admin;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Metrics;

/// <summary>
/// The admin API when it must authenticate callers (a non-loopback bind, forced here on 127.0.0.1 with
/// Admin:RequireClientCertificate): HTTPS with a client certificate whose policy grants <c>admin</c>, everyone
/// else refused. Real TLS, real certificates, the real policy.
/// </summary>
[Collection(MetricsCollection.Name)]
public sealed class AdminApiSecurityTests : IClassFixture<AdminApiSecurityTests.Fixture>
{
    private readonly Fixture _fixture;

    public AdminApiSecurityTests(Fixture fixture)
    {
        _fixture = fixture;
    }

    public sealed class Fixture : IAsyncLifetime
    {
        private string _directory = null!;

        public TestPki Pki { get; } = TestPki.Create();

        public TestBroker Broker { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            _directory = Support.TempDirectory.Create("omnibroker-admin");
            var files = Pki.WriteFiles(Path.Combine(_directory, "tls"));
            var policies = Path.Combine(_directory, "policies");
            Directory.CreateDirectory(policies);
            File.WriteAllText(Path.Combine(policies, "tests.yaml"), MetricsEndToEndTests.TestPolicy);
            Broker = await TestBroker.StartAsync(files, Path.Combine(_directory, "data"), settings: new Dictionary<string, string?>
            {
                ["Http:Url"] = "https://127.0.0.1:0",
                [AdminOptions.RequireClientCertificateKey] = "true",
                ["Policy:Directory"] = policies,
                ["Revocation:Mode"] = "none",
            });
        }

        public async Task DisposeAsync()
        {
            await Broker.DisposeAsync();
            Pki.Dispose();
            Support.TempDirectory.Delete(_directory);
        }

        public HttpClient Client(X509Certificate2? certificate)
        {
            var handler = new SocketsHttpHandler
            {
                SslOptions = new SslClientAuthenticationOptions
                {
                    CertificateChainPolicy = new X509ChainPolicy
                    {
                        TrustMode = X509ChainTrustMode.CustomRootTrust,
                        CustomTrustStore = { Pki.Root },
                        RevocationMode = X509RevocationMode.NoCheck,
                        DisableCertificateDownloads = true,
                    },
                    CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                    TargetHost = "localhost",
                },
            };
            if (certificate is not null)
            {
                handler.SslOptions.ClientCertificateContext =
                    SslStreamCertificateContext.Create(certificate, new X509Certificate2Collection(Pki.IssuerOf(certificate)), offline: true);
            }

            return new HttpClient(handler) { BaseAddress = Broker.HttpBaseUrl, Timeout = TimeSpan.FromSeconds(30) };
        }
    }

    [Fact]
    public async Task AdminApi_WithoutClientCertificate_IsRefused()
    {
        using var http = _fixture.Client(null);

        using var response = await http.GetAsync("/api/clients");

        response.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await response.Content.ReadAsStringAsync()).Should().Contain("client certificate");
    }

    [Fact]
    public async Task AdminApi_WithDeviceCertificateWithoutAdminGrant_IsRefused()
    {
        using var http = _fixture.Client(_fixture.Pki.Good);

        using var list = await http.GetAsync("/api/clients");
        using var delete = await http.DeleteAsync("/api/clients/anyone");

        list.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await list.Content.ReadAsStringAsync()).Should().Contain("no admin grant");
        delete.StatusCode.Should().Be(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task AdminApi_WithAdminCertificate_IsServed_AndDecisionsAreCounted()
    {
        using var admin = _fixture.Client(_fixture.Pki.IssueLeaf("metrics-admin"));
        using var device = _fixture.Client(_fixture.Pki.Good);
        var before = Exposition.Parse(await admin.GetStringAsync("/metrics"));

        using var allowed = await admin.GetAsync("/api/clients");
        using var refused = await device.GetAsync("/api/clients");

        allowed.StatusCode.Should().Be(HttpStatusCode.OK);
        refused.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        var after = Exposition.Parse(await admin.GetStringAsync("/metrics"));
        (after.Value("omnibroker_admin_requests_total", "result=allow")
            - before.ValueOrZero("omnibroker_admin_requests_total", "result=allow")).Should().BeGreaterThanOrEqualTo(1);
        (after.Value("omnibroker_admin_requests_total", "result=deny")
            - before.ValueOrZero("omnibroker_admin_requests_total", "result=deny")).Should().BeGreaterThanOrEqualTo(1);
    }

    [Fact]
    public async Task Probes_StayOpenWithoutCertificate()
    {
        using var http = _fixture.Client(null);

        (await http.GetAsync("/healthz")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await http.GetAsync("/metrics")).StatusCode.Should().Be(HttpStatusCode.OK);
    }
}
