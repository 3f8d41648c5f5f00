using System.Formats.Asn1;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Policy.Certificates;

/// <summary>
/// The attribute values of one client, read once at CONNECT from its certificate (and client id). Values are
/// decoded from the DER ourselves rather than from X500DistinguishedName.Name, so a name that contains ',' or
/// '=' cannot smuggle a second RDN into a rule's view. Attributes that cannot be decoded are absent: a rule
/// that needs them does not apply (allow) and a deny that tests them for absence still applies.
/// </summary>
internal sealed class ClientAttributes
{
    public static readonly ClientAttributes Anonymous = new(null, null);

    private readonly string[][] _fixed;
    private readonly Dictionary<string, string[]> _extensions;

    private ClientAttributes(X509Certificate2? certificate, string? clientId)
    {
        _fixed = new string[AttributeCatalog.FixedKindCount + 1][];
        for (int i = 0; i < _fixed.Length; i++)
        {
            _fixed[i] = [];
        }

        _extensions = new Dictionary<string, string[]>(StringComparer.Ordinal);
        ClientId = clientId;
        if (clientId is not null)
        {
            _fixed[AttributeCatalog.FixedKindCount] = [clientId];
        }

        if (certificate is null)
        {
            return;
        }

        Certificate = certificate;
        ReadName(certificate.SubjectName.RawData, subject: true);
        ReadName(certificate.IssuerName.RawData, subject: false);

        var serial = AttributeCatalog.NormalizeHex(certificate.SerialNumber, stripLeadingZeroBytes: true);
        if (serial is not null)
        {
            Set(AttributeKind.Serial, [serial]);
        }

        Set(AttributeKind.Fingerprint, [Convert.ToHexString(SHA256.HashData(certificate.RawData))]);

        var extensionValues = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var extension in certificate.Extensions)
        {
            var oid = extension.Oid?.Value;
            if (oid is null)
            {
                continue;
            }

            if (oid == "2.5.29.17")
            {
                ReadSubjectAlternativeNames(extension.RawData);
                continue;
            }

            if (!extensionValues.TryGetValue(oid, out var list))
            {
                extensionValues[oid] = list = [];
            }

            list.Add(DecodeExtensionValue(extension.RawData));
        }

