using System.Net;
using FluentAssertions;
using OmniBroker.Auth;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Auth;

public sealed class ConnectedIdentityRegistryTests : IDisposable
{
    private readonly TestPki _pki = TestPki.Create();
    private readonly ManualTimeProvider _time = new(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));

    public void Dispose() => _pki.Dispose();

    private ClientIdentity Identity(TimeSpan validFor) =>
        new(Guid.NewGuid().ToString("N"), [_pki.Good, _pki.Intermediate, _pki.Root], _time.GetUtcNow() + validFor, new IPEndPoint(IPAddress.Loopback, 1), _time.GetUtcNow());

    [Fact]
    public void Register_ChainExpiresWhileConnected_IdentityRevokedAsExpired()
    {
        using var registry = new ConnectedIdentityRegistry(_time);
        var soon = Identity(TimeSpan.FromMinutes(5));
        var later = Identity(TimeSpan.FromDays(3));
        registry.Register(later);
        registry.Register(soon);

        _time.Advance(TimeSpan.FromMinutes(4));
        soon.IdentityRevoked.IsCancellationRequested.Should().BeFalse();

        _time.Advance(TimeSpan.FromMinutes(2));
        soon.IdentityRevoked.IsCancellationRequested.Should().BeTrue();
        soon.RevocationReason.Should().Be("expired");
        later.IdentityRevoked.IsCancellationRequested.Should().BeFalse();
        registry.Snapshot().Should().ContainSingle().Which.Should().BeSameAs(later);

        _time.Advance(TimeSpan.FromDays(3));
        later.RevocationReason.Should().Be("expired");
        registry.Count.Should().Be(0);
    }

    [Fact]
    public void Unregister_BeforeExpiry_NotRevoked()
    {
        using var registry = new ConnectedIdentityRegistry(_time);
        var identity = Identity(TimeSpan.FromMinutes(5));
        registry.Register(identity);
        registry.Unregister(identity);

        _time.Advance(TimeSpan.FromMinutes(10));

        identity.IdentityRevoked.IsCancellationRequested.Should().BeFalse();
        registry.Count.Should().Be(0);
    }

    [Fact]
    public void Revoke_Twice_FirstReasonKept()
    {
        var identity = Identity(TimeSpan.FromDays(1));

        identity.Revoke("revoked");
        identity.Revoke("expired");

        identity.RevocationReason.Should().Be("revoked");
        identity.IdentityRevoked.IsCancellationRequested.Should().BeTrue();
    }

    [Fact]
    public void Snapshot_RevokedByMonitor_TokenCancelled()
    {
        using var registry = new ConnectedIdentityRegistry(_time);
        var identity = Identity(TimeSpan.FromDays(1));
        registry.Register(identity);

        foreach (var connected in registry.Snapshot())
        {
            connected.Revoke("revoked");
        }

        identity.IdentityRevoked.IsCancellationRequested.Should().BeTrue();
        identity.RevocationReason.Should().Be("revoked");
    }
}
