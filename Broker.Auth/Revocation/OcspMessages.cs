using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Auth.Revocation;

/// <summary>
/// RFC 6960 §4.1.1 CertID ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING,
/// issuerKeyHash OCTET STRING, serialNumber CertificateSerialNumber }. The name hash is over the DER of the
/// certificate's issuer Name; the key hash over the issuer's subjectPublicKey BIT STRING value.
/// </summary>
internal sealed class OcspCertId
{
    public OcspCertId(HashAlgorithmName hash, byte[] issuerNameHash, byte[] issuerKeyHash, byte[] serial)
    {
        Hash = hash;
        IssuerNameHash = issuerNameHash;
        IssuerKeyHash = issuerKeyHash;
        Serial = serial;
    }

    public HashAlgorithmName Hash { get; }

    public byte[] IssuerNameHash { get; }

    public byte[] IssuerKeyHash { get; }

    /// <summary>DER INTEGER contents of the serial number.</summary>
    public byte[] Serial { get; }

    public string SerialHex => Convert.ToHexString(Serial);

    public static OcspCertId Create(X509Certificate2 certificate, X509Certificate2 issuer, HashAlgorithmName hash) =>
        new(hash,
            RevocationOids.Hash(hash, certificate.IssuerName.RawData),
            RevocationOids.Hash(hash, issuer.PublicKey.EncodedKeyValue.RawData),
            certificate.SerialNumberBytes.ToArray());

    /// <summary>True when this CertID names <paramref name="certificate"/> issued by <paramref name="issuer"/>,
    /// recomputing the hashes with this CertID's own algorithm (a responder may answer in another one).</summary>
    public bool Matches(X509Certificate2 certificate, X509Certificate2 issuer) =>
        Serial.AsSpan().SequenceEqual(certificate.SerialNumberBytes.Span)
        && IssuerNameHash.AsSpan().SequenceEqual(RevocationOids.Hash(Hash, certificate.IssuerName.RawData))
        && IssuerKeyHash.AsSpan().SequenceEqual(RevocationOids.Hash(Hash, issuer.PublicKey.EncodedKeyValue.RawData));

    /// <summary>Same issuer (by name and key hash) as <paramref name="issuer"/>, whatever the serial.</summary>
    public bool IssuerIs(X509Certificate2 issuer) =>
        IssuerNameHash.AsSpan().SequenceEqual(RevocationOids.Hash(Hash, issuer.SubjectName.RawData))
        && IssuerKeyHash.AsSpan().SequenceEqual(RevocationOids.Hash(Hash, issuer.PublicKey.EncodedKeyValue.RawData));

    public void WriteTo(AsnWriter writer)
    {
        writer.PushSequence();
        writer.PushSequence();
        writer.WriteObjectIdentifier(RevocationOids.HashOid(Hash));
        writer.WriteNull();
        writer.PopSequence();
        writer.WriteOctetString(IssuerNameHash);
        writer.WriteOctetString(IssuerKeyHash);
        writer.WriteInteger(Serial);
        writer.PopSequence();
    }

    public static OcspCertId Read(AsnReader reader)
    {
        AsnReader seq = reader.ReadSequence();
        AlgorithmIdentifier algorithm = AlgorithmIdentifier.Read(seq);
        HashAlgorithmName hash = RevocationOids.HashFromOid(algorithm.Oid)
            ?? throw new RevocationFormatException($"CertID uses unsupported hash algorithm {algorithm.Oid}");
        byte[] nameHash = seq.ReadOctetString();
        byte[] keyHash = seq.ReadOctetString();
        byte[] serial = seq.ReadIntegerBytes().ToArray();
        seq.ThrowIfNotEmpty();
        return new OcspCertId(hash, nameHash, keyHash, serial);
    }
}

/// <summary>
/// RFC 6960 §4.1.1 OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL }
/// TBSRequest ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, requestorName [1] EXPLICIT GeneralName OPTIONAL,
///   requestList SEQUENCE OF Request, requestExtensions [2] EXPLICIT Extensions OPTIONAL }
/// Request ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
/// The nonce is RFC 8954's: extnValue is the DER of an OCTET STRING holding 1 to 32 octets.
/// </summary>
internal sealed class OcspRequest
{
    private static readonly Asn1Tag s_requestExtensions = new(TagClass.ContextSpecific, 2, isConstructed: true);

