using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Auth.Revocation;

/// <summary>Thrown by the CRL/OCSP decoders for bytes that are not what RFC 5280/6960 say they must be.
/// The message is meant for a log line: it names what was wrong.</summary>
internal sealed class RevocationFormatException : Exception
{
    public RevocationFormatException(string message) : base(message) { }

    public RevocationFormatException(string message, Exception inner) : base(message, inner) { }
}

internal static class RevocationOids
{
    public const string Sha1 = "1.3.14.3.2.26";
    public const string Sha256 = "2.16.840.1.101.3.4.2.1";
    public const string Sha384 = "2.16.840.1.101.3.4.2.2";
    public const string Sha512 = "2.16.840.1.101.3.4.2.3";

    public const string RsaEncryption = "1.2.840.113549.1.1.1";
    public const string Sha1WithRsa = "1.2.840.113549.1.1.5";
    public const string Mgf1 = "1.2.840.113549.1.1.8";
    public const string RsassaPss = "1.2.840.113549.1.1.10";
    public const string Sha256WithRsa = "1.2.840.113549.1.1.11";
    public const string Sha384WithRsa = "1.2.840.113549.1.1.12";
    public const string Sha512WithRsa = "1.2.840.113549.1.1.13";
    public const string EcdsaSha1 = "1.2.840.10045.4.1";
    public const string EcdsaSha256 = "1.2.840.10045.4.3.2";
    public const string EcdsaSha384 = "1.2.840.10045.4.3.3";
    public const string EcdsaSha512 = "1.2.840.10045.4.3.4";

    public const string OcspBasic = "1.3.6.1.5.5.7.48.1.1";
    public const string OcspNonce = "1.3.6.1.5.5.7.48.1.2";
    public const string OcspNoCheck = "1.3.6.1.5.5.7.48.1.5";
    public const string AccessMethodOcsp = "1.3.6.1.5.5.7.48.1";
    public const string KpOcspSigning = "1.3.6.1.5.5.7.3.9";

    public const string AuthorityInfoAccess = "1.3.6.1.5.5.7.1.1";
    public const string CrlDistributionPoints = "2.5.29.31";
    public const string CrlNumber = "2.5.29.20";
    public const string DeltaCrlIndicator = "2.5.29.27";
    public const string IssuingDistributionPoint = "2.5.29.28";
    public const string AuthorityKeyIdentifier = "2.5.29.35";
    public const string CrlReason = "2.5.29.21";
    public const string InvalidityDate = "2.5.29.24";
    public const string CertificateIssuer = "2.5.29.29";

    public static string HashOid(HashAlgorithmName name) =>
        name == HashAlgorithmName.SHA1 ? Sha1
        : name == HashAlgorithmName.SHA256 ? Sha256
        : name == HashAlgorithmName.SHA384 ? Sha384
        : name == HashAlgorithmName.SHA512 ? Sha512
        : throw new ArgumentOutOfRangeException(nameof(name), name.Name, "unsupported hash algorithm");

    public static HashAlgorithmName? HashFromOid(string oid) => oid switch
    {
        Sha1 => HashAlgorithmName.SHA1,
        Sha256 => HashAlgorithmName.SHA256,
        Sha384 => HashAlgorithmName.SHA384,
        Sha512 => HashAlgorithmName.SHA512,
        _ => null,
    };

    public static byte[] Hash(HashAlgorithmName name, ReadOnlySpan<byte> data) =>
        name == HashAlgorithmName.SHA1 ? SHA1.HashData(data)
        : name == HashAlgorithmName.SHA256 ? SHA256.HashData(data)
        : name == HashAlgorithmName.SHA384 ? SHA384.HashData(data)
        : name == HashAlgorithmName.SHA512 ? SHA512.HashData(data)
        : throw new ArgumentOutOfRangeException(nameof(name), name.Name, "unsupported hash algorithm");
}

