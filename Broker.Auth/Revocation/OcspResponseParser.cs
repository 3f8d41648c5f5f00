using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.Ocsp;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.Ocsp;

namespace OmniBroker.Auth.Revocation;

internal enum OcspCertStatus
{
    Good,
    Revoked,
    Unknown,
}

/// <summary>RFC 6960 §4.2.1 OCSPResponseStatus.</summary>
internal enum OcspResponseStatus
{
    Successful = 0,
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    SigRequired = 5,
    Unauthorized = 6,
}

/// <summary>A validated answer for one certificate.</summary>
internal sealed record OcspAnswer(
    OcspCertStatus Status,
    DateTimeOffset ThisUpdate,
    DateTimeOffset? NextUpdate,
    DateTimeOffset ProducedAt,
    DateTimeOffset? RevocationTime,
    int? RevocationReason,
    string Signer);

/// <summary>
/// Validates an OCSP response (RFC 6960 §4.2 and §3.2). BouncyCastle decodes it (<see cref="OcspResp"/>,
/// <see cref="BasicOcspResp"/>, <see cref="SingleResp"/>) and checks its signature; the policy is OmniBroker's:
/// who may sign (the issuer or a responder it delegated to), the nonce, the time windows and the CertID match.
/// </summary>
internal static class OcspResponseParser
{
    /// <summary>
    /// Validates <paramref name="der"/> as the answer about <paramref name="certificate"/> issued by
    /// <paramref name="issuer"/>: signed by the issuer or by a responder the issuer authorized
    /// (id-kp-OCSPSigning, §4.2.2.2), naming that certificate, current within <paramref name="clockSkew"/>,
    /// and echoing <paramref name="nonceExtensionValue"/> when one was sent. The entry point for untrusted
    /// response bytes: throws <see cref="RevocationFormatException"/> naming the first problem, nothing else.
    /// </summary>
    public static OcspAnswer Validate(ReadOnlyMemory<byte> der, X509Certificate2 certificate, X509Certificate2 issuer,
        byte[]? nonceExtensionValue, DateTimeOffset now, TimeSpan clockSkew, TimeSpan ttlWithoutNextUpdate)
    {
        BasicOcspResp basic;
        List<X509Certificate2> certs = [];
        try
        {
            OcspResp response = new(der.ToArray());
            if (response.Status != (int)OcspResponseStatus.Successful)
            {
                int status = response.Status;
                string name = Enum.IsDefined((OcspResponseStatus)status) ? ((OcspResponseStatus)status).ToString() : status.ToString(System.Globalization.CultureInfo.InvariantCulture);
                throw new RevocationFormatException($"responder answered responseStatus {name}");
            }

            basic = response.GetResponseObject() as BasicOcspResp
                ?? throw new RevocationFormatException("unsupported or missing responseType (only id-pkix-ocsp-basic is understood)");
            if (basic.Version != 1)
            {
                throw new RevocationFormatException("unsupported OCSP response version");
            }

            foreach (Org.BouncyCastle.X509.X509Certificate cert in basic.GetCerts())
            {
                certs.Add(X509CertificateLoader.LoadCertificate(cert.GetEncoded()));
            }

            return ValidateCore(basic, certs, certificate, issuer, nonceExtensionValue, now, clockSkew, ttlWithoutNextUpdate);
        }
        catch (Exception ex) when (BouncyCastleInterop.IsDecodeFailure(ex))
        {
            throw new RevocationFormatException($"OCSP response is not valid DER: {ex.Message}", ex);
        }
        catch (CryptographicException ex)
        {
            throw new RevocationFormatException($"OCSP response carries an unreadable certificate: {ex.Message}", ex);
        }
    }