    public OcspRequest(IReadOnlyList<OcspCertId> certIds, byte[]? nonceExtensionValue)
    {
        CertIds = certIds;
        NonceExtensionValue = nonceExtensionValue;
    }

    public IReadOnlyList<OcspCertId> CertIds { get; }

    /// <summary>The raw extnValue of the nonce extension (what a responder echoes), or null.</summary>
    public byte[]? NonceExtensionValue { get; }

    public static byte[] Build(OcspCertId certId, ReadOnlySpan<byte> nonce)
    {
        AsnWriter writer = new(AsnEncodingRules.DER);
        writer.PushSequence();
        writer.PushSequence();
        writer.PushSequence();
        writer.PushSequence();
        certId.WriteTo(writer);
        writer.PopSequence();
        writer.PopSequence();
        if (!nonce.IsEmpty)
        {
            writer.PushSequence(s_requestExtensions);
            writer.PushSequence();
            writer.PushSequence();
            writer.WriteObjectIdentifier(RevocationOids.OcspNonce);
            writer.WriteOctetString(EncodeNonce(nonce));
            writer.PopSequence();
            writer.PopSequence();
            writer.PopSequence(s_requestExtensions);
        }

        writer.PopSequence();
        writer.PopSequence();
        return writer.Encode();
    }

    public static byte[] EncodeNonce(ReadOnlySpan<byte> nonce)
    {
        AsnWriter inner = new(AsnEncodingRules.DER);
        inner.WriteOctetString(nonce);
        return inner.Encode();
    }

    /// <summary>Decodes a request (for the development responder). Throws <see cref="RevocationFormatException"/>.</summary>
    public static OcspRequest Parse(ReadOnlyMemory<byte> der)
    {
        try
        {
            AsnReader outer = new(der, AsnEncodingRules.DER);
            AsnReader request = outer.ReadSequence();
            outer.ThrowIfNotEmpty();
            AsnReader tbs = request.ReadSequence();
            if (Asn1Time.NextIs(tbs, new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
            {
                AsnReader version = tbs.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 0));
                if (!version.TryReadInt32(out int v) || v != 0)
                {
                    throw new RevocationFormatException("unsupported OCSP request version");
                }
            }

            if (Asn1Time.NextIs(tbs, new Asn1Tag(TagClass.ContextSpecific, 1, isConstructed: true)))
            {
                tbs.ReadEncodedValue();
            }

            List<OcspCertId> ids = [];
            AsnReader list = tbs.ReadSequence();
            while (list.HasData)
            {
                AsnReader single = list.ReadSequence();
                ids.Add(OcspCertId.Read(single));
                if (single.HasData)
                {
                    single.ReadEncodedValue();
                }

                single.ThrowIfNotEmpty();
            }

            if (ids.Count == 0)
            {
                throw new RevocationFormatException("OCSP request names no certificate");
            }

            byte[]? nonce = null;
            if (Asn1Time.NextIs(tbs, s_requestExtensions))
            {
                AsnReader wrapper = tbs.ReadSequence(s_requestExtensions);
                foreach ((string oid, bool critical, ReadOnlyMemory<byte> value) in ParsedCrl.ReadExtensions(wrapper))
                {
                    if (oid == RevocationOids.OcspNonce)
                    {
                        nonce = value.ToArray();
                    }
                    else if (critical)
                    {
                        throw new RevocationFormatException($"unknown critical request extension {oid}");
                    }
                }
            }

            tbs.ThrowIfNotEmpty();
            return new OcspRequest(ids, nonce);
        }
        catch (AsnContentException ex)
        {
            throw new RevocationFormatException($"OCSP request is not valid DER: {ex.Message}", ex);
        }
    }
}

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
/// Decodes and validates an OCSP response (RFC 6960 §4.2 and §3.2):
/// OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
/// ResponseBytes ::= SEQUENCE { responseType OID, response OCTET STRING }  -- id-pkix-ocsp-basic
/// BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, signatureAlgorithm AlgorithmIdentifier,
///   signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
/// ResponseData ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, responderID ResponderID,
///   producedAt GeneralizedTime, responses SEQUENCE OF SingleResponse, responseExtensions [1] EXPLICIT Extensions OPTIONAL }
/// ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash }  -- explicit tags in RFC 6960's module
/// SingleResponse ::= SEQUENCE { certID CertID, certStatus CertStatus, thisUpdate GeneralizedTime,
///   nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL, singleExtensions [1] EXPLICIT Extensions OPTIONAL }
/// CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT UnknownInfo }
/// </summary>
internal static class OcspResponseParser
{
    private static readonly Asn1Tag s_ctx0 = new(TagClass.ContextSpecific, 0);
    private static readonly Asn1Tag s_ctx0C = new(TagClass.ContextSpecific, 0, isConstructed: true);
    private static readonly Asn1Tag s_ctx1 = new(TagClass.ContextSpecific, 1);
    private static readonly Asn1Tag s_ctx1C = new(TagClass.ContextSpecific, 1, isConstructed: true);
    private static readonly Asn1Tag s_ctx2 = new(TagClass.ContextSpecific, 2);
    private static readonly Asn1Tag s_ctx2C = new(TagClass.ContextSpecific, 2, isConstructed: true);