        foreach (var (oid, values) in extensionValues)
        {
            _extensions[oid] = [.. values];
        }
    }

    public X509Certificate2? Certificate { get; }

    public string? ClientId { get; }

    public static ClientAttributes From(X509Certificate2? certificate, string? clientId) =>
        certificate is null && clientId is null ? Anonymous : new ClientAttributes(certificate, clientId);

    /// <summary>Attributes given value by value (the subject a CSR asks for), not read from a certificate.</summary>
    public static ClientAttributes FromValues(IEnumerable<KeyValuePair<AttributeRef, string[]>> values)
    {
        var attributes = new ClientAttributes(null, null);
        foreach (var (attribute, list) in values)
        {
            if (attribute.Kind == AttributeKind.Extension)
            {
                attributes._extensions[attribute.Oid!] = list;
            }
            else if (attribute.Kind != AttributeKind.ClientId)
            {
                attributes.Set(attribute.Kind, list);
            }
        }

        return attributes;
    }

    public string[] Get(in AttributeRef attribute) => attribute.Kind switch
    {
        AttributeKind.Extension => _extensions.TryGetValue(attribute.Oid!, out var values) ? values : [],
        AttributeKind.ClientId => _fixed[AttributeCatalog.FixedKindCount],
        _ => _fixed[(int)attribute.Kind],
    };

    private void Set(AttributeKind kind, string[] values) => _fixed[(int)kind] = values;

    private void Add(AttributeKind kind, string value)
    {
        var old = _fixed[(int)kind];
        var next = new string[old.Length + 1];
        old.CopyTo(next, 0);
        next[^1] = value;
        _fixed[(int)kind] = next;
    }

    // Name ::= SEQUENCE OF RelativeDistinguishedName; RDN ::= SET OF AttributeTypeAndValue (RFC 5280 §4.1.2.4).
    // Multi-valued RDNs contribute every value; repeated attributes (several OUs) are all kept, in order.
    private void ReadName(byte[] der, bool subject)
    {
        var found = new List<(AttributeKind Kind, string Value)>();
        try
        {
            var reader = new AsnReader(der, AsnEncodingRules.DER);
            var rdns = reader.ReadSequence();
            while (rdns.HasData)
            {
                var set = rdns.ReadSetOf(skipSortOrderValidation: true);
                while (set.HasData)
                {
                    var atv = set.ReadSequence();
                    var type = atv.ReadObjectIdentifier();
                    var value = ReadDirectoryString(atv);
                    var kind = NameKind(type, subject);
                    if (kind is { } k && value is not null)
                    {
                        found.Add((k, value));
                    }
                }
            }
        }
        catch (AsnContentException)
        {
            // An undecodable name contributes nothing: rules on it do not match.
            return;
        }

        foreach (var (kind, value) in found)
        {
            Add(kind, value);
        }
    }

    private static AttributeKind? NameKind(string oid, bool subject) => oid switch
    {
        "2.5.4.3" => subject ? AttributeKind.CommonName : AttributeKind.IssuerCommonName,
        "2.5.4.10" => subject ? AttributeKind.Organization : AttributeKind.IssuerOrganization,
        "2.5.4.11" => subject ? AttributeKind.OrganizationalUnit : AttributeKind.IssuerOrganizationalUnit,
        "2.5.4.6" => subject ? AttributeKind.Country : AttributeKind.IssuerCountry,
        "2.5.4.8" => subject ? AttributeKind.State : AttributeKind.IssuerState,
        "2.5.4.7" => subject ? AttributeKind.Locality : AttributeKind.IssuerLocality,
        _ => null,
    };

    private static string? ReadDirectoryString(AsnReader reader)
    {
        var tag = reader.PeekTag();
        if (tag.TagClass == TagClass.Universal)
        {
            switch ((UniversalTagNumber)tag.TagValue)
            {
                case UniversalTagNumber.UTF8String:
                case UniversalTagNumber.PrintableString:
                case UniversalTagNumber.IA5String:
                case UniversalTagNumber.BMPString:
                case UniversalTagNumber.VisibleString:
                case UniversalTagNumber.NumericString:
                case UniversalTagNumber.T61String:
                    return reader.ReadCharacterString((UniversalTagNumber)tag.TagValue);
            }
        }

        reader.ReadEncodedValue();
        return null;
    }

    // GeneralNames (RFC 5280 §4.2.1.6): rfc822Name [1] IA5String, dNSName [2] IA5String,
    // uniformResourceIdentifier [6] IA5String, iPAddress [7] OCTET STRING; other choices are ignored.
    private void ReadSubjectAlternativeNames(byte[] der)
    {
        var found = new List<(AttributeKind Kind, string Value)>();
        try
        {
            var reader = new AsnReader(der, AsnEncodingRules.DER);
            var names = reader.ReadSequence();
            while (names.HasData)
            {
                var tag = names.PeekTag();
                if (tag.TagClass != TagClass.ContextSpecific)
                {
                    names.ReadEncodedValue();
                    continue;
                }

                switch (tag.TagValue)
                {
                    case 1:
                        found.Add((AttributeKind.SanEmail, names.ReadCharacterString(UniversalTagNumber.IA5String, tag)));
                        break;
                    case 2:
                        found.Add((AttributeKind.SanDns, names.ReadCharacterString(UniversalTagNumber.IA5String, tag)));
                        break;
                    case 6:
                        found.Add((AttributeKind.SanUri, names.ReadCharacterString(UniversalTagNumber.IA5String, tag)));
                        break;
                    case 7:
                        var bytes = names.ReadOctetString(tag);
                        if (bytes.Length is 4 or 16)
                        {
                            found.Add((AttributeKind.SanIp, new IPAddress(bytes).ToString()));
                        }

                        break;
                    default:
                        names.ReadEncodedValue();
                        break;
                }
            }
        }
        catch (AsnContentException)
        {
            return;
        }

        foreach (var (kind, value) in found)
        {
            Add(kind, value);
        }
    }

    /// <summary>A string type gives its text, INTEGER its decimal value, BOOLEAN true/false, an OID its dotted
    /// form; anything else (or trailing data) is compared as the upper-case hex of the whole extension value.</summary>
    internal static string DecodeExtensionValue(byte[] der)
    {
        try
        {
            var reader = new AsnReader(der, AsnEncodingRules.DER);
            var tag = reader.PeekTag();
            string? text = null;
            if (tag.TagClass == TagClass.Universal)
            {
                switch ((UniversalTagNumber)tag.TagValue)
                {
                    case UniversalTagNumber.UTF8String:
                    case UniversalTagNumber.PrintableString:
                    case UniversalTagNumber.IA5String:
                    case UniversalTagNumber.BMPString:
                    case UniversalTagNumber.VisibleString:
                    case UniversalTagNumber.NumericString:
                    case UniversalTagNumber.T61String:
                        text = reader.ReadCharacterString((UniversalTagNumber)tag.TagValue);
                        break;
                    case UniversalTagNumber.Integer:
                        text = reader.ReadInteger().ToString(CultureInfo.InvariantCulture);
                        break;
                    case UniversalTagNumber.Boolean:
                        text = reader.ReadBoolean() ? "true" : "false";
                        break;
                    case UniversalTagNumber.ObjectIdentifier:
                        text = reader.ReadObjectIdentifier();
                        break;
                }
            }

            if (text is not null && !reader.HasData)
            {
                return text;
            }
        }
        catch (AsnContentException)
        {
        }

        return Convert.ToHexString(der);
    }
}
