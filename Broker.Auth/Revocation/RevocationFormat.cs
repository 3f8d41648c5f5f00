using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Org.BouncyCastle.Crypto;

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

    public const string OcspNonce = "1.3.6.1.5.5.7.48.1.2";
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

/// <summary>Bridges between .NET certificates and BouncyCastle's, and names the exceptions BouncyCastle's decoders
/// throw for malformed input (so callers catch those, not everything).</summary>
internal static class BouncyCastleInterop
{
    public static Org.BouncyCastle.X509.X509Certificate ToBouncyCastle(X509Certificate2 certificate) =>
        new(certificate.RawData);

    public static AsymmetricKeyParameter PublicKey(X509Certificate2 certificate) =>
        ToBouncyCastle(certificate).GetPublicKey();

    public static System.Numerics.BigInteger ToNumerics(Org.BouncyCastle.Math.BigInteger value) =>
        new(value.ToByteArray(), isUnsigned: false, isBigEndian: true);

    /// <summary>What BouncyCastle throws for bytes that do not decode as the expected structure. Its message
    /// classes decode lazily, and some dereference a field a malformed message lacks: for input that went through
    /// them, a NullReferenceException is a malformed message too (found by mutating real messages).</summary>
    public static bool IsDecodeFailure(Exception ex) =>
        ex is IOException or NullReferenceException or ArgumentException or InvalidCastException or InvalidOperationException or FormatException
            or IndexOutOfRangeException or OverflowException or Org.BouncyCastle.Security.GeneralSecurityException
            or Org.BouncyCastle.Security.Certificates.CrlException or Org.BouncyCastle.Ocsp.OcspException
            or Org.BouncyCastle.Asn1.Asn1ParsingException or CryptoException;

    public static DateTimeOffset Utc(DateTime value) =>
        new(DateTime.SpecifyKind(value.ToUniversalTime(), DateTimeKind.Utc), TimeSpan.Zero);

    /// <summary>Verifies with <paramref name="verify"/>; a signature that cannot even be checked (wrong key type,
    /// unknown algorithm) is a failure with its reason, not an exception.</summary>
    public static bool TryVerify(Func<bool> verify, out string? error)
    {
        try
        {
            bool ok = verify();
            error = ok ? null : "signature does not verify with the signer's public key";
            return ok;
        }
        catch (Exception ex) when (IsDecodeFailure(ex))
        {
            error = $"signature does not verify with the signer's public key ({ex.Message})";
            return false;
        }
    }
}
