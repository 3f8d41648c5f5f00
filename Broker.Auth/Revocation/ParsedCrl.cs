using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Formats.Asn1;
using System.Numerics;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace OmniBroker.Auth.Revocation;

/// <summary>One revoked entry of a CRL.</summary>
internal readonly record struct CrlEntry(DateTimeOffset RevocationDate, int? Reason);

/// <summary>
/// A decoded X.509 v2 CRL (RFC 5280 §5). Decoding checks structure only; <see cref="IsSignedBy"/> checks the
/// signature and the issuer's right to sign CRLs. Immutable once built, shared by all lookups.
/// </summary>
internal sealed class ParsedCrl
{
    private readonly ReadOnlyMemory<byte> _tbs;
    private readonly byte[] _signature;
    private readonly AlgorithmIdentifier _signatureAlgorithm;
    private readonly FrozenDictionary<string, CrlEntry> _revoked;
    private readonly ConcurrentDictionary<string, string?> _verification = new(StringComparer.Ordinal);

    private ParsedCrl(byte[] encoded, ReadOnlyMemory<byte> tbs, AlgorithmIdentifier algorithm, byte[] signature,
        X500DistinguishedName issuer, DateTimeOffset thisUpdate, DateTimeOffset? nextUpdate, BigInteger? number,
        FrozenDictionary<string, CrlEntry> revoked)
    {
        Encoded = encoded;
        _tbs = tbs;
        _signatureAlgorithm = algorithm;
        _signature = signature;
        Issuer = issuer;
        ThisUpdate = thisUpdate;
        NextUpdate = nextUpdate;
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

    public bool IssuedBy(X509Certificate2 issuer) => Issuer.RawData.AsSpan().SequenceEqual(issuer.SubjectName.RawData);

    public IEnumerable<string> RevokedSerials => _revoked.Keys;

    public bool TryGetRevoked(string serialHex, out CrlEntry entry) => _revoked.TryGetValue(serialHex, out entry);

    /// <summary>
    /// True when <paramref name="issuer"/> has the CRL's issuer name, may sign CRLs (keyUsage cRLSign when the
    /// extension is present, RFC 5280 §4.2.1.3) and its key verifies the signature over TBSCertList. The answer
    /// is remembered per issuer certificate.
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

        return SignatureVerifier.Verify(_tbs.Span, _signatureAlgorithm, _signature, issuer, out string? error)
            ? null
            : $"CRL signature: {error}";
    }