    /// <summary>
    /// Validates <paramref name="der"/> as the answer about <paramref name="certificate"/> issued by
    /// <paramref name="issuer"/>: signed by the issuer or by a responder the issuer authorized
    /// (id-kp-OCSPSigning, §4.2.2.2), naming that certificate, current within <paramref name="clockSkew"/>,
    /// and echoing <paramref name="nonceExtensionValue"/> when one was sent. Throws
    /// <see cref="RevocationFormatException"/> naming the first problem.
    /// </summary>
    public static OcspAnswer Validate(ReadOnlyMemory<byte> der, X509Certificate2 certificate, X509Certificate2 issuer,
        byte[]? nonceExtensionValue, DateTimeOffset now, TimeSpan clockSkew, TimeSpan ttlWithoutNextUpdate)
    {
        try
        {
            return ValidateCore(der, certificate, issuer, nonceExtensionValue, now, clockSkew, ttlWithoutNextUpdate);
        }
        catch (AsnContentException ex)
        {
            throw new RevocationFormatException($"OCSP response is not valid DER: {ex.Message}", ex);
        }
        catch (CryptographicException ex)
        {
            throw new RevocationFormatException($"OCSP response carries an unreadable certificate: {ex.Message}", ex);
        }
    }

    private static OcspAnswer ValidateCore(ReadOnlyMemory<byte> der, X509Certificate2 certificate, X509Certificate2 issuer,
        byte[]? nonceExtensionValue, DateTimeOffset now, TimeSpan clockSkew, TimeSpan ttlWithoutNextUpdate)
    {
        AsnReader outer = new(der, AsnEncodingRules.DER);
        AsnReader response = outer.ReadSequence();
        outer.ThrowIfNotEmpty();
        ReadOnlySpan<byte> statusBytes = response.ReadEnumeratedBytes().Span;
        int status = statusBytes.Length == 1 ? statusBytes[0] : -1;
        if (status != (int)OcspResponseStatus.Successful)
        {
            string name = Enum.IsDefined((OcspResponseStatus)status) ? ((OcspResponseStatus)status).ToString() : status.ToString(System.Globalization.CultureInfo.InvariantCulture);
            throw new RevocationFormatException($"responder answered responseStatus {name}");
        }

        AsnReader responseBytes = response.ReadSequence(s_ctx0C).ReadSequence();
        response.ThrowIfNotEmpty();
        string type = responseBytes.ReadObjectIdentifier();
        if (type != RevocationOids.OcspBasic)
        {
            throw new RevocationFormatException($"unsupported responseType {type}");
        }

        byte[] basicBytes = responseBytes.ReadOctetString();
        AsnReader basicOuter = new(basicBytes, AsnEncodingRules.DER);
        AsnReader basic = basicOuter.ReadSequence();
        basicOuter.ThrowIfNotEmpty();
        ReadOnlyMemory<byte> tbsBytes = basic.ReadEncodedValue();
        AlgorithmIdentifier algorithm = AlgorithmIdentifier.Read(basic);
        byte[] signature = basic.ReadBitString(out int unusedBits);
        if (unusedBits != 0)
        {
            throw new RevocationFormatException("response signature BIT STRING has unused bits");
        }

        List<X509Certificate2> certs = [];
        if (Asn1Time.NextIs(basic, s_ctx0C))
        {
            AsnReader list = basic.ReadSequence(s_ctx0C).ReadSequence();
            while (list.HasData)
            {
                certs.Add(X509CertificateLoader.LoadCertificate(list.ReadEncodedValue().Span));
            }
        }

        basic.ThrowIfNotEmpty();

        AsnReader tbs = new AsnReader(tbsBytes, AsnEncodingRules.DER).ReadSequence();
        if (Asn1Time.NextIs(tbs, s_ctx0C))
        {
            AsnReader version = tbs.ReadSequence(s_ctx0C);
            if (!version.TryReadInt32(out int v) || v != 0)
            {
                throw new RevocationFormatException("unsupported OCSP response version");
            }
        }

        byte[]? responderName = null;
        byte[]? responderKeyHash = null;
        if (Asn1Time.NextIs(tbs, s_ctx1C))
        {
            AsnReader byName = tbs.ReadSequence(s_ctx1C);
            responderName = byName.ReadEncodedValue().ToArray();
            byName.ThrowIfNotEmpty();
        }
        else if (Asn1Time.NextIs(tbs, s_ctx2C))
        {
            AsnReader byKey = tbs.ReadSequence(s_ctx2C);
            responderKeyHash = byKey.ReadOctetString();
            byKey.ThrowIfNotEmpty();
        }
        else
        {
            throw new RevocationFormatException("ResponderID is neither byName nor byKey");
        }

        DateTimeOffset producedAt = tbs.ReadGeneralizedTime();
        AsnReader responses = tbs.ReadSequence();
        byte[]? responseNonce = null;
        if (Asn1Time.NextIs(tbs, s_ctx1C))
        {
            foreach ((string oid, bool critical, ReadOnlyMemory<byte> value) in ParsedCrl.ReadExtensions(tbs.ReadSequence(s_ctx1C)))
            {
                if (oid == RevocationOids.OcspNonce)
                {
                    responseNonce = value.ToArray();
                }
                else if (critical)
                {
                    throw new RevocationFormatException($"unknown critical response extension {oid}");
                }
            }
        }

        tbs.ThrowIfNotEmpty();

        // Who signed: the CA itself, or a responder it delegated to (RFC 6960 §4.2.2.2).
        X509Certificate2 signer = FindSigner(responderName, responderKeyHash, issuer, certs)
            ?? throw new RevocationFormatException("response was not signed by the issuer nor by a certificate it carries that matches the ResponderID");
        bool delegated = !signer.RawDataMemory.Span.SequenceEqual(issuer.RawDataMemory.Span);
        if (delegated)
        {
            CheckDelegatedResponder(signer, issuer, now, clockSkew);
        }

        if (!SignatureVerifier.Verify(tbsBytes.Span, algorithm, signature, signer, out string? error))
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

        while (responses.HasData)
        {
            AsnReader single = responses.ReadSequence();
            OcspCertId id = OcspCertId.Read(single);
            Asn1Tag statusTag = single.PeekTag();
            OcspCertStatus certStatus;
            DateTimeOffset? revocationTime = null;
            int? reason = null;
            if (statusTag.HasSameClassAndValue(s_ctx0))
            {
                single.ReadNull(s_ctx0);
                certStatus = OcspCertStatus.Good;
            }
            else if (statusTag.HasSameClassAndValue(s_ctx1))
            {
                AsnReader revoked = single.ReadSequence(s_ctx1C);
                revocationTime = revoked.ReadGeneralizedTime();
                if (Asn1Time.NextIs(revoked, s_ctx0C))
                {
                    ReadOnlySpan<byte> r = revoked.ReadSequence(s_ctx0C).ReadEnumeratedBytes().Span;
                    reason = r.Length == 1 ? r[0] : -1;
                }

                revoked.ThrowIfNotEmpty();
                certStatus = OcspCertStatus.Revoked;
            }
            else if (statusTag.HasSameClassAndValue(s_ctx2))
            {
                single.ReadNull(s_ctx2);
                certStatus = OcspCertStatus.Unknown;
            }
            else
            {
                throw new RevocationFormatException($"unknown CertStatus tag {statusTag}");
            }

            DateTimeOffset thisUpdate = single.ReadGeneralizedTime();
            DateTimeOffset? nextUpdate = null;
            if (Asn1Time.NextIs(single, s_ctx0C))
            {
                AsnReader next = single.ReadSequence(s_ctx0C);
                nextUpdate = next.ReadGeneralizedTime();
                next.ThrowIfNotEmpty();
            }

            if (Asn1Time.NextIs(single, s_ctx1C))
            {
                foreach ((string oid, bool critical, _) in ParsedCrl.ReadExtensions(single.ReadSequence(s_ctx1C)))
                {
                    if (critical)
                    {
                        throw new RevocationFormatException($"unknown critical single-response extension {oid}");
                    }
                }
            }

            single.ThrowIfNotEmpty();
            if (!id.Matches(certificate, issuer))
            {
                continue;
            }

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

            return new OcspAnswer(certStatus, thisUpdate, nextUpdate, producedAt, revocationTime, reason, signer.Subject);
        }

        throw new RevocationFormatException($"response has no answer for serial {Convert.ToHexString(certificate.SerialNumberBytes.Span)} (CertID mismatch)");
    }