/// <summary>RFC 5280 §4.1.1.2 AlgorithmIdentifier: the OID and its (optional) encoded parameters.</summary>
internal readonly record struct AlgorithmIdentifier(string Oid, ReadOnlyMemory<byte> Parameters)
{
    public static AlgorithmIdentifier Read(AsnReader reader)
    {
        AsnReader seq = reader.ReadSequence();
        string oid = seq.ReadObjectIdentifier();
        ReadOnlyMemory<byte> parameters = seq.HasData ? seq.ReadEncodedValue() : ReadOnlyMemory<byte>.Empty;
        seq.ThrowIfNotEmpty();
        return new AlgorithmIdentifier(oid, parameters);
    }
}

internal static class Asn1Time
{
    /// <summary>RFC 5280 Time ::= CHOICE { utcTime, generalTime }. UTCTime years 50-99 are 19xx (.NET's
    /// default two-digit-year maximum of 2049 gives exactly that).</summary>
    public static DateTimeOffset ReadTime(AsnReader reader)
    {
        Asn1Tag tag = reader.PeekTag();
        if (tag.HasSameClassAndValue(Asn1Tag.UtcTime))
        {
            return reader.ReadUtcTime();
        }

        if (tag.HasSameClassAndValue(Asn1Tag.GeneralizedTime))
        {
            return reader.ReadGeneralizedTime();
        }

        throw new RevocationFormatException($"expected UTCTime or GeneralizedTime, found tag {tag}");
    }

    public static bool NextIs(AsnReader reader, Asn1Tag tag) =>
        reader.HasData && reader.PeekTag().HasSameClassAndValue(tag);
}

/// <summary>
/// Verifies X.509-style signatures (CRLs, OCSP responses, certificates) with the signer's public key.
/// ECDSA signatures in X.509 are DER SEQUENCE { r, s } (RFC 3279 §2.2.3), not the IEEE P1363 form .NET
/// uses by default.
/// </summary>
internal static class SignatureVerifier
{
    public static bool Verify(ReadOnlySpan<byte> signedData, AlgorithmIdentifier algorithm, ReadOnlySpan<byte> signature,
        X509Certificate2 signer, out string? error)
    {
        switch (algorithm.Oid)
        {
            case RevocationOids.Sha256WithRsa:
                return VerifyRsa(signedData, signature, signer, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1, out error);
            case RevocationOids.Sha384WithRsa:
                return VerifyRsa(signedData, signature, signer, HashAlgorithmName.SHA384, RSASignaturePadding.Pkcs1, out error);
            case RevocationOids.Sha512WithRsa:
                return VerifyRsa(signedData, signature, signer, HashAlgorithmName.SHA512, RSASignaturePadding.Pkcs1, out error);
            case RevocationOids.Sha1WithRsa:
                return VerifyRsa(signedData, signature, signer, HashAlgorithmName.SHA1, RSASignaturePadding.Pkcs1, out error);
            case RevocationOids.RsassaPss:
                if (!TryReadPssHash(algorithm.Parameters, out HashAlgorithmName pssHash, out error))
                {
                    return false;
                }

                return VerifyRsa(signedData, signature, signer, pssHash, RSASignaturePadding.Pss, out error);
            case RevocationOids.EcdsaSha256:
                return VerifyEcdsa(signedData, signature, signer, HashAlgorithmName.SHA256, out error);
            case RevocationOids.EcdsaSha384:
                return VerifyEcdsa(signedData, signature, signer, HashAlgorithmName.SHA384, out error);
            case RevocationOids.EcdsaSha512:
                return VerifyEcdsa(signedData, signature, signer, HashAlgorithmName.SHA512, out error);
            case RevocationOids.EcdsaSha1:
                return VerifyEcdsa(signedData, signature, signer, HashAlgorithmName.SHA1, out error);
            default:
                error = $"unsupported signature algorithm {algorithm.Oid}";
                return false;
        }
    }

