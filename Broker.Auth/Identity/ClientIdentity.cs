using System.Net;
using System.Security.Cryptography.X509Certificates;
using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Auth;

/// <summary>
/// The authenticated identity of one connection: published as <see cref="IClientIdentityFeature"/> and held in the
/// <see cref="ConnectedIdentityRegistry"/> while the connection lives. <see cref="Revoke"/> (revocation monitor,
/// expiry timer) cancels <see cref="IdentityRevoked"/>; the engine then disconnects the client.
/// </summary>
internal sealed class ClientIdentity : ConnectedIdentity, IClientIdentityFeature
{
    // Never disposed: Revoke may race with the end of the connection, and a CTS without timers holds nothing.
    private readonly CancellationTokenSource _revoked = new();
    private string? _revocationReason;

    public ClientIdentity(string connectionId, IReadOnlyList<X509Certificate2> chain, DateTimeOffset validUntil, EndPoint? remoteEndPoint, DateTimeOffset connectedAt)
    {
        if (chain.Count == 0)
        {
            throw new ArgumentException("an identity needs a validated chain", nameof(chain));
        }
        ConnectionId = connectionId;
        Chain = chain;
        ValidUntil = validUntil;
        RemoteEndPoint = remoteEndPoint;
        ConnectedAt = connectedAt;
    }

    public string ConnectionId { get; }

    public X509Certificate2 Certificate => Chain[0];

    public override IReadOnlyList<X509Certificate2> Chain { get; }

    /// <summary>Earliest notAfter in the chain.</summary>
    public DateTimeOffset ValidUntil { get; }

    public EndPoint? RemoteEndPoint { get; }

    public DateTimeOffset ConnectedAt { get; }

    /// <summary>Registry bookkeeping: position in the expiry order.</summary>
    internal long Sequence { get; set; }

    public CancellationToken IdentityRevoked => _revoked.Token;

    public string? RevocationReason => Volatile.Read(ref _revocationReason);

    public bool IsRevoked => _revoked.IsCancellationRequested;

    public override void Revoke(string reason)
    {
        ArgumentException.ThrowIfNullOrEmpty(reason);
        if (Interlocked.CompareExchange(ref _revocationReason, reason, null) is null)
        {
            // The token flips now; the engine's callbacks (disconnecting the client) run on the thread pool, so the
            // expiry timer or revocation monitor revoking many identities is neither blocked nor broken by one of them.
            _ = _revoked.CancelAsync().ContinueWith(static t => t.Exception, CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }
}
