using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using FluentAssertions;
using OmniBroker.Auth;
using OmniBroker.Auth.Revocation;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Revocation;

/// <summary>CRLs fetched over HTTP from a loopback server named in the certificates' distribution points.</summary>
public sealed class CrlRevocationTests : IAsyncLifetime
{
    private LoopbackHttpServer _server = null!;
    private RevocationTestPki _pki = null!;
    private X509Certificate2 _alice = null!;
    private X509Certificate2 _bob = null!;

    public async Task InitializeAsync()
    {
        _server = await LoopbackHttpServer.StartAsync();
        _pki = RevocationTestPki.Create("Crl", rootCrlUrl: _server.Url("/crl/root.crl"));
        _alice = _pki.IssueLeaf("alice", crlUrl: _server.Url("/crl/intermediate.crl"));
        _bob = _pki.IssueLeaf("bob", crlUrl: _server.Url("/crl/intermediate.crl"));
        _server.Serve("/crl/root.crl", _pki.BuildCrl(root: true, [], 1));
    }

    public async Task DisposeAsync()
    {
        _pki.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task DistributionPointCrl_LeafRevoked_RefusedAndOthersAdmitted()
    {
        _server.Serve("/crl/intermediate.crl", _pki.BuildCrl(root: false, [_alice], 1));
        using RevocationHarness harness = new(o => o.Mode = RevocationMode.Crl);

        RevocationCheckResult alice = await harness.CheckAsync(_pki.Chain(_alice));
        RevocationCheckResult bob = await harness.CheckAsync(_pki.Chain(_bob));

        alice.Status.Should().Be(RevocationStatus.Revoked);
        alice.Admit.Should().BeFalse();
        alice.Detail.Should().Contain("CN=alice").And.Contain("KeyCompromise");
        bob.Status.Should().Be(RevocationStatus.Good);
        bob.Admit.Should().BeTrue();
    }

    [Fact]
    public async Task DistributionPointCrl_IntermediateRevoked_AllItsLeavesRefused()
    {
        _server.Serve("/crl/intermediate.crl", _pki.BuildCrl(root: false, [], 1));
        _server.Serve("/crl/root.crl", _pki.BuildCrl(root: true, [_pki.Intermediate], 2));
        using RevocationHarness harness = new(o => o.Mode = RevocationMode.Crl);

        foreach (X509Certificate2 leaf in new[] { _alice, _bob })
        {
            RevocationCheckResult result = await harness.CheckAsync(_pki.Chain(leaf));
            result.Status.Should().Be(RevocationStatus.Revoked);
            result.Admit.Should().BeFalse();
            result.Detail.Should().Contain("issuing CA certificate").And.Contain("Intermediate CA");
        }
    }

    [Fact]
    public async Task DistributionPointCrl_SecondCheck_AnsweredFromCacheWithoutFetching()
    {
        _server.Serve("/crl/intermediate.crl", _pki.BuildCrl(root: false, [], 1));
        using RevocationHarness harness = new(o => o.Mode = RevocationMode.Crl);

        (await harness.CheckAsync(_pki.Chain(_alice))).Status.Should().Be(RevocationStatus.Good);
        int fetched = _server.Requests("/crl/intermediate.crl");
        ValueTask<RevocationCheckResult> second = harness.Checker.CheckAsync(_pki.Chain(_bob), CancellationToken.None);

        second.IsCompletedSuccessfully.Should().BeTrue("a warm cache answers synchronously, without the network");
        (await second).Status.Should().Be(RevocationStatus.Good);
        _server.Requests("/crl/intermediate.crl").Should().Be(fetched);
        fetched.Should().Be(1);
        harness.Metrics.CrlCacheHits.Should().BeGreaterThan(0);
    }

    [Fact]
    public async Task DistributionPointCrl_RefreshFailsLater_LastGoodKept()
    {
        ManualTimeProvider clock = new(DateTimeOffset.UtcNow);
        _server.Serve("/crl/intermediate.crl", _pki.BuildCrl(root: false, [_alice], 1));
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Crl;
            o.CrlMaxRefreshInterval = TimeSpan.FromMinutes(10);
        }, clock);
        (await harness.CheckAsync(_pki.Chain(_bob))).Status.Should().Be(RevocationStatus.Good);

