using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Auth;

public enum RevocationStatus
{
    Good,
    Revoked,
    /// <summary>No answer could be had (responder down, CRL stale past grace, OCSP "unknown").</summary>
    Unknown,
    /// <summary>Revocation checking is off for this trust anchor.</summary>
    NotChecked,
}

/// <summary>Outcome of a revocation check. <see cref="Admit"/> already applies the anchor's failure
/// policy (hard-fail refuses Unknown, soft-fail admits it).</summary>
public sealed record RevocationCheckResult(RevocationStatus Status, bool Admit, string Detail);

/// <summary>
/// Checks a validated chain (leaf first, anchor last) for revocation. Implemented in Broker.Auth.Revocation.
/// Must answer from cache without touching the network whenever the cache can answer; a cold lookup waits at
/// most the configured timeout.
/// </summary>
public interface IRevocationChecker
{
    ValueTask<RevocationCheckResult> CheckAsync(IReadOnlyList<X509Certificate2> chain, CancellationToken cancellationToken);
}

/// <summary>The identities of currently connected clients, so background revocation/expiry monitors can drop them.</summary>
public interface IConnectedIdentityRegistry
{
    /// <summary>Snapshot of the connected identities.</summary>
    IReadOnlyCollection<ConnectedIdentity> Snapshot();
}

/// <summary>A connected client's identity; <see cref="Revoke"/> cancels its
/// <see cref="OmniBroker.Mqtt.Abstractions.IClientIdentityFeature.IdentityRevoked"/> token, which makes the
/// engine disconnect it (5.0: DISCONNECT 0x98).</summary>
public abstract class ConnectedIdentity
{
    public abstract IReadOnlyList<X509Certificate2> Chain { get; }

    public abstract void Revoke(string reason);
}
