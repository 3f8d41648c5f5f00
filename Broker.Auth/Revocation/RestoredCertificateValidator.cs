using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Auth.Revocation;

/// <summary>Re-checks a restored session's certificate as a TLS handshake would: chain to the configured anchors,
/// validity, key usage, then revocation (CRL/OCSP per Revocation:Mode). A certificate revoked or expired while the
/// broker was down loses its session. An unknown revocation status (responder unreachable at start-up) keeps the
/// session: the device is checked again at its next handshake, and a connected one is watched as usual.</summary>
internal sealed class RestoredCertificateValidator(ClientCertificateValidator validator, IServiceProvider services) : IRestoredIdentityValidator
{
    private int _crlsLoaded;

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
        if (Interlocked.Exchange(ref _crlsLoaded, 1) == 0 && services.GetService<RevocationRuntime>() is { } runtime)
        {
            // Restore runs before the CRL watcher's first pass: read the configured CRL files now, so a certificate
            // revoked while the broker was down is seen as revoked rather than unknown.
            runtime.Crls.ReloadFiles(force: false);
        }
        var check = await revocation.CheckAsync(result.Chain, cancellationToken).ConfigureAwait(false);
        return check.Status == RevocationStatus.Revoked ? $"certificate revoked ({check.Detail})" : null;
    }
}
