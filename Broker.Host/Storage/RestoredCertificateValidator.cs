using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using OmniBroker.Auth;
using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Host.Storage;

/// <summary>Re-checks a restored session's certificate as a TLS handshake would: chain to the configured anchors,
/// validity, key usage, then revocation (CRL/OCSP per Revocation:Mode). A certificate revoked or expired while the
/// broker was down loses its session.</summary>
internal sealed class RestoredCertificateValidator(ClientCertificateValidator validator, IServiceProvider services) : IRestoredIdentityValidator
{
    public async ValueTask<string?> ValidateAsync(IReadOnlyList<X509Certificate2> chain, CancellationToken cancellationToken)
    {
        var result = validator.Validate(chain[0], chain.Skip(1));
        if (!result.IsValid)
        {
            return $"certificate no longer valid ({result.Reason}: {result.Detail})";
        }
        if (services.GetService<IRevocationChecker>() is not { } revocation)
        {
            return null;
        }
        var check = await revocation.CheckAsync(result.Chain, cancellationToken).ConfigureAwait(false);
        return check.Admit ? null : $"certificate {(check.Status == RevocationStatus.Revoked ? "revoked" : "revocation status unknown")} ({check.Detail})";
    }
}
