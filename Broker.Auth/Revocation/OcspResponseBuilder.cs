using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.Ocsp;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Operators;
using Org.BouncyCastle.Ocsp;
using Org.BouncyCastle.Security;

namespace OmniBroker.Auth.Revocation;

/// <summary>Builds signed OCSP responses for the development PKI's responder, with BouncyCastle's
/// <see cref="BasicOcspRespGenerator"/> and <see cref="OCSPRespGenerator"/>.</summary>
internal static class OcspResponseBuilder
{
    public sealed record Single(OcspCertId CertId, OcspCertStatus Status, DateTimeOffset ThisUpdate, DateTimeOffset? NextUpdate,
        DateTimeOffset? RevocationTime = null, int? Reason = null);

    public static byte[] BuildError(OcspResponseStatus status) =>
        new OCSPRespGenerator().Generate((int)status, null).GetEncoded();

    /// <summary>A successful response signed by <paramref name="signer"/> (ECDSA or RSA private key),
    /// ResponderID byKey, optionally echoing <paramref name="nonceExtensionValue"/>.</summary>
    public static byte[] Build(X509Certificate2 signer, AsymmetricAlgorithm signingKey, IEnumerable<Single> singles,
        DateTimeOffset producedAt, byte[]? nonceExtensionValue, IEnumerable<X509Certificate2>? includeCerts = null)
    {
        BasicOcspRespGenerator generator = new(new RespID(BouncyCastleInterop.PublicKey(signer)));
        foreach (Single single in singles)
        {
            CertificateStatus? status = single.Status switch
            {
                OcspCertStatus.Good => CertificateStatus.Good,
                OcspCertStatus.Revoked => single.Reason is { } reason
                    ? new RevokedStatus((single.RevocationTime ?? single.ThisUpdate).UtcDateTime, reason)
                    : new RevokedStatus(new RevokedInfo(new Asn1GeneralizedTime((single.RevocationTime ?? single.ThisUpdate).UtcDateTime), null)),
                _ => new UnknownStatus(),
            };
            generator.AddResponse(single.CertId.ToBouncyCastle(), status, single.ThisUpdate.UtcDateTime, single.NextUpdate?.UtcDateTime, null);
        }

        if (nonceExtensionValue is not null)
        {
            generator.SetResponseExtensions(new X509Extensions(new Dictionary<DerObjectIdentifier, Org.BouncyCastle.Asn1.X509.X509Extension>
            {
                [OcspObjectIdentifiers.PkixOcspNonce] = new Org.BouncyCastle.Asn1.X509.X509Extension(false, new DerOctetString(nonceExtensionValue)),
            }));
        }

        (string algorithm, byte[] pkcs8) = signingKey switch
        {
            ECDsa ec => ("SHA256WITHECDSA", ec.ExportPkcs8PrivateKey()),
            RSA rsa => ("SHA256WITHRSA", rsa.ExportPkcs8PrivateKey()),
            _ => throw new NotSupportedException($"OCSP signing with {signingKey.GetType().Name} is not supported"),
        };
        AsymmetricKeyParameter key = PrivateKeyFactory.CreateKey(pkcs8);
        Org.BouncyCastle.X509.X509Certificate[]? chain = includeCerts?.Select(BouncyCastleInterop.ToBouncyCastle).ToArray();
        BasicOcspResp basic = generator.Generate(new Asn1SignatureFactory(algorithm, key), chain is { Length: > 0 } ? chain : null,
            producedAt.UtcDateTime);
        return new OCSPRespGenerator().Generate(OCSPRespGenerator.Successful, basic).GetEncoded();
    }
}