    /// <summary>Decodes DER or PEM ("X509 CRL") bytes. Throws <see cref="RevocationFormatException"/> with the reason.</summary>
    public static ParsedCrl Parse(byte[] data)
    {
        byte[] der = MaybePem(data);
        try
        {
            return ParseDer(der);
        }
        catch (AsnContentException ex)
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

    // RFC 5280 §5.1:
    // CertificateList ::= SEQUENCE { tbsCertList TBSCertList, signatureAlgorithm AlgorithmIdentifier, signatureValue BIT STRING }
    // TBSCertList ::= SEQUENCE { version Version OPTIONAL, signature AlgorithmIdentifier, issuer Name, thisUpdate Time,
    //   nextUpdate Time OPTIONAL, revokedCertificates SEQUENCE OF SEQUENCE { userCertificate CertificateSerialNumber,
    //   revocationDate Time, crlEntryExtensions Extensions OPTIONAL } OPTIONAL, crlExtensions [0] EXPLICIT Extensions OPTIONAL }
    private static ParsedCrl ParseDer(byte[] der)
    {
        AsnReader outer = new(der, AsnEncodingRules.DER);
        AsnReader list = outer.ReadSequence();
        outer.ThrowIfNotEmpty();
        ReadOnlyMemory<byte> tbsBytes = list.ReadEncodedValue();
        AlgorithmIdentifier algorithm = AlgorithmIdentifier.Read(list);
        byte[] signature = list.ReadBitString(out int unusedBits);
        list.ThrowIfNotEmpty();
        if (unusedBits != 0)
        {
            throw new RevocationFormatException("CRL signature BIT STRING has unused bits");
        }

        AsnReader tbs = new AsnReader(tbsBytes, AsnEncodingRules.DER).ReadSequence();
        if (Asn1Time.NextIs(tbs, Asn1Tag.Integer))
        {
            if (!tbs.TryReadInt32(out int version) || version != 1)
            {
                throw new RevocationFormatException("unsupported CRL version (only v2 is understood)");
            }
        }

        AlgorithmIdentifier innerAlgorithm = AlgorithmIdentifier.Read(tbs);
        if (innerAlgorithm.Oid != algorithm.Oid || !innerAlgorithm.Parameters.Span.SequenceEqual(algorithm.Parameters.Span))
        {
            throw new RevocationFormatException("CRL signature algorithm differs inside and outside TBSCertList (RFC 5280 §5.1.1.2)");
        }

        X500DistinguishedName issuer = new(tbs.ReadEncodedValue().Span);
        DateTimeOffset thisUpdate = Asn1Time.ReadTime(tbs);
        DateTimeOffset? nextUpdate = null;
        if (Asn1Time.NextIs(tbs, Asn1Tag.UtcTime) || Asn1Time.NextIs(tbs, Asn1Tag.GeneralizedTime))
        {
            nextUpdate = Asn1Time.ReadTime(tbs);
        }

        Dictionary<string, CrlEntry> revoked = new(StringComparer.Ordinal);
        if (Asn1Time.NextIs(tbs, Asn1Tag.Sequence))
        {
            AsnReader entries = tbs.ReadSequence();
            while (entries.HasData)
            {
                AsnReader entry = entries.ReadSequence();
                string serial = Convert.ToHexString(entry.ReadIntegerBytes().Span);
                DateTimeOffset revocationDate = Asn1Time.ReadTime(entry);
                int? reason = null;
                if (entry.HasData)
                {
                    foreach ((string oid, bool critical, ReadOnlyMemory<byte> value) in ReadExtensions(entry))
                    {
                        switch (oid)
                        {
                            case RevocationOids.CrlReason:
                                reason = ReadEnumerated(value);
                                break;
                            case RevocationOids.InvalidityDate:
                                break;
                            case RevocationOids.CertificateIssuer:
                                throw new RevocationFormatException("indirect CRLs (certificateIssuer entry extension) are not supported");
                            default:
                                if (critical)
                                {
                                    throw new RevocationFormatException($"unknown critical CRL entry extension {oid}");
                                }

                                break;
                        }
                    }
                }

                entry.ThrowIfNotEmpty();
                revoked[serial] = new CrlEntry(revocationDate, reason);
            }
        }

        BigInteger? number = null;
        if (Asn1Time.NextIs(tbs, new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
        {
            AsnReader wrapper = tbs.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 0));
            foreach ((string oid, bool critical, ReadOnlyMemory<byte> value) in ReadExtensions(wrapper))
            {
                switch (oid)
                {
                    case RevocationOids.CrlNumber:
                        AsnReader numberReader = new(value, AsnEncodingRules.DER);
                        number = numberReader.ReadInteger();
                        numberReader.ThrowIfNotEmpty();
                        break;
                    case RevocationOids.DeltaCrlIndicator:
                        throw new RevocationFormatException("delta CRLs are not supported");
                    case RevocationOids.IssuingDistributionPoint:
                        CheckIssuingDistributionPoint(value);
                        break;
                    case RevocationOids.AuthorityKeyIdentifier:
                        break;
                    default:
                        if (critical)
                        {
                            throw new RevocationFormatException($"unknown critical CRL extension {oid}");
                        }

                        break;
                }
            }

            wrapper.ThrowIfNotEmpty();
        }

        tbs.ThrowIfNotEmpty();
        return new ParsedCrl(der, tbsBytes, algorithm, signature, issuer, thisUpdate, nextUpdate, number,
            revoked.ToFrozenDictionary(StringComparer.Ordinal));
    }

    /// <summary>Extensions ::= SEQUENCE OF Extension { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }.</summary>
    internal static List<(string Oid, bool Critical, ReadOnlyMemory<byte> Value)> ReadExtensions(AsnReader reader)
    {
        List<(string, bool, ReadOnlyMemory<byte>)> result = [];
        AsnReader extensions = reader.ReadSequence();
        while (extensions.HasData)
        {
            AsnReader extension = extensions.ReadSequence();
            string oid = extension.ReadObjectIdentifier();
            bool critical = Asn1Time.NextIs(extension, Asn1Tag.Boolean) && extension.ReadBoolean();
            ReadOnlyMemory<byte> value = extension.ReadOctetString();
            extension.ThrowIfNotEmpty();
            result.Add((oid, critical, value));
        }

        return result;
    }

    private static int ReadEnumerated(ReadOnlyMemory<byte> value)
    {
        AsnReader reader = new(value, AsnEncodingRules.DER);
        ReadOnlySpan<byte> bytes = reader.ReadEnumeratedBytes().Span;
        return bytes.Length == 1 ? bytes[0] : -1;
    }

    /// <summary>
    /// IssuingDistributionPoint (RFC 5280 §5.2.5): a CRL that covers only some reasons or is indirect cannot
    /// say a certificate is good, so it is refused rather than misread.
    /// </summary>
    private static void CheckIssuingDistributionPoint(ReadOnlyMemory<byte> value)
    {
        AsnReader idp = new AsnReader(value, AsnEncodingRules.DER).ReadSequence();
        while (idp.HasData)
        {
            Asn1Tag tag = idp.PeekTag();
            if (tag.TagClass == TagClass.ContextSpecific && tag.TagValue is 3 or 4)
            {
                throw new RevocationFormatException(tag.TagValue == 3
                    ? "CRLs partitioned by reason (onlySomeReasons) are not supported"
                    : "indirect CRLs are not supported");
            }

            idp.ReadEncodedValue();
        }
    }
}
