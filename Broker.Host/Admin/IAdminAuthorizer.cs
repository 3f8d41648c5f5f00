using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Host.Admin;

/// <summary>
/// Decides whether a client certificate may use the admin API when the HTTP listener is not bound to loopback.
/// Implemented over the policy (the certificate's grants must include the <c>admin</c> action). The certificate
/// has already passed the TLS handshake; implementations that are not sure the listener validated the chain
/// against the broker's trust anchors must validate it themselves. Without an implementation in DI every
/// non-loopback admin request is refused.
/// </summary>
public interface IAdminAuthorizer
{
    bool IsAdmin(X509Certificate2 certificate);
}

/// <summary>One readiness condition for <c>/readyz</c> (MQTT listener bound, policy loaded, ...).</summary>
public interface IReadinessCheck
{
    string Name { get; }

    bool IsReady { get; }
}