    private static X509Certificate2? FindSigner(byte[]? responderName, byte[]? responderKeyHash, X509Certificate2 issuer, List<X509Certificate2> certs)
    {
        if (MatchesResponderId(issuer, responderName, responderKeyHash))
        {
            return issuer;
        }

        foreach (X509Certificate2 cert in certs)
        {
            if (MatchesResponderId(cert, responderName, responderKeyHash))
            {
                return cert;
            }
        }

        return null;
    }

    private static bool MatchesResponderId(X509Certificate2 cert, byte[]? name, byte[]? keyHash) =>
        name is not null
            ? cert.SubjectName.RawData.AsSpan().SequenceEqual(name)
            : keyHash is not null && SHA1.HashData(cert.PublicKey.EncodedKeyValue.RawData).AsSpan().SequenceEqual(keyHash);

    private static void CheckDelegatedResponder(X509Certificate2 signer, X509Certificate2 issuer, DateTimeOffset now, TimeSpan clockSkew)
    {
        if (!signer.IssuerName.RawData.AsSpan().SequenceEqual(issuer.SubjectName.RawData)
            || !SignatureVerifier.VerifyCertificateSignature(signer, issuer, out _))
        {
            throw new RevocationFormatException($"responder certificate '{signer.Subject}' was not issued by '{issuer.Subject}'");
        }

        if (!CertificateRevocationInfo.Get(signer).HasOcspSigningUsage)
        {
            throw new RevocationFormatException($"responder certificate '{signer.Subject}' lacks id-kp-OCSPSigning");
        }

        CertificateRevocationInfo info = CertificateRevocationInfo.Get(signer);
        if (info.NotBefore > now + clockSkew || info.NotAfter < now - clockSkew)
        {
            throw new RevocationFormatException($"responder certificate '{signer.Subject}' is outside its validity period");
        }
    }