    /// <summary>Checks that <paramref name="certificate"/> was signed by <paramref name="issuer"/>'s key
    /// (RFC 5280 §4.1: Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }).</summary>
    public static bool VerifyCertificateSignature(X509Certificate2 certificate, X509Certificate2 issuer, out string? error)
    {
        try
        {
            AsnReader outer = new(certificate.RawDataMemory, AsnEncodingRules.DER);
            AsnReader cert = outer.ReadSequence();
            ReadOnlyMemory<byte> tbs = cert.ReadEncodedValue();
            AlgorithmIdentifier algorithm = AlgorithmIdentifier.Read(cert);
            byte[] signature = cert.ReadBitString(out int unusedBits);
            if (unusedBits != 0)
            {
                error = "certificate signature BIT STRING has unused bits";
                return false;
            }

            return Verify(tbs.Span, algorithm, signature, issuer, out error);
        }
        catch (AsnContentException ex)
        {
            error = $"certificate is not valid DER: {ex.Message}";
            return false;
        }
    }

    private static bool VerifyRsa(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature, X509Certificate2 signer,
        HashAlgorithmName hash, RSASignaturePadding padding, out string? error)
    {
        using RSA? rsa = signer.GetRSAPublicKey();
        if (rsa is null)
        {
            error = $"signature algorithm is RSA but the signer's key is {signer.PublicKey.Oid.FriendlyName ?? signer.PublicKey.Oid.Value}";
            return false;
        }

        bool ok = rsa.VerifyData(data, signature, hash, padding);
        error = ok ? null : "signature does not verify with the signer's public key";
        return ok;
    }

    private static bool VerifyEcdsa(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature, X509Certificate2 signer,
        HashAlgorithmName hash, out string? error)
    {
        using ECDsa? ecdsa = signer.GetECDsaPublicKey();
        if (ecdsa is null)
        {
            error = $"signature algorithm is ECDSA but the signer's key is {signer.PublicKey.Oid.FriendlyName ?? signer.PublicKey.Oid.Value}";
            return false;
        }

        bool ok = ecdsa.VerifyData(data, signature, hash, DSASignatureFormat.Rfc3279DerSequence);
        error = ok ? null : "signature does not verify with the signer's public key";
        return ok;
    }

    /// <summary>RFC 4055 RSASSA-PSS-params. .NET verifies PSS with MGF1 over the same hash and a salt as long
    /// as the hash, so only parameters of that shape are accepted.</summary>
    private static bool TryReadPssHash(ReadOnlyMemory<byte> parameters, out HashAlgorithmName hash, out string? error)
    {
        hash = HashAlgorithmName.SHA1;
        string? mgfHashOid = RevocationOids.Sha1;
        int saltLength = 20;
        try
        {
            AsnReader reader = new(parameters, AsnEncodingRules.DER);
            AsnReader seq = reader.ReadSequence();
            if (Asn1Time.NextIs(seq, new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
            {
                AlgorithmIdentifier h = AlgorithmIdentifier.Read(seq.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 0)));
                hash = RevocationOids.HashFromOid(h.Oid) ?? throw new RevocationFormatException($"unsupported PSS hash {h.Oid}");
            }

            if (Asn1Time.NextIs(seq, new Asn1Tag(TagClass.ContextSpecific, 1, isConstructed: true)))
            {
                AlgorithmIdentifier mgf = AlgorithmIdentifier.Read(seq.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 1)));
                if (mgf.Oid != RevocationOids.Mgf1)
                {
                    throw new RevocationFormatException($"unsupported PSS mask generation {mgf.Oid}");
                }

                mgfHashOid = AlgorithmIdentifier.Read(new AsnReader(mgf.Parameters, AsnEncodingRules.DER)).Oid;
            }

            if (Asn1Time.NextIs(seq, new Asn1Tag(TagClass.ContextSpecific, 2, isConstructed: true)))
            {
                AsnReader salt = seq.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 2));
                if (!salt.TryReadInt32(out saltLength))
                {
                    throw new RevocationFormatException("PSS salt length out of range");
                }
            }

            if (mgfHashOid != RevocationOids.HashOid(hash) || saltLength != RevocationOids.Hash(hash, default).Length)
            {
                throw new RevocationFormatException("PSS parameters other than MGF1 with the same hash and a hash-length salt are not supported");
            }

            error = null;
            return true;
        }
        catch (Exception ex) when (ex is AsnContentException or RevocationFormatException)
        {
            error = $"bad RSASSA-PSS parameters: {ex.Message}";
            return false;
        }
    }
}
