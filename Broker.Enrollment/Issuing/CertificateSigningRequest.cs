using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Enrollment.Issuing;

/// <summary>One subject attribute as asked for or as found in a certificate: its OID, policy name and value.</summary>
public readonly record struct NameAttribute(string Oid, string PolicyName, string Value);

/// <summary>A SAN entry: "uri" or "dns", and its value.</summary>
public readonly record struct SanEntry(string Type, string Value);

/// <summary>
/// A PKCS#10 request (RFC 2986) whose signature has been verified with its own public key (proof of possession),
/// whose key is strong enough, and whose subject and SAN use only what this CA issues: CN, O, OU, C, ST, L;
/// SAN URI and DNS names; the device-type extension. Anything else is refused with a 400 naming it.
/// </summary>
public sealed class CertificateSigningRequest
{
    private const string SanOid = "2.5.29.17";

    private static readonly Dictionary<string, string> s_nameOids = new(StringComparer.Ordinal)
    {
        ["2.5.4.3"] = "cert.cn",
        ["2.5.4.10"] = "cert.o",
        ["2.5.4.11"] = "cert.ou",
        ["2.5.4.6"] = "cert.c",
        ["2.5.4.8"] = "cert.st",
        ["2.5.4.7"] = "cert.l",
    };

    private CertificateSigningRequest(CertificateRequest request, IReadOnlyList<NameAttribute> subject, IReadOnlyList<SanEntry> san, string? deviceType, string keyDescription)
    {
        Request = request;
        Subject = subject;
        SubjectAlternativeNames = san;
        DeviceType = deviceType;
        KeyDescription = keyDescription;
    }

    /// <summary>The loaded request: its <see cref="CertificateRequest.PublicKey"/> is the key to certify.</summary>
    public CertificateRequest Request { get; }

    public IReadOnlyList<NameAttribute> Subject { get; }

    public IReadOnlyList<SanEntry> SubjectAlternativeNames { get; }

    public string? DeviceType { get; }

    /// <summary>"EC P-256", "RSA 3072", for logs.</summary>
    public string KeyDescription { get; }

    public string? CommonName => Subject.FirstOrDefault(a => a.PolicyName == "cert.cn").Value;

    /// <summary>Parses and verifies DER (RFC 8951: the EST body is base64 of this DER).</summary>
    /// <exception cref="EnrollmentException">400: malformed, bad signature, weak key, unsupported attribute.</exception>
    public static CertificateSigningRequest Parse(byte[] der, int minimumRsaBits)
    {
        CertificateRequest request;
        try
        {
            // Verifies the self-signature: the requester holds the private key (proof of possession, RFC 7030 §3.4).
            request = CertificateRequest.LoadSigningRequest(der, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.UnsafeLoadCertificateExtensions);
        }
        catch (CryptographicException ex)
        {
            var signature = ex.Message.Contains("signature", StringComparison.OrdinalIgnoreCase);
            throw EnrollmentException.BadRequest(signature ? "bad-signature" : "bad-csr",
                signature ? "the CSR's signature does not verify with its public key (no proof of possession)" : $"not a valid PKCS#10 request: {ex.Message}");
        }

        var keyDescription = CheckKey(request.PublicKey, minimumRsaBits);
        var subject = ReadName(request.SubjectName.RawData);
        var san = new List<SanEntry>();
        string? deviceType = null;
        foreach (var extension in request.CertificateExtensions)
        {
            switch (extension.Oid?.Value)
            {
                case SanOid:
                    san.AddRange(ReadSan(extension.RawData));
                    break;
                case DeviceTypeExtension.Oid:
                    deviceType = DeviceTypeExtension.Read(extension.RawData)
                        ?? throw EnrollmentException.BadRequest("bad-csr", "the device-type extension must hold a UTF8String");
                    break;
            }
        }
        return new CertificateSigningRequest(request, subject, san, deviceType, keyDescription);
    }

    private static bool IsString(int tag) => (UniversalTagNumber)tag is UniversalTagNumber.UTF8String or UniversalTagNumber.PrintableString
        or UniversalTagNumber.IA5String or UniversalTagNumber.BMPString or UniversalTagNumber.VisibleString
        or UniversalTagNumber.NumericString or UniversalTagNumber.T61String or UniversalTagNumber.UniversalString;

    /// <summary>Subject and SAN of a certificate or request, compared as decoded values (a PrintableString and a
    /// UTF8String of the same text are the same name): RFC 7030 §4.2.2 "identical".</summary>
    public static bool SameIdentity(IReadOnlyList<NameAttribute> a, IReadOnlyList<NameAttribute> b) =>
        a.Count == b.Count && a.Zip(b).All(p => p.First.Oid == p.Second.Oid && p.First.Value == p.Second.Value);

    public static bool SameSan(IReadOnlyList<SanEntry> a, IReadOnlyList<SanEntry> b) =>
        a.Count == b.Count && a.Select(Key).Order(StringComparer.Ordinal).SequenceEqual(b.Select(Key).Order(StringComparer.Ordinal));

