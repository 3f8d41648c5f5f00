using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Numerics;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.X509;
using Org.BouncyCastle.X509.Extension;

namespace OmniBroker.Auth.Revocation;

/// <summary>One revoked entry of a CRL.</summary>
internal readonly record struct CrlEntry(DateTimeOffset RevocationDate, int? Reason);

/// <summary>
/// An X.509 v2 CRL (RFC 5280 §5), decoded by BouncyCastle (<see cref="X509CrlParser"/>, <see cref="X509Crl"/>).
/// Decoding checks structure and what OmniBroker does not support (delta, indirect and reason-partitioned CRLs,
/// unknown critical extensions); <see cref="IsSignedBy"/> checks the signature and the issuer's right to sign
/// CRLs. Immutable once built, shared by all lookups.
/// </summary>
internal sealed class ParsedCrl
{
    private readonly X509Crl _crl;
    private readonly FrozenDictionary<string, CrlEntry> _revoked;
    private readonly ConcurrentDictionary<string, string?> _verification = new(StringComparer.Ordinal);

    private ParsedCrl(byte[] encoded, X509Crl crl, X500DistinguishedName issuer, BigInteger? number, FrozenDictionary<string, CrlEntry> revoked)
    {
        Encoded = encoded;
        _crl = crl;
        Issuer = issuer;
        ThisUpdate = BouncyCastleInterop.Utc(crl.ThisUpdate);
        NextUpdate = crl.NextUpdate is { } next ? BouncyCastleInterop.Utc(next) : null;
        Number = number;
        _revoked = revoked;
    }

    public byte[] Encoded { get; }

    public X500DistinguishedName Issuer { get; }

    public DateTimeOffset ThisUpdate { get; }

    public DateTimeOffset? NextUpdate { get; }

    /// <summary>cRLNumber extension (RFC 5280 §5.2.3), when present.</summary>
    public BigInteger? Number { get; }

    public int RevokedCount => _revoked.Count;

    public IEnumerable<string> RevokedSerials => _revoked.Keys;

    public bool IssuedBy(X509Certificate2 issuer) => Issuer.RawData.AsSpan().SequenceEqual(issuer.SubjectName.RawData);

    public bool TryGetRevoked(string serialHex, out CrlEntry entry) => _revoked.TryGetValue(serialHex, out entry);

    /// <summary>
    /// True when <paramref name="issuer"/> has the CRL's issuer name (by DER), may sign CRLs (keyUsage cRLSign when
    /// the extension is present, RFC 5280 §4.2.1.3) and its key verifies the signature. Remembered per issuer certificate.
    /// </summary>
    public bool IsSignedBy(X509Certificate2 issuer, out string? error)
    {
        CertificateRevocationInfo info = CertificateRevocationInfo.Get(issuer);
        error = _verification.GetOrAdd(info.CacheId(issuer), static (_, state) => state.crl.Verify(state.issuer, state.info), (crl: this, issuer, info));
        return error is null;
    }

    private string? Verify(X509Certificate2 issuer, CertificateRevocationInfo info)
    {
        if (!IssuedBy(issuer))
        {
            return $"CRL issuer '{Issuer.Name}' is not '{issuer.Subject}'";
        }

        if (info.KeyUsage is { } usage && (usage & X509KeyUsageFlags.CrlSign) == 0)
        {
            return $"issuer '{issuer.Subject}' lacks the cRLSign key usage";
        }

        return BouncyCastleInterop.TryVerify(() => _crl.IsSignatureValid(BouncyCastleInterop.PublicKey(issuer)), out string? error)
            ? null
            : $"CRL signature: {error}";
    }