    /// <summary>The nonce octets inside an extnValue (RFC 8954 wraps them in an OCTET STRING; some responders did not).</summary>
    private static ReadOnlySpan<byte> NonceValue(byte[] extensionValue)
    {
        try
        {
            AsnReader reader = new(extensionValue, AsnEncodingRules.DER);
            if (reader.PeekTag().HasSameClassAndValue(Asn1Tag.PrimitiveOctetString)
                && reader.TryReadPrimitiveOctetString(out ReadOnlyMemory<byte> inner) && !reader.HasData)
            {
                return inner.Span;
            }
        }
        catch (AsnContentException)
        {
        }

        return extensionValue;
    }
}

/// <summary>Builds signed OCSP responses, for the development PKI's responder.</summary>
internal static class OcspResponseBuilder
{
    public sealed record Single(OcspCertId CertId, OcspCertStatus Status, DateTimeOffset ThisUpdate, DateTimeOffset? NextUpdate,
        DateTimeOffset? RevocationTime = null, int? Reason = null);

    public static byte[] BuildError(OcspResponseStatus status)
    {
        AsnWriter writer = new(AsnEncodingRules.DER);
        writer.PushSequence();
        writer.WriteEnumeratedValue(status);
        writer.PopSequence();
        return writer.Encode();
    }