    private static string Key(SanEntry entry) => entry.Type + ":" + entry.Value;

    /// <summary>The subject attributes of a certificate or CSR name, in order.</summary>
    public static List<NameAttribute> ReadName(byte[] der)
    {
        var result = new List<NameAttribute>();
        try
        {
            var rdns = new AsnReader(der, AsnEncodingRules.DER).ReadSequence();
            while (rdns.HasData)
            {
                var set = rdns.ReadSetOf(skipSortOrderValidation: true);
                while (set.HasData)
                {
                    var atv = set.ReadSequence();
                    var oid = atv.ReadObjectIdentifier();
                    // Unknown attribute types keep an empty policy name: enrollment refuses them, renewal compares them.
                    var name = s_nameOids.GetValueOrDefault(oid, "");
                    var tag = atv.PeekTag();
                    var value = tag.TagClass == TagClass.Universal && IsString(tag.TagValue)
                        ? atv.ReadCharacterString((UniversalTagNumber)tag.TagValue)
                        : "#" + Convert.ToHexString(atv.ReadEncodedValue().Span);
                    if (value.Length is 0 or > 128)
                    {
                        throw EnrollmentException.BadRequest("unsupported-subject", $"subject attribute {oid} must be 1 to 128 characters");
                    }
                    result.Add(new NameAttribute(oid, name, value));
                }
            }
        }
        catch (Exception ex) when (ex is AsnContentException or ArgumentException or InvalidOperationException)
        {
            throw EnrollmentException.BadRequest("bad-csr", $"the subject name cannot be decoded: {ex.Message}");
        }
        return result;
    }

    /// <summary>URI and DNS names of a SubjectAltName extension value; other name types as type "other" (hex DER).</summary>
    public static List<SanEntry> ReadSan(byte[] der)
    {
        var result = new List<SanEntry>();
        try
        {
            var names = new AsnReader(der, AsnEncodingRules.DER).ReadSequence();
            while (names.HasData)
            {
                var tag = names.PeekTag();
                switch (tag.TagClass == TagClass.ContextSpecific ? tag.TagValue : -1)
                {
                    case 2:
                        result.Add(new SanEntry("dns", names.ReadCharacterString(UniversalTagNumber.IA5String, tag)));
                        break;
                    case 6:
                        result.Add(new SanEntry("uri", names.ReadCharacterString(UniversalTagNumber.IA5String, tag)));
                        break;
                    default:
                        // Enrollment refuses these; renewal compares them with the current certificate's.
                        result.Add(new SanEntry("other", Convert.ToHexString(names.ReadEncodedValue().Span)));
                        break;
                }
            }
        }
        catch (AsnContentException ex)
        {
            throw EnrollmentException.BadRequest("bad-csr", $"the subjectAltName cannot be decoded: {ex.Message}");
        }
        return result;
    }

    private static string CheckKey(PublicKey key, int minimumRsaBits)
    {
        switch (key.Oid.Value)
        {
            case "1.2.840.10045.2.1":
                using (var ec = key.GetECDsaPublicKey()!)
                {
                    var curve = ec.ExportParameters(false).Curve.Oid;
                    var name = curve.Value switch
                    {
                        "1.2.840.10045.3.1.7" => "P-256",
                        "1.3.132.0.34" => "P-384",
                        "1.3.132.0.35" => "P-521",
                        _ => null,
                    };
                    return name is null
                        ? throw EnrollmentException.BadRequest("weak-key", $"EC curve {curve.FriendlyName ?? curve.Value} is not accepted (use P-256, P-384 or P-521)")
                        : "EC " + name;
                }
            case "1.2.840.113549.1.1.1":
                using (var rsa = key.GetRSAPublicKey()!)
                {
                    return rsa.KeySize < minimumRsaBits
                        ? throw EnrollmentException.BadRequest("weak-key", $"RSA key of {rsa.KeySize} bits is too weak (at least {minimumRsaBits})")
                        : "RSA " + rsa.KeySize;
                }
            default:
                throw EnrollmentException.BadRequest("weak-key", $"key algorithm {key.Oid.FriendlyName ?? key.Oid.Value} is not accepted (use EC P-256 or RSA)");
        }
    }
}

/// <summary>The device type extension (private OID, DER UTF8String), as the development PKI writes it.</summary>
public static class DeviceTypeExtension
{
    public const string Oid = "1.3.6.1.4.1.59999.1.1";

    public static string? Read(byte[] der)
    {
        try
        {
            var reader = new AsnReader(der, AsnEncodingRules.DER);
            var value = reader.ReadCharacterString(UniversalTagNumber.UTF8String);
            return reader.HasData || value.Length == 0 ? null : value;
        }
        catch (AsnContentException)
        {
            return null;
        }
    }

    public static X509Extension Create(string deviceType)
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        writer.WriteCharacterString(UniversalTagNumber.UTF8String, deviceType);
        return new X509Extension(Oid, writer.Encode(), critical: false);
    }
}
