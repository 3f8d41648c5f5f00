using System.Diagnostics.CodeAnalysis;

namespace OmniBroker.Policy.Certificates;

/// <summary>Every attribute a rule can test or a template can substitute.</summary>
internal enum AttributeKind
{
    CommonName,
    Organization,
    OrganizationalUnit,
    Country,
    State,
    Locality,
    Serial,
    Fingerprint,
    IssuerCommonName,
    IssuerOrganization,
    IssuerOrganizationalUnit,
    IssuerCountry,
    IssuerState,
    IssuerLocality,
    SanDns,
    SanUri,
    SanEmail,
    SanIp,
    Extension,
    ClientId,
}

/// <summary>A resolved attribute name: <see cref="Oid"/> is set for <see cref="AttributeKind.Extension"/>.</summary>
internal readonly record struct AttributeRef(AttributeKind Kind, string Name, string? Oid = null);

internal static class AttributeCatalog
{
    public const string ExtensionPrefix = "cert.ext.";

    public const int FixedKindCount = (int)AttributeKind.Extension;

    private static readonly Dictionary<string, AttributeKind> s_names = new(StringComparer.Ordinal)
    {
        ["cert.cn"] = AttributeKind.CommonName,
        ["cert.o"] = AttributeKind.Organization,
        ["cert.ou"] = AttributeKind.OrganizationalUnit,
        ["cert.c"] = AttributeKind.Country,
        ["cert.st"] = AttributeKind.State,
        ["cert.l"] = AttributeKind.Locality,
        ["cert.serial"] = AttributeKind.Serial,
        ["cert.fingerprint"] = AttributeKind.Fingerprint,
        ["cert.issuer.cn"] = AttributeKind.IssuerCommonName,
        ["cert.issuer.o"] = AttributeKind.IssuerOrganization,
        ["cert.issuer.ou"] = AttributeKind.IssuerOrganizationalUnit,
        ["cert.issuer.c"] = AttributeKind.IssuerCountry,
        ["cert.issuer.st"] = AttributeKind.IssuerState,
        ["cert.issuer.l"] = AttributeKind.IssuerLocality,
        ["cert.san.dns"] = AttributeKind.SanDns,
        ["cert.san.uri"] = AttributeKind.SanUri,
        ["cert.san.email"] = AttributeKind.SanEmail,
        ["cert.san.ip"] = AttributeKind.SanIp,
        ["client.id"] = AttributeKind.ClientId,
    };

    public static IEnumerable<string> KnownNames => s_names.Keys.Append(ExtensionPrefix + "<alias>");

    /// <summary>Resolves a name as written in a rule or template; extension aliases come from the
    /// <c>extensions:</c> sections of all files.</summary>
    public static bool TryResolve(
        string name,
        IReadOnlyDictionary<string, string> extensionAliases,
        out AttributeRef attribute,
        [NotNullWhen(false)] out string? error)
    {
        if (s_names.TryGetValue(name, out var kind))
        {
            attribute = new AttributeRef(kind, name);
            error = null;
            return true;
        }

        if (name.StartsWith(ExtensionPrefix, StringComparison.Ordinal))
        {
            var alias = name[ExtensionPrefix.Length..];
            if (extensionAliases.TryGetValue(alias, out var oid))
            {
                attribute = new AttributeRef(AttributeKind.Extension, name, oid);
                error = null;
                return true;
            }

            attribute = default;
            error = $"unknown extension alias '{alias}': declare it under 'extensions:' (alias: OID) in a policy file";
            return false;
        }

        attribute = default;
        error = $"unknown attribute '{name}'; known: {string.Join(", ", KnownNames)}";
        return false;
    }

    /// <summary>DNS names and e-mail addresses compare without case; hex values are normalised to upper case.</summary>
    public static StringComparison Comparison(AttributeKind kind) =>
        kind is AttributeKind.SanDns or AttributeKind.SanEmail ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;

    public static bool IsHex(AttributeKind kind) => kind is AttributeKind.Serial or AttributeKind.Fingerprint;

    /// <summary>Upper-case hex without separators; a serial also loses leading zero bytes (DER may add one to keep
    /// the INTEGER positive), so "00:8F:12" and "8f12" name the same serial.</summary>
    public static string? NormalizeHex(string value, bool stripLeadingZeroBytes)
    {
        Span<char> buffer = value.Length <= 256 ? stackalloc char[value.Length] : new char[value.Length];
        int n = 0;
        foreach (var c in value)
        {
            if (c is ':' or ' ' or '-')
            {
                continue;
            }

            if (!char.IsAsciiHexDigit(c))
            {
                return null;
            }

            buffer[n++] = char.ToUpperInvariant(c);
        }

        var hex = buffer[..n];
        if (hex.Length == 0)
        {
            return null;
        }

        if (stripLeadingZeroBytes)
        {
            if ((hex.Length & 1) == 1)
            {
                return StripZeroBytes("0" + hex.ToString());
            }

            return StripZeroBytes(hex.ToString());
        }

        return hex.ToString();

        static string StripZeroBytes(string h)
        {
            int i = 0;
            while (i + 2 < h.Length && h[i] == '0' && h[i + 1] == '0')
            {
                i += 2;
            }

            return h[i..];
        }
    }
}
