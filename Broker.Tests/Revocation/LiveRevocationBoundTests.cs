using System.Security.Cryptography.X509Certificates;
using FluentAssertions;
using OmniBroker.Auth;
using OmniBroker.Auth.Revocation;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Revocation;

/// <summary>Issue 9 defect 5: a connected client's cached status is refreshed once older than MaxStatusAge,
/// whatever the answer's nextUpdate, so a revoked client is dropped within MaxStatusAge + MonitorInterval.</summary>
public sealed class LiveRevocationBoundTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("omni-live-bound").FullName;
    private LoopbackHttpServer _server = null!;
    private RevocationTestPki _pki = null!;

    public async Task InitializeAsync()
    {
        _server = await LoopbackHttpServer.StartAsync();
        _pki = RevocationTestPki.Create("Bound", rootCrlUrl: _server.Url("/root.crl"));
        _server.Serve("/root.crl", _pki.BuildCrl(root: true, [], 1));
    }

    public async Task DisposeAsync()
    {
        _pki.Dispose();
        await _server.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Monitor_OcspAnswerValidOneHourRevokedAtResponder_DroppedAfterMaxStatusAge()
    {
        int port = OpensslOcspResponder.FreePort();
        X509Certificate2 device = _pki.IssueLeaf("device", ocspUrl: $"http://127.0.0.1:{port}/");
        string index = Path.Combine(_dir, "index.txt");
        string ca = Path.Combine(_dir, "ca.pem");
        string key = Path.Combine(_dir, "ca.key");
        File.WriteAllText(index, RevocationTestPki.OpensslIndex([device], []));
        RevocationTestPki.WritePem(ca, _pki.Intermediate);
        RevocationTestPki.WriteKey(key, _pki.IntermediateKey);
        ManualTimeProvider clock = new(DateTimeOffset.UtcNow);
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Ocsp;
            o.MaxStatusAge = TimeSpan.FromMinutes(2);
        }, clock);

        // -nmin 60: the answer says it is good for an hour.
        using (await OpensslOcspResponder.StartAsync(port, index, ca, ca, key, "-nmin", "60"))
        {
            (await harness.CheckAsync(_pki.Chain(device))).Status.Should().Be(RevocationStatus.Good, harness.LogText);
        }

        TestConnectedIdentity connection = harness.Registry.Add(_pki.Chain(device));
        File.WriteAllText(index, RevocationTestPki.OpensslIndex([], [device]));
        using (await OpensslOcspResponder.StartAsync(port, index, ca, ca, key, "-nmin", "60"))
        {
            clock.Advance(TimeSpan.FromMinutes(1));
            (await harness.Runtime.Monitor.RunOnceAsync(CancellationToken.None)).Should().Be(0, "the status is younger than MaxStatusAge");
            harness.Metrics.OcspRequestsTotal.Should().Be(1);

            clock.Advance(TimeSpan.FromMinutes(1.5));
            (await harness.Runtime.Monitor.RunOnceAsync(CancellationToken.None)).Should().Be(1, harness.LogText);
        }

        connection.RevokedReason.Should().Be("revoked");
        harness.Metrics.OcspRequests(OcspRequestResult.Revoked).Should().Be(1);
    }

    [Fact]
    public async Task Monitor_DistributionPointCrlValidOneDayRevokesLater_DroppedAfterMaxStatusAge()
    {
        ManualTimeProvider clock = new(DateTimeOffset.UtcNow);
        X509Certificate2 device = _pki.IssueLeaf("device", crlUrl: _server.Url("/intermediate.crl"));
        _server.Serve("/intermediate.crl", _pki.BuildCrl(root: false, [], 1, nextUpdate: DateTimeOffset.UtcNow.AddDays(1)));
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Crl;
            o.MaxStatusAge = TimeSpan.FromMinutes(2);
            o.CrlMaxRefreshInterval = TimeSpan.FromHours(1);
        }, clock);
        (await harness.CheckAsync(_pki.Chain(device))).Status.Should().Be(RevocationStatus.Good, harness.LogText);
        TestConnectedIdentity connection = harness.Registry.Add(_pki.Chain(device));

        _server.Serve("/intermediate.crl", _pki.BuildCrl(root: false, [device], 2, nextUpdate: DateTimeOffset.UtcNow.AddDays(1)));
        clock.Advance(TimeSpan.FromMinutes(1));
        (await harness.Runtime.Monitor.RunOnceAsync(CancellationToken.None)).Should().Be(0, "the CRL is younger than MaxStatusAge");
        _server.Requests("/intermediate.crl").Should().Be(1);

        // No background refresh runs here: the monitor itself re-fetches the CRL it relies on.
        clock.Advance(TimeSpan.FromMinutes(1.5));
        (await harness.Runtime.Monitor.RunOnceAsync(CancellationToken.None)).Should().Be(1, harness.LogText);

        connection.RevokedReason.Should().Be("revoked");
        _server.Requests("/intermediate.crl").Should().Be(2);
    }
}