        _server.Fail("/crl/intermediate.crl", 500);
        clock.Advance(TimeSpan.FromMinutes(11));
        await harness.Runtime.Crls.RefreshDueAsync(CancellationToken.None);

        _server.Requests("/crl/intermediate.crl").Should().BeGreaterThan(1, "the background refresh asked again");
        harness.Logs.WithEventId(4001).Should().ContainSingle().Which.Message.Should().Contain("HTTP 500").And.Contain("keeping the last good CRL");
        (await harness.CheckAsync(_pki.Chain(_bob))).Status.Should().Be(RevocationStatus.Good);
        (await harness.CheckAsync(_pki.Chain(_alice))).Status.Should().Be(RevocationStatus.Revoked);
    }

    [Fact]
    public async Task DistributionPointCrl_MalformedBytes_ClearLogAndHardFailRefuses()
    {
        _server.Serve("/crl/intermediate.crl", "this is not a CRL at all"u8.ToArray());
        using RevocationHarness harness = new(o => o.Mode = RevocationMode.Crl);

        RevocationCheckResult result = await harness.CheckAsync(_pki.Chain(_alice));

        result.Status.Should().Be(RevocationStatus.Unknown);
        result.Admit.Should().BeFalse();
        harness.Logs.WithEventId(4002).Should().ContainSingle().Which.Message.Should().Contain("not valid DER").And.Contain("/crl/intermediate.crl");
        harness.Metrics.CrlInvalid.Should().Be(1);
    }

    [Fact]
    public async Task DistributionPointCrl_SignedByAnotherKey_RejectedAsForged()
    {
        using ECDsa forger = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        _server.Serve("/crl/intermediate.crl", _pki.BuildCrl(root: false, [], 5, signWith: forger));
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Crl;
            o.FailurePolicy = RevocationFailurePolicy.HardFail;
        });

        RevocationCheckResult result = await harness.CheckAsync(_pki.Chain(_alice));

        result.Status.Should().Be(RevocationStatus.Unknown);
        result.Admit.Should().BeFalse();
        harness.Logs.WithEventId(4002).Should().ContainSingle().Which.Message.Should().Contain("signature does not verify");
    }

    [Fact]
    public async Task DistributionPointCrl_ServerDown_SoftFailAdmitsAndCounts()
    {
        _server.Fail("/crl/intermediate.crl", 503);
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Crl;
            o.FailurePolicy = RevocationFailurePolicy.SoftFail;
        });

        RevocationCheckResult result = await harness.CheckAsync(_pki.Chain(_alice));

        result.Status.Should().Be(RevocationStatus.Unknown);
        result.Admit.Should().BeTrue();
        harness.Metrics.SoftFailAdmissions.Should().Be(1);
        harness.Logs.WithEventId(4021).Should().ContainSingle();
    }

    [Theory]
    [InlineData(20, StaleCrlPolicy.FailClosed, RevocationStatus.Good, true)]
    [InlineData(120, StaleCrlPolicy.FailClosed, RevocationStatus.Unknown, false)]
    [InlineData(120, StaleCrlPolicy.FailOpen, RevocationStatus.Good, true)]
    public async Task StaleCrl_PastNextUpdate_GraceThenPolicy(int minutesPastNextUpdate, StaleCrlPolicy policy, RevocationStatus expected, bool admitted)
    {
        DateTimeOffset start = DateTimeOffset.UtcNow;
        ManualTimeProvider clock = new(start);
        _server.Serve("/crl/intermediate.crl", _pki.BuildCrl(root: false, [_alice], 1, start.AddMinutes(-1), start.AddHours(1)));
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Crl;
            o.FailurePolicy = RevocationFailurePolicy.SoftFail; // fail-closed must refuse even so
            o.StaleCrlGrace = TimeSpan.FromMinutes(30);
            o.ClockSkew = TimeSpan.FromMinutes(5);
            o.StaleCrlPolicy = policy;
        }, clock);
        (await harness.CheckAsync(_pki.Chain(_bob))).Status.Should().Be(RevocationStatus.Good);

        _server.Fail("/crl/intermediate.crl", 503);
        clock.Advance(TimeSpan.FromHours(1) + TimeSpan.FromMinutes(5 + minutesPastNextUpdate));
        RevocationCheckResult bob = await harness.CheckAsync(_pki.Chain(_bob));
        RevocationCheckResult alice = await harness.CheckAsync(_pki.Chain(_alice));

        bob.Status.Should().Be(expected);
        bob.Admit.Should().Be(admitted);
        alice.Status.Should().Be(RevocationStatus.Revoked, "a listed certificate stays revoked in a stale CRL");
        harness.Logs.WithEventId(4003).Should().NotBeEmpty();
    }

    [Fact]
    public async Task CrlFile_ReplacedOnDisk_WatcherReloadsAndRevocationSeen()
    {
        string dir = Directory.CreateTempSubdirectory("omni-crl").FullName;
        try
        {
            X509Certificate2 carol = _pki.IssueLeaf("carol");
            string path = Path.Combine(dir, "intermediate.crl");
            await File.WriteAllBytesAsync(path, _pki.BuildCrl(root: false, [], 1));
            await File.WriteAllBytesAsync(Path.Combine(dir, "root.crl"), _pki.BuildCrl(root: true, [], 1));
            using RevocationHarness harness = new(o =>
            {
                o.Mode = RevocationMode.Crl;
                o.CrlFiles.Add(path);
                o.CrlFiles.Add(Path.Combine(dir, "root.crl"));
            });
            harness.Runtime.Crls.StartWatching();
            (await harness.CheckAsync(_pki.Chain(carol))).Status.Should().Be(RevocationStatus.Good);
            using CancellationTokenSource stop = new();
            Task fetcher = harness.Runtime.Fetcher.StartAsync(stop.Token);
            TaskCompletionSource changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
            harness.Runtime.Crls.Changed += _ => changed.TrySetResult();

            string temporary = path + ".new";
            await File.WriteAllBytesAsync(temporary, _pki.BuildCrl(root: false, [carol], 2));
            File.Move(temporary, path, overwrite: true);
            await changed.Task.WaitAsync(TimeSpan.FromSeconds(20));

            RevocationCheckResult result = await harness.CheckAsync(_pki.Chain(carol));
            result.Status.Should().Be(RevocationStatus.Revoked);
            result.Detail.Should().Contain(path);
            await harness.Runtime.Fetcher.StopAsync(CancellationToken.None);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task CrlFile_NewVersionForgedOrOlder_LastGoodKept()
    {
        string dir = Directory.CreateTempSubdirectory("omni-crl").FullName;
        try
        {
            X509Certificate2 dave = _pki.IssueLeaf("dave");
            string path = Path.Combine(dir, "intermediate.crl");
            await File.WriteAllBytesAsync(path, _pki.BuildCrl(root: false, [dave], 7));
            using RevocationHarness harness = new(o =>
            {
                o.Mode = RevocationMode.Crl;
                o.CrlFiles.Add(path);
            });
            harness.Runtime.Crls.StartWatching();
            (await harness.CheckAsync([dave, _pki.Intermediate, _pki.Root])).Status.Should().Be(RevocationStatus.Revoked);

            using ECDsa forger = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            await File.WriteAllBytesAsync(path, _pki.BuildCrl(root: false, [], 8, signWith: forger));
            harness.Runtime.Crls.ReloadFiles(force: true);
            (await harness.CheckAsync([dave, _pki.Intermediate, _pki.Root])).Status.Should().Be(RevocationStatus.Revoked);
            harness.Logs.WithEventId(4002).Should().ContainSingle().Which.Message.Should().Contain("signature");

            await File.WriteAllBytesAsync(path, _pki.BuildCrl(root: false, [], 3));
            harness.Runtime.Crls.ReloadFiles(force: true);
            (await harness.CheckAsync([dave, _pki.Intermediate, _pki.Root])).Status.Should().Be(RevocationStatus.Revoked);
            harness.Logs.WithEventId(4005).Should().ContainSingle().Which.Message.Should().Contain("number 3");

            await File.WriteAllBytesAsync(path, [0x30, 0x03, 0x02, 0x01]);
            harness.Runtime.Crls.ReloadFiles(force: true);
            harness.Logs.WithEventId(4002).Should().HaveCount(2);
            (await harness.CheckAsync([dave, _pki.Intermediate, _pki.Root])).Status.Should().Be(RevocationStatus.Revoked);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
