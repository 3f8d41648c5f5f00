using System.Security.Cryptography.X509Certificates;
using FluentAssertions;
using OmniBroker.Auth;
using OmniBroker.Auth.Revocation;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Revocation;

/// <summary>The monitor drops connected identities whose certificates a refreshed CRL or OCSP answer revokes, or that expire.</summary>
public sealed class LiveRevocationTests : IAsyncLifetime
{
    private LoopbackHttpServer _server = null!;
    private RevocationTestPki _pki = null!;

    public async Task InitializeAsync()
    {
        _server = await LoopbackHttpServer.StartAsync();
        _pki = RevocationTestPki.Create("Live", rootCrlUrl: _server.Url("/root.crl"));
        _server.Serve("/root.crl", _pki.BuildCrl(root: true, [], 1));
    }

    public async Task DisposeAsync()
    {
        _pki.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Monitor_RefreshedCrlRevokesOne_OnlyThatIdentityRevoked()
    {
        ManualTimeProvider clock = new(DateTimeOffset.UtcNow);
        X509Certificate2 alice = _pki.IssueLeaf("alice", crlUrl: _server.Url("/intermediate.crl"));
        X509Certificate2 bob = _pki.IssueLeaf("bob", crlUrl: _server.Url("/intermediate.crl"));
        _server.Serve("/intermediate.crl", _pki.BuildCrl(root: false, [], 1));
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Crl;
            o.CrlMaxRefreshInterval = TimeSpan.FromMinutes(1);
        }, clock);
        (await harness.CheckAsync(_pki.Chain(alice))).Admit.Should().BeTrue();
        (await harness.CheckAsync(_pki.Chain(bob))).Admit.Should().BeTrue();
        TestConnectedIdentity aliceConnection = harness.Registry.Add(_pki.Chain(alice));
        TestConnectedIdentity bobConnection = harness.Registry.Add(_pki.Chain(bob));
        (await harness.Runtime.Monitor.RunOnceAsync(CancellationToken.None)).Should().Be(0);

        _server.Serve("/intermediate.crl", _pki.BuildCrl(root: false, [alice], 2));
        clock.Advance(TimeSpan.FromMinutes(2));
        await harness.Runtime.Crls.RefreshDueAsync(CancellationToken.None);
        int dropped = await harness.Runtime.Monitor.RunOnceAsync(CancellationToken.None);