    private static OcspAnswer ValidateCore(BasicOcspResp basic, List<X509Certificate2> certs, X509Certificate2 certificate, X509Certificate2 issuer,
        byte[]? nonceExtensionValue, DateTimeOffset now, TimeSpan clockSkew, TimeSpan ttlWithoutNextUpdate)
    {
        ResponderID responderId = basic.ResponderId.ToAsn1Object();
        byte[]? responderName = responderId.Name?.GetEncoded(Asn1Encodable.Der);
        byte[]? responderKeyHash = responderName is null ? responderId.GetKeyHash() : null;
        CheckCritical(basic.ResponseExtensions, "response", OcspObjectIdentifiers.PkixOcspNonce);
        byte[]? responseNonce = basic.ResponseExtensions?.GetExtension(OcspObjectIdentifiers.PkixOcspNonce)?.Value.GetOctets();

        // Who signed: the CA itself, or a responder it delegated to (RFC 6960 §4.2.2.2).
        X509Certificate2 signer = FindSigner(responderName, responderKeyHash, issuer, certs)
            ?? throw new RevocationFormatException("response was not signed by the issuer nor by a certificate it carries that matches the ResponderID");
        if (!signer.RawDataMemory.Span.SequenceEqual(issuer.RawDataMemory.Span))
        {
            CheckDelegatedResponder(signer, issuer, now, clockSkew);
        }

        if (!BouncyCastleInterop.TryVerify(() => basic.Verify(BouncyCastleInterop.PublicKey(signer)), out string? error))
        {
            throw new RevocationFormatException($"response signature by '{signer.Subject}': {error}");
        }

        if (nonceExtensionValue is not null)
        {
            if (responseNonce is null)
            {
                throw new RevocationFormatException("response does not echo the request nonce");
            }

            if (!NonceValue(responseNonce).SequenceEqual(NonceValue(nonceExtensionValue)))
            {
                throw new RevocationFormatException("response nonce does not match the request nonce");
            }
        }

        foreach (SingleResp single in basic.Responses)
        {
            CheckCritical(single.SingleExtensions, "single-response");
            OcspCertId id;
            try
            {
                id = OcspCertId.FromBouncyCastle(single.GetCertID());
            }
            catch (RevocationFormatException)
            {
                continue; // a CertID in a hash we do not know cannot be ours
            }

            if (!id.Matches(certificate, issuer))
            {
                continue;
            }

            (OcspCertStatus status, DateTimeOffset? revocationTime, int? reason) = single.GetCertStatus() switch
            {
                null => (OcspCertStatus.Good, (DateTimeOffset?)null, (int?)null),
                RevokedStatus revoked => (OcspCertStatus.Revoked, BouncyCastleInterop.Utc(revoked.RevocationTime),
                    revoked.HasRevocationReason ? revoked.RevocationReason : null),
                UnknownStatus => (OcspCertStatus.Unknown, null, null),
                _ => throw new RevocationFormatException("unknown CertStatus"),
            };

            DateTimeOffset thisUpdate = BouncyCastleInterop.Utc(single.ThisUpdate);
            DateTimeOffset? nextUpdate = single.NextUpdate is { } n ? BouncyCastleInterop.Utc(n) : null;
            if (thisUpdate > now + clockSkew)
            {
                throw new RevocationFormatException($"response thisUpdate {thisUpdate:O} is in the future");
            }

            DateTimeOffset validUntil = nextUpdate ?? thisUpdate + ttlWithoutNextUpdate;
            if (validUntil + clockSkew < now)
            {
                throw new RevocationFormatException(nextUpdate is null
                    ? $"response without nextUpdate is older than the cache TTL (thisUpdate {thisUpdate:O})"
                    : $"response is stale (nextUpdate {nextUpdate:O})");
            }

            return new OcspAnswer(status, thisUpdate, nextUpdate, BouncyCastleInterop.Utc(basic.ProducedAt), revocationTime, reason, signer.Subject);
        }

        throw new RevocationFormatException($"response has no answer for serial {Convert.ToHexString(certificate.SerialNumberBytes.Span)} (CertID mismatch)");
    }

    private static void CheckCritical(X509Extensions? extensions, string where, params DerObjectIdentifier[] understood)
    {
        foreach (DerObjectIdentifier oid in extensions?.GetCriticalExtensionOids() ?? [])
        {
            if (!understood.Contains(oid))
            {
                throw new RevocationFormatException($"unknown critical {where} extension {oid.Id}");
            }
        }
    }

    private static X509Certificate2? FindSigner(byte[]? responderName, byte[]? responderKeyHash, X509Certificate2 issuer, List<X509Certificate2> certs)
    {
        if (MatchesResponderId(issuer, responderName, responderKeyHash))
        {
            return issuer;
        }

        return certs.FirstOrDefault(cert => MatchesResponderId(cert, responderName, responderKeyHash));
    }

    private static bool MatchesResponderId(X509Certificate2 cert, byte[]? name, byte[]? keyHash) =>
        name is not null
            ? cert.SubjectName.RawData.AsSpan().SequenceEqual(name)
            : keyHash is not null && SHA1.HashData(cert.PublicKey.EncodedKeyValue.RawData).AsSpan().SequenceEqual(keyHash);

    private static void CheckDelegatedResponder(X509Certificate2 signer, X509Certificate2 issuer, DateTimeOffset now, TimeSpan clockSkew)
    {
        if (!signer.IssuerName.RawData.AsSpan().SequenceEqual(issuer.SubjectName.RawData)
            || !BouncyCastleInterop.TryVerify(() => BouncyCastleInterop.ToBouncyCastle(signer).IsSignatureValid(BouncyCastleInterop.PublicKey(issuer)), out _))
        {
            throw new RevocationFormatException($"responder certificate '{signer.Subject}' was not issued by '{issuer.Subject}'");
        }

        CertificateRevocationInfo info = CertificateRevocationInfo.Get(signer);
        if (!info.HasOcspSigningUsage)
        {
            throw new RevocationFormatException($"responder certificate '{signer.Subject}' lacks id-kp-OCSPSigning");
        }

        if (info.NotBefore > now + clockSkew || info.NotAfter < now - clockSkew)
        {
            throw new RevocationFormatException($"responder certificate '{signer.Subject}' is outside its validity period");
        }
    }

    /// <summary>The nonce octets inside an extnValue (RFC 8954 wraps them in an OCTET STRING; some responders did not).</summary>
    private static byte[] NonceValue(byte[] extensionValue)
    {
        try
        {
            if (Asn1Object.FromByteArray(extensionValue) is Asn1OctetString inner)
            {
                return inner.GetOctets();
            }
        }
        catch (IOException)
        {
            // not DER: the raw octets are the nonce
        }

        return extensionValue;
    }
}
