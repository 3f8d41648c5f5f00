using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.Ocsp;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.Ocsp;

namespace OmniBroker.Auth.Revocation;

/// <summary>
/// RFC 6960 §4.1.1 CertID: hash algorithm, issuerNameHash (over the DER of the certificate's issuer Name),
/// issuerKeyHash (over the issuer's subjectPublicKey BIT STRING value) and serial number. Encoded and decoded as
/// BouncyCastle's <see cref="CertificateID"/>; the matching rules are ours.
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

    public CertificateID ToBouncyCastle() =>
        new(new CertID(new AlgorithmIdentifier(new DerObjectIdentifier(RevocationOids.HashOid(Hash)), DerNull.Instance),
            new DerOctetString(IssuerNameHash), new DerOctetString(IssuerKeyHash), new DerInteger(new Org.BouncyCastle.Math.BigInteger(Serial))));

    public static OcspCertId FromBouncyCastle(CertificateID id)
    {
        HashAlgorithmName hash = RevocationOids.HashFromOid(id.HashAlgOid)
            ?? throw new RevocationFormatException($"CertID uses unsupported hash algorithm {id.HashAlgOid}");
        return new OcspCertId(hash, id.GetIssuerNameHash(), id.GetIssuerKeyHash(), id.SerialNumber.ToByteArray());
    }
}

/// <summary>
/// RFC 6960 §4.1.1 OCSPRequest, built with BouncyCastle's <see cref="OcspReqGenerator"/> (unsigned, one CertID,
/// optional nonce) and decoded with <see cref="OcspReq"/> for the development responder. The nonce is RFC 8954's:
/// extnValue is the DER of an OCTET STRING holding 1 to 32 octets.
/// </summary>
internal sealed class OcspRequest
{
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
        OcspReqGenerator generator = new();
        generator.AddRequest(certId.ToBouncyCastle());
        if (!nonce.IsEmpty)
        {
            generator.SetRequestExtensions(new X509Extensions(new Dictionary<DerObjectIdentifier, Org.BouncyCastle.Asn1.X509.X509Extension>
            {
                [OcspObjectIdentifiers.PkixOcspNonce] = new Org.BouncyCastle.Asn1.X509.X509Extension(false, new DerOctetString(EncodeNonce(nonce))),
            }));
        }

        return generator.Generate().GetEncoded();
    }

    public static byte[] EncodeNonce(ReadOnlySpan<byte> nonce) => new DerOctetString(nonce.ToArray()).GetEncoded(Asn1Encodable.Der);

    /// <summary>Decodes a request (for the development responder): an entry point for untrusted bytes. Throws
    /// <see cref="RevocationFormatException"/>, never anything else for bad input.</summary>
    public static OcspRequest Parse(ReadOnlyMemory<byte> der)
    {
        try
        {
            OcspReq request = new(der.ToArray());
            List<OcspCertId> ids = [];
            foreach (Req single in request.GetRequestList())
            {
                ids.Add(OcspCertId.FromBouncyCastle(single.GetCertID()));
            }

            if (ids.Count == 0)
            {
                throw new RevocationFormatException("OCSP request names no certificate");
            }

            X509Extensions? extensions = request.RequestExtensions;
            byte[]? nonce = extensions?.GetExtension(OcspObjectIdentifiers.PkixOcspNonce)?.Value.GetOctets();
            foreach (DerObjectIdentifier oid in extensions?.GetCriticalExtensionOids() ?? [])
            {
                if (!oid.Equals(OcspObjectIdentifiers.PkixOcspNonce))
                {
                    throw new RevocationFormatException($"unknown critical request extension {oid.Id}");
                }
            }

            return new OcspRequest(ids, nonce);
        }
        catch (Exception ex) when (BouncyCastleInterop.IsDecodeFailure(ex))
        {
            throw new RevocationFormatException($"OCSP request is not valid DER: {ex.Message}", ex);
        }
    }
}
