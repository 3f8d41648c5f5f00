using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Mqtt.Abstractions;

/// <summary>
/// Published on the connection's feature collection by the certificate-authentication middleware
/// (Broker.Auth) once the TLS handshake and chain/revocation checks have passed, as Kestrel's
/// HttpsConnectionMiddleware publishes ITlsConnectionFeature. The MQTT engine refuses a CONNECT on
/// a connection without it.
/// </summary>
public interface IClientIdentityFeature
{
    /// <summary>The validated client (leaf) certificate.</summary>
    X509Certificate2 Certificate { get; }

    /// <summary>Issuer chain as validated, leaf first, anchor last.</summary>
    IReadOnlyList<X509Certificate2> Chain { get; }

    /// <summary>
    /// Cancelled when the identity stops being valid while connected (revoked by CRL/OCSP, or expired).
    /// The engine then disconnects the client (5.0: DISCONNECT 0x98) and forgets its session.
    /// </summary>
    CancellationToken IdentityRevoked { get; }

    /// <summary>Why <see cref="IdentityRevoked"/> fired ("revoked", "expired"), for logs.</summary>
    string? RevocationReason { get; }
}

/// <summary>The remote address as seen by the broker (after an optional PROXY protocol header).</summary>
public interface IRemoteAddressFeature
{
    System.Net.EndPoint? RemoteEndPoint { get; }
}
