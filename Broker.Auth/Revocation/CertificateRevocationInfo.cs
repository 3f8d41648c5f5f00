using Org.BouncyCastle.Asn1;
using CrlDistPoint = Org.BouncyCastle.Asn1.X509.CrlDistPoint;
using DistributionPoint = Org.BouncyCastle.Asn1.X509.DistributionPoint;
using DistributionPointName = Org.BouncyCastle.Asn1.X509.DistributionPointName;
using GeneralName = Org.BouncyCastle.Asn1.X509.GeneralName;
using GeneralNames = Org.BouncyCastle.Asn1.X509.GeneralNames;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Auth.Revocation;

/// <summary>
/// What revocation needs from one certificate (serial, distribution points, OCSP responders, key hash),
/// decoded once per certificate object and kept beside it, so a warm-cache check does no ASN.1 work.
/// </summary>
internal sealed class CertificateRevocationInfo
{
    private static readonly ConditionalWeakTable<X509Certificate2, CertificateRevocationInfo> s_table = new();

    private string? _cacheId;
    private string? _subjectKey;

    private CertificateRevocationInfo(X509Certificate2 certificate)
    {
        SerialHex = Convert.ToHexString(certificate.SerialNumberBytes.Span);
        NotAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        NotBefore = new DateTimeOffset(certificate.NotBefore.ToUniversalTime(), TimeSpan.Zero);
        List<Uri> crlUrls = [];
        List<Uri> ocspUrls = [];
        bool ocspSigning = false;
        X509KeyUsageFlags? keyUsage = null;
        foreach (X509Extension extension in certificate.Extensions)
        {
            switch (extension.Oid?.Value)
            {
                case RevocationOids.CrlDistributionPoints:
                    crlUrls.AddRange(ReadDistributionPoints(extension.RawData));
                    break;
                case RevocationOids.AuthorityInfoAccess:
                    ocspUrls.AddRange(ReadOcspUris(extension));
                    break;
                case "2.5.29.37":
                    foreach (Oid oid in ((X509EnhancedKeyUsageExtension)extension).EnhancedKeyUsages)
                    {
                        ocspSigning |= oid.Value == RevocationOids.KpOcspSigning;
                    }

                    break;
                case "2.5.29.15":
                    keyUsage = ((X509KeyUsageExtension)extension).KeyUsages;
                    break;
            }
        }

        CrlDistributionPoints = crlUrls;
        OcspResponders = ocspUrls;
        HasOcspSigningUsage = ocspSigning;
        KeyUsage = keyUsage;
    }

    public static CertificateRevocationInfo Get(X509Certificate2 certificate) =>
        s_table.GetValue(certificate, static c => new CertificateRevocationInfo(c));

    /// <summary>Serial number as upper-case hex of the DER INTEGER contents (same as X509Certificate2.SerialNumber).</summary>
    public string SerialHex { get; }

    public DateTimeOffset NotAfter { get; }

    public DateTimeOffset NotBefore { get; }

    /// <summary>http(s) URIs of the CRL distribution points that cover every reason (RFC 5280 §4.2.1.13).</summary>
    public IReadOnlyList<Uri> CrlDistributionPoints { get; }

    /// <summary>http(s) OCSP responder URIs from Authority Information Access (RFC 5280 §4.2.2.1).</summary>
    public IReadOnlyList<Uri> OcspResponders { get; }

    public bool HasOcspSigningUsage { get; }

    public X509KeyUsageFlags? KeyUsage { get; }

    /// <summary>Stable id of this certificate as an issuer in cache keys: SHA-256 over the whole certificate.</summary>
    public string CacheId(X509Certificate2 certificate) =>
        _cacheId ??= Convert.ToHexString(SHA256.HashData(certificate.RawDataMemory.Span));

    /// <summary>Hex of the DER subject name, to find this certificate as the issuer named by a CRL.</summary>
    public string SubjectKey(X509Certificate2 certificate) =>
        _subjectKey ??= Convert.ToHexString(certificate.SubjectName.RawData);

    private static IEnumerable<Uri> ReadOcspUris(X509Extension extension)
    {
        X509AuthorityInformationAccessExtension aia = extension as X509AuthorityInformationAccessExtension
            ?? new X509AuthorityInformationAccessExtension(extension.RawData, extension.Critical);
        List<Uri> result = [];
        try
        {
            foreach (string uri in aia.EnumerateUris(RevocationOids.AccessMethodOcsp))
            {
                if (TryHttpUri(uri, out Uri? parsed))
                {
                    result.Add(parsed);
                }
            }
        }
        catch (CryptographicException)
        {
            // A malformed AIA simply names no responder; the mode's failure rules then apply.
        }

        return result;
    }

    /// <summary>
    /// CRLDistributionPoints ::= SEQUENCE OF DistributionPoint { distributionPoint [0] DistributionPointName,
    /// reasons [1], cRLIssuer [2] }; DistributionPointName ::= CHOICE { fullName [0] GeneralNames, ... };
    /// GeneralName uniformResourceIdentifier [6] IA5String. Points limited to some reasons or naming another
    /// CRL issuer (partitioned or indirect CRLs) are not used.
    /// </summary>
    internal static List<Uri> ReadDistributionPoints(ReadOnlyMemory<byte> extensionValue)
    {
        List<Uri> result = [];
        try
        {
            CrlDistPoint points = CrlDistPoint.GetInstance(Asn1Object.FromByteArray(extensionValue.ToArray()));
            foreach (DistributionPoint point in points.GetDistributionPoints())
            {
                if (point.Reasons is not null || point.CrlIssuer is not null
                    || point.DistributionPointName is not { Type: DistributionPointName.FullName } name)
                {
                    continue;
                }

                foreach (GeneralName general in GeneralNames.GetInstance(name.Name).GetNames())
                {
                    if (general.TagNo == GeneralName.UniformResourceIdentifier
                        && TryHttpUri(DerIA5String.GetInstance(general.Name).GetString(), out Uri? parsed))
                    {
                        result.Add(parsed);
                    }
                }
            }
        }
        catch (Exception ex) when (BouncyCastleInterop.IsDecodeFailure(ex))
        {
            // Malformed: no usable distribution point.
        }

        return result;
    }

    private static bool TryHttpUri(string value, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Uri? uri) =>
        Uri.TryCreate(value, UriKind.Absolute, out uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps);
}