    /// <summary>Decodes DER or PEM ("X509 CRL") bytes: the entry point for untrusted CRL bytes (files, HTTP).
    /// Throws <see cref="RevocationFormatException"/> with the reason, never anything else for bad input.</summary>
    public static ParsedCrl Parse(byte[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        byte[] der = MaybePem(data);
        X509Crl crl;
        try
        {
            crl = new X509CrlParser().ReadCrl(der) ?? throw new RevocationFormatException("CRL is not valid DER: no data");
            return FromBouncyCastle(der, crl);
        }
        catch (Exception ex) when (BouncyCastleInterop.IsDecodeFailure(ex))
        {
            throw new RevocationFormatException($"CRL is not valid DER: {ex.Message}", ex);
        }
    }

    private static byte[] MaybePem(byte[] data)
    {
        ReadOnlySpan<byte> start = data.AsSpan(0, Math.Min(data.Length, 64)).TrimStart(" \t\r\n"u8);
        if (!start.StartsWith("-----BEGIN"u8))
        {
            return data;
        }

        string text = Encoding.ASCII.GetString(data);
        if (!System.Security.Cryptography.PemEncoding.TryFind(text, out System.Security.Cryptography.PemFields fields)
            || text[fields.Label] != "X509 CRL")
        {
            throw new RevocationFormatException("PEM data does not contain an 'X509 CRL' block");
        }

        return Convert.FromBase64String(text[fields.Base64Data].ToString());
    }

    private static ParsedCrl FromBouncyCastle(byte[] der, X509Crl crl)
    {
        CertificateList list = crl.CertificateList;
        if (crl.Version > 2)
        {
            throw new RevocationFormatException("unsupported CRL version (only v2 is understood)");
        }

        if (!list.SignatureAlgorithm.Equals(list.TbsCertList.Signature))
        {
            throw new RevocationFormatException("CRL signature algorithm differs inside and outside TBSCertList (RFC 5280 §5.1.1.2)");
        }

        X500DistinguishedName issuer = new(list.TbsCertList.Issuer.GetEncoded(Asn1Encodable.Der));
        BigInteger? number = null;
        foreach (string oid in crl.GetCriticalExtensionOids() ?? new HashSet<string>())
        {
            if (oid is not (RevocationOids.CrlNumber or RevocationOids.DeltaCrlIndicator or RevocationOids.IssuingDistributionPoint
                or RevocationOids.AuthorityKeyIdentifier))
            {
                throw new RevocationFormatException($"unknown critical CRL extension {oid}");
            }
        }

        if (crl.GetExtensionValue(new DerObjectIdentifier(RevocationOids.DeltaCrlIndicator)) is not null)
        {
            throw new RevocationFormatException("delta CRLs are not supported");
        }

        if (crl.GetExtensionValue(new DerObjectIdentifier(RevocationOids.IssuingDistributionPoint)) is { } idpValue)
        {
            IssuingDistributionPoint idp = IssuingDistributionPoint.GetInstance(X509ExtensionUtilities.FromExtensionValue(idpValue));
            if (idp.OnlySomeReasons is not null)
            {
                throw new RevocationFormatException("CRLs partitioned by reason (onlySomeReasons) are not supported");
            }

            if (idp.IsIndirectCrl)
            {
                throw new RevocationFormatException("indirect CRLs are not supported");
            }
        }

        if (crl.GetExtensionValue(new DerObjectIdentifier(RevocationOids.CrlNumber)) is { } numberValue)
        {
            number = BouncyCastleInterop.ToNumerics(DerInteger.GetInstance(X509ExtensionUtilities.FromExtensionValue(numberValue)).Value);
        }

        Dictionary<string, CrlEntry> revoked = new(StringComparer.Ordinal);
        foreach (X509CrlEntry entry in crl.GetRevokedCertificates() ?? new HashSet<X509CrlEntry>())
        {
            revoked[Convert.ToHexString(entry.SerialNumber.ToByteArray())] = ReadEntry(entry);
        }

        return new ParsedCrl(der, crl, issuer, number, revoked.ToFrozenDictionary(StringComparer.Ordinal));
    }

    private static CrlEntry ReadEntry(X509CrlEntry entry)
    {
        foreach (string oid in entry.GetCriticalExtensionOids() ?? new HashSet<string>())
        {
            if (oid is not (RevocationOids.CrlReason or RevocationOids.InvalidityDate or RevocationOids.CertificateIssuer))
            {
                throw new RevocationFormatException($"unknown critical CRL entry extension {oid}");
            }
        }

        if (entry.GetExtensionValue(new DerObjectIdentifier(RevocationOids.CertificateIssuer)) is not null)
        {
            throw new RevocationFormatException("indirect CRLs (certificateIssuer entry extension) are not supported");
        }

        int? reason = null;
        if (entry.GetExtensionValue(new DerObjectIdentifier(RevocationOids.CrlReason)) is { } reasonValue)
        {
            DerEnumerated value = DerEnumerated.GetInstance(X509ExtensionUtilities.FromExtensionValue(reasonValue));
            reason = value.Value.BitLength < 8 ? value.IntValueExact : -1;
        }

        return new CrlEntry(BouncyCastleInterop.Utc(entry.RevocationDate), reason);
    }
}