    /// <summary>A successful response signed by <paramref name="signer"/> (ECDSA or RSA private key),
    /// ResponderID byKey, optionally echoing <paramref name="nonceExtensionValue"/>.</summary>
    public static byte[] Build(X509Certificate2 signer, AsymmetricAlgorithm signingKey, IEnumerable<Single> singles,
        DateTimeOffset producedAt, byte[]? nonceExtensionValue, IEnumerable<X509Certificate2>? includeCerts = null)
    {
        AsnWriter tbs = new(AsnEncodingRules.DER);
        tbs.PushSequence();
        tbs.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 2, isConstructed: true));
        tbs.WriteOctetString(SHA1.HashData(signer.PublicKey.EncodedKeyValue.RawData));
        tbs.PopSequence(new Asn1Tag(TagClass.ContextSpecific, 2, isConstructed: true));
        tbs.WriteGeneralizedTime(producedAt.ToUniversalTime(), omitFractionalSeconds: true);
        tbs.PushSequence();
        foreach (Single single in singles)
        {
            tbs.PushSequence();
            single.CertId.WriteTo(tbs);
            switch (single.Status)
            {
                case OcspCertStatus.Good:
                    tbs.WriteNull(new Asn1Tag(TagClass.ContextSpecific, 0));
                    break;
                case OcspCertStatus.Revoked:
                    tbs.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 1, isConstructed: true));
                    tbs.WriteGeneralizedTime((single.RevocationTime ?? single.ThisUpdate).ToUniversalTime(), omitFractionalSeconds: true);
                    if (single.Reason is { } reason)
                    {
                        tbs.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true));
                        tbs.WriteEnumeratedValue((X509RevocationReason)reason);
                        tbs.PopSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true));
                    }

                    tbs.PopSequence(new Asn1Tag(TagClass.ContextSpecific, 1, isConstructed: true));
                    break;
                default:
                    tbs.WriteNull(new Asn1Tag(TagClass.ContextSpecific, 2));
                    break;
            }

            tbs.WriteGeneralizedTime(single.ThisUpdate.ToUniversalTime(), omitFractionalSeconds: true);
            if (single.NextUpdate is { } next)
            {
                tbs.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true));
                tbs.WriteGeneralizedTime(next.ToUniversalTime(), omitFractionalSeconds: true);
                tbs.PopSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true));
            }

            tbs.PopSequence();
        }

        tbs.PopSequence();
        if (nonceExtensionValue is not null)
        {
            tbs.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 1, isConstructed: true));
            tbs.PushSequence();
            tbs.PushSequence();
            tbs.WriteObjectIdentifier(RevocationOids.OcspNonce);
            tbs.WriteOctetString(nonceExtensionValue);
            tbs.PopSequence();
            tbs.PopSequence();
            tbs.PopSequence(new Asn1Tag(TagClass.ContextSpecific, 1, isConstructed: true));
        }

        tbs.PopSequence();
        byte[] tbsBytes = tbs.Encode();

        (string algorithmOid, byte[] signature, bool nullParams) = signingKey switch
        {
            ECDsa ec => (RevocationOids.EcdsaSha256, ec.SignData(tbsBytes, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence), false),
            RSA rsa => (RevocationOids.Sha256WithRsa, rsa.SignData(tbsBytes, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1), true),
            _ => throw new NotSupportedException($"OCSP signing with {signingKey.GetType().Name} is not supported"),
        };

        AsnWriter basic = new(AsnEncodingRules.DER);
        basic.PushSequence();
        basic.WriteEncodedValue(tbsBytes);
        basic.PushSequence();
        basic.WriteObjectIdentifier(algorithmOid);
        if (nullParams)
        {
            basic.WriteNull();
        }

        basic.PopSequence();
        basic.WriteBitString(signature);
        List<X509Certificate2> extra = includeCerts?.ToList() ?? [];
        if (extra.Count > 0)
        {
            basic.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true));
            basic.PushSequence();
            foreach (X509Certificate2 cert in extra)
            {
                basic.WriteEncodedValue(cert.RawData);
            }

            basic.PopSequence();
            basic.PopSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true));
        }

        basic.PopSequence();

        AsnWriter outer = new(AsnEncodingRules.DER);
        outer.PushSequence();
        outer.WriteEnumeratedValue(OcspResponseStatus.Successful);
        outer.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true));
        outer.PushSequence();
        outer.WriteObjectIdentifier(RevocationOids.OcspBasic);
        outer.WriteOctetString(basic.Encode());
        outer.PopSequence();
        outer.PopSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true));
        outer.PopSequence();
        return outer.Encode();
    }
}
