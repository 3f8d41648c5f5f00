using System.Security.Cryptography.X509Certificates;
using FluentAssertions;
using OmniBroker.Auth;
using OmniBroker.Auth.Revocation;
using Xunit;

namespace OmniBroker.Tests.Revocation;

/// <summary>Issue 9 defect 3: a stale distribution-point CRL must not start a download loop.</summary>
public sealed class CrlRefetchTests : IAsyncLifetime
{
    private LoopbackHttpServer _server = null!;
    private RevocationTestPki _pki = null!;

    public async Task InitializeAsync()
    {
        _server = await LoopbackHttpServer.StartAsync();
        _pki = RevocationTestPki.Create("Refetch", rootCrlUrl: _server.Url("/root.crl"));
        _server.Serve("/root.crl", _pki.BuildCrl(root: true, [], 1));
    }

    public async Task DisposeAsync()
    {
        _pki.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task StaleCrl_ResignedWithSameNumber_FetchesBoundedByRetryInterval()
    {
        X509Certificate2 device = _pki.IssueLeaf("device", crlUrl: _server.Url("/intermediate.crl"));
        DateTimeOffset start = DateTimeOffset.UtcNow;

        // Like a CA that re-signs on every request: new bytes (ECDSA signatures are randomized), same cRLNumber,
        // and a nextUpdate that is soon past (then past the grace, fail-closed).
        _server.Handle("/intermediate.crl", async context =>
        {
            context.Response.ContentType = "application/pkix-crl";
            await context.Response.Body.WriteAsync(_pki.BuildCrl(root: false, [], 7, start.AddMinutes(-1), start.AddSeconds(4)));
        });
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Crl;
            o.StaleCrlGrace = TimeSpan.FromSeconds(1);
            o.ClockSkew = TimeSpan.FromSeconds(1);
            o.MonitorInterval = TimeSpan.FromSeconds(1);
            o.CrlRetryInterval = TimeSpan.FromSeconds(2);
        });
        int changes = 0;
        (await harness.CheckAsync(_pki.Chain(device))).Status.Should().Be(RevocationStatus.Good, harness.LogText);
        harness.Runtime.Crls.Changed += _ => Interlocked.Increment(ref changes);
        harness.Registry.Add(_pki.Chain(device));
        using CancellationTokenSource stop = new();
        await harness.Runtime.Fetcher.StartAsync(stop.Token);
        await harness.Runtime.Monitor.StartAsync(stop.Token);

        // Handshakes keep coming while the CRL goes stale (after ~6 s) and stays stale.
        RevocationCheckResult last = default!;
        while (DateTimeOffset.UtcNow - start < TimeSpan.FromSeconds(12))
        {
            last = await harness.CheckAsync(_pki.Chain(device));
            await Task.Delay(20);
        }

        await harness.Runtime.Monitor.StopAsync(CancellationToken.None);
        await harness.Runtime.Fetcher.StopAsync(CancellationToken.None);
        int fetches = _server.Requests("/intermediate.crl");

        last.Status.Should().Be(RevocationStatus.Unknown, "the CRL is past nextUpdate + grace, fail-closed");
        last.Admit.Should().BeFalse();
        // 12 s with a 2 s retry interval: the first fetch, then at most one download per interval (plus slack for a
        // loaded machine). The defect downloaded hundreds of times a second.
        fetches.Should().BeInRange(2, 10, harness.LogText);
        harness.Logs.WithEventId(4000).Where(e => e.Message.Contains("intermediate.crl", StringComparison.Ordinal)).Should().ContainSingle("a re-signed copy with the same number is not a new CRL");
        changes.Should().Be(0, "nothing changed for the monitor to re-check");
        harness.Logs.WithEventId(4032).Count.Should().BeLessThan(30, "the monitor is not woken in a loop");
    }
}