        dropped.Should().Be(1);
        aliceConnection.RevokedReason.Should().Be("revoked");
        bobConnection.RevokedReason.Should().BeNull();
        harness.Metrics.ConnectionsRevoked.Should().Be(1);
        harness.Logs.WithEventId(4030).Should().ContainSingle().Which.Message.Should().Contain("CN=alice");
        (await harness.Runtime.Monitor.RunOnceAsync(CancellationToken.None)).Should().Be(0, "an identity is dropped once");
    }

    [Fact]
    public async Task Monitor_IntermediateRevokedInRootCrl_AllItsIdentitiesRevoked()
    {
        ManualTimeProvider clock = new(DateTimeOffset.UtcNow);
        X509Certificate2 alice = _pki.IssueLeaf("alice", crlUrl: _server.Url("/intermediate.crl"));
        X509Certificate2 bob = _pki.IssueLeaf("bob", crlUrl: _server.Url("/intermediate.crl"));
        _server.Serve("/intermediate.crl", _pki.BuildCrl(root: false, [], 1));
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Crl;
            o.CrlMaxRefreshInterval = TimeSpan.FromMinutes(1);
        }, clock);
        (await harness.CheckAsync(_pki.Chain(alice))).Admit.Should().BeTrue();
        TestConnectedIdentity a = harness.Registry.Add(_pki.Chain(alice));
        TestConnectedIdentity b = harness.Registry.Add(_pki.Chain(bob));

        _server.Serve("/root.crl", _pki.BuildCrl(root: true, [_pki.Intermediate], 2));
        clock.Advance(TimeSpan.FromMinutes(2));
        await harness.Runtime.Crls.RefreshDueAsync(CancellationToken.None);
        await harness.Runtime.Monitor.RunOnceAsync(CancellationToken.None);

        a.RevokedReason.Should().Be("revoked");
        b.RevokedReason.Should().Be("revoked");
    }

    [Fact]
    public async Task Monitor_CrlFileChanges_MonitorWakesAndDrops()
    {
        string dir = Directory.CreateTempSubdirectory("omni-live").FullName;
        try
        {
            X509Certificate2 carol = _pki.IssueLeaf("carol");
            string path = Path.Combine(dir, "intermediate.crl");
            await File.WriteAllBytesAsync(path, _pki.BuildCrl(root: false, [], 1));
            using RevocationHarness harness = new(o =>
            {
                o.Mode = RevocationMode.Crl;
                o.CrlFiles.Add(path);
                o.MonitorInterval = TimeSpan.FromHours(1); // only the CRL change can wake it in time
                o.CrlFilePollInterval = TimeSpan.FromMilliseconds(500);
            });
            TestConnectedIdentity connection = harness.Registry.Add(_pki.Chain(carol));
            using CancellationTokenSource stop = new();
            await harness.Runtime.Fetcher.StartAsync(stop.Token);
            await harness.Runtime.Monitor.StartAsync(stop.Token);
            await WaitUntilAsync(() => harness.Logs.WithEventId(4032).Count > 0);
            connection.RevokedReason.Should().BeNull();

            string temporary = path + ".new";
            await File.WriteAllBytesAsync(temporary, _pki.BuildCrl(root: false, [carol], 2));
            File.Move(temporary, path, overwrite: true);
            await WaitUntilAsync(() => connection.RevokedReason is not null);

            connection.RevokedReason.Should().Be("revoked");
            await harness.Runtime.Monitor.StopAsync(CancellationToken.None);
            await harness.Runtime.Fetcher.StopAsync(CancellationToken.None);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Monitor_OcspAnswerTurnsRevoked_IdentityRevokedAfterRefreshAhead()
    {
        string dir = Directory.CreateTempSubdirectory("omni-live-ocsp").FullName;
        int port = OpensslOcspResponder.FreePort();
        try
        {
            X509Certificate2 dave = _pki.IssueLeaf("dave", ocspUrl: $"http://127.0.0.1:{port}/");
            string index = Path.Combine(dir, "index.txt");
            File.WriteAllText(index, RevocationTestPki.OpensslIndex([dave], []));
            RevocationTestPki.WritePem(Path.Combine(dir, "ca.pem"), _pki.Intermediate);
            RevocationTestPki.WriteKey(Path.Combine(dir, "ca.key"), _pki.IntermediateKey);
            ManualTimeProvider clock = new(DateTimeOffset.UtcNow);
            using RevocationHarness harness = new(o =>
            {
                o.Mode = RevocationMode.Ocsp;
                o.RefreshMargin = TimeSpan.FromMinutes(5);
            }, clock);

            using (await OpensslOcspResponder.StartAsync(port, index, Path.Combine(dir, "ca.pem"), Path.Combine(dir, "ca.pem"), Path.Combine(dir, "ca.key"), "-nmin", "10"))
            {
                (await harness.CheckAsync(_pki.Chain(dave))).Status.Should().Be(RevocationStatus.Good, harness.LogText);
            }

            TestConnectedIdentity connection = harness.Registry.Add(_pki.Chain(dave));
            (await harness.Runtime.Monitor.RunOnceAsync(CancellationToken.None)).Should().Be(0, "the cached answer is not yet due for refresh");
            harness.Metrics.OcspRequestsTotal.Should().Be(1);

            File.WriteAllText(index, RevocationTestPki.OpensslIndex([], [dave]));
            using (await OpensslOcspResponder.StartAsync(port, index, Path.Combine(dir, "ca.pem"), Path.Combine(dir, "ca.pem"), Path.Combine(dir, "ca.key"), "-nmin", "10"))
            {
                clock.Advance(TimeSpan.FromMinutes(6)); // inside the refresh margin before nextUpdate
                (await harness.Runtime.Monitor.RunOnceAsync(CancellationToken.None)).Should().Be(1, harness.LogText);
            }

            connection.RevokedReason.Should().Be("revoked");
            harness.Metrics.OcspRequests(OcspRequestResult.Revoked).Should().Be(1);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Monitor_ResponderDownDuringRefresh_KeepsCachedAnswerAndDropsNobody()
    {
        string dir = Directory.CreateTempSubdirectory("omni-live-ocsp").FullName;
        int port = OpensslOcspResponder.FreePort();
        try
        {
            X509Certificate2 erin = _pki.IssueLeaf("erin", ocspUrl: $"http://127.0.0.1:{port}/");
            string index = Path.Combine(dir, "index.txt");
            File.WriteAllText(index, RevocationTestPki.OpensslIndex([erin], []));
            RevocationTestPki.WritePem(Path.Combine(dir, "ca.pem"), _pki.Intermediate);
            RevocationTestPki.WriteKey(Path.Combine(dir, "ca.key"), _pki.IntermediateKey);
            ManualTimeProvider clock = new(DateTimeOffset.UtcNow);
            using RevocationHarness harness = new(o => o.Mode = RevocationMode.Ocsp, clock);
            using (await OpensslOcspResponder.StartAsync(port, index, Path.Combine(dir, "ca.pem"), Path.Combine(dir, "ca.pem"), Path.Combine(dir, "ca.key"), "-nmin", "10"))
            {
                (await harness.CheckAsync(_pki.Chain(erin))).Status.Should().Be(RevocationStatus.Good, harness.LogText);
            }

            TestConnectedIdentity connection = harness.Registry.Add(_pki.Chain(erin));
            clock.Advance(TimeSpan.FromMinutes(6));
            (await harness.Runtime.Monitor.RunOnceAsync(CancellationToken.None)).Should().Be(0);

            connection.RevokedReason.Should().BeNull();
            harness.Metrics.OcspRequests(OcspRequestResult.NetworkError).Should().Be(1, "the refresh ahead of expiry was tried");
            (await harness.CheckAsync(_pki.Chain(erin))).Status.Should().Be(RevocationStatus.Good, "the still-valid cached answer is kept");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Monitor_CertificateExpires_IdentityRevokedAsExpired()
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        ManualTimeProvider clock = new(now);
        X509Certificate2 shortLived = _pki.IssueLeaf("short", crlUrl: _server.Url("/intermediate.crl"), notAfter: now.AddHours(1));
        X509Certificate2 longLived = _pki.IssueLeaf("long", crlUrl: _server.Url("/intermediate.crl"));
        _server.Serve("/intermediate.crl", _pki.BuildCrl(root: false, [], 1, nextUpdate: now.AddDays(3)));
        using RevocationHarness harness = new(o => o.Mode = RevocationMode.Crl, clock);
        TestConnectedIdentity s = harness.Registry.Add(_pki.Chain(shortLived));
        TestConnectedIdentity l = harness.Registry.Add(_pki.Chain(longLived));
        (await harness.Runtime.Monitor.RunOnceAsync(CancellationToken.None)).Should().Be(0);

        clock.Advance(TimeSpan.FromHours(2));
        (await harness.Runtime.Monitor.RunOnceAsync(CancellationToken.None)).Should().Be(1);

        s.RevokedReason.Should().Be("expired");
        l.RevokedReason.Should().BeNull();
        harness.Metrics.ConnectionsExpired.Should().Be(1);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(20);
        while (!condition())
        {
            DateTime.UtcNow.Should().BeBefore(deadline, "the condition should hold within 20 s");
            await Task.Delay(20);
        }
    }
}
