using System.Globalization;
using System.Net;
using Microsoft.Extensions.Configuration;

namespace OmniBroker.Enrollment;

/// <summary>
/// Section "Est": the EST server (RFC 7030) on its own HTTPS listener, the issuing CA and its profile, enrollment
/// tokens, rate limits, renewal over MQTT and the certificate inventory. <see cref="Load"/> reports every bad key.
/// </summary>
public sealed class EstOptions
{
    public const string Section = "Est";
    public const int DefaultPort = 8443;

    /// <summary>Est:Enabled (default false): the EST listener, MQTT renewal and the inventory run only when true.</summary>
    public bool Enabled { get; init; }

    /// <summary>Est:Address (default 0.0.0.0) and Est:Port (default 8443; 0 picks a free port).</summary>
    public IPAddress Address { get; init; } = IPAddress.Any;

    public int Port { get; init; } = DefaultPort;

    /// <summary>Est:BootstrapTrustAnchors: PEM files of the CAs whose certificates may enroll (manufacturer CAs).</summary>
    public IReadOnlyList<string> BootstrapTrustAnchors { get; init; } = [];

    /// <summary>Est:CaCertificate / Est:CaKey: the issuing CA (PEM); unset: the development PKI's intermediate.</summary>
    public string? CaCertificate { get; init; }

    public string? CaKey { get; init; }

    /// <summary>Est:CaKeyPassphraseEnvironmentVariable or Est:CaKeyPassphraseFile: the passphrase of an encrypted CaKey.</summary>
    public string? CaKeyPassphraseEnvironmentVariable { get; init; }

    public string? CaKeyPassphraseFile { get; init; }

    /// <summary>Est:ValidityDays (default 365).</summary>
    public int ValidityDays { get; init; } = 365;

    /// <summary>Est:CrlUrl / Est:OcspUrl put in issued certificates; default: the development PKI's.</summary>
    public string? CrlUrl { get; init; }

    public string? OcspUrl { get; init; }

    /// <summary>Est:MinimumRsaBits (default 2048). EC keys must be P-256, P-384 or P-521.</summary>
    public int MinimumRsaBits { get; init; } = 2048;

    /// <summary>Est:MaxRequestBytes (default 16384): larger bodies get 413.</summary>
    public int MaxRequestBytes { get; init; } = 16_384;

    /// <summary>Est:RatePerIdentityPerMinute (default 10) and Est:RateTotalPerSecond (default 2000).</summary>
    public int RatePerIdentityPerMinute { get; init; } = 10;

    public int RateTotalPerSecond { get; init; } = 2000;

    /// <summary>Est:TokenLifetimeHours (default 168): lifetime of tokens made without --expires.</summary>
    public int TokenLifetimeHours { get; init; } = 168;

    /// <summary>Est:SupersededGracePeriod (hours; default: none): after renewal the old certificate is refused at
    /// CONNECT once this has passed. Unset: it stays usable until it expires.</summary>
    public TimeSpan? SupersededGracePeriod { get; init; }

    /// <summary>Est:ExpiryWarningDays (default 30): 5.0 CONNACKs of certificates expiring sooner say "renew".</summary>
    public int ExpiryWarningDays { get; init; } = 30;

    /// <summary>Est:MqttRenewal (default true): serve $omnibroker/certificates/renew.</summary>
    public bool MqttRenewal { get; init; } = true;

    /// <summary>Est:InventoryFile (default &lt;DataDirectory&gt;/certificates.db).</summary>
    public string? InventoryFile { get; init; }

    public static EstOptions Load(IConfiguration configuration, List<string> errors)
    {
        var section = configuration.GetSection(Section);
        string Key(string name) => $"{Section}:{name}";
        var options = new EstOptions
        {
            Enabled = Bool(section, "Enabled", false, Key("Enabled"), errors),
            Address = ReadAddress(section["Address"], Key("Address"), errors),
            Port = Int(section, "Port", DefaultPort, 0, 65535, Key("Port"), errors),
            BootstrapTrustAnchors = Files(section, "BootstrapTrustAnchors", errors),
            CaCertificate = File(section, "CaCertificate", errors),
            CaKey = File(section, "CaKey", errors),
            CaKeyPassphraseEnvironmentVariable = Blank(section["CaKeyPassphraseEnvironmentVariable"]),
            CaKeyPassphraseFile = File(section, "CaKeyPassphraseFile", errors),
            ValidityDays = Int(section, "ValidityDays", 365, 1, 3650, Key("ValidityDays"), errors),
            CrlUrl = Url(section, "CrlUrl", errors),
            OcspUrl = Url(section, "OcspUrl", errors),
            MinimumRsaBits = Int(section, "MinimumRsaBits", 2048, 2048, 16384, Key("MinimumRsaBits"), errors),
            MaxRequestBytes = Int(section, "MaxRequestBytes", 16_384, 1024, 1_048_576, Key("MaxRequestBytes"), errors),
            RatePerIdentityPerMinute = Int(section, "RatePerIdentityPerMinute", 10, 1, 1_000_000, Key("RatePerIdentityPerMinute"), errors),
            RateTotalPerSecond = Int(section, "RateTotalPerSecond", 2000, 1, 1_000_000, Key("RateTotalPerSecond"), errors),
            TokenLifetimeHours = Int(section, "TokenLifetimeHours", 168, 1, 24 * 366, Key("TokenLifetimeHours"), errors),
            SupersededGracePeriod = string.IsNullOrWhiteSpace(section["SupersededGracePeriod"]) ? null
                : TimeSpan.FromHours(Int(section, "SupersededGracePeriod", 0, 0, 24 * 3650, Key("SupersededGracePeriod"), errors)),
            ExpiryWarningDays = Int(section, "ExpiryWarningDays", 30, 0, 3650, Key("ExpiryWarningDays"), errors),
            MqttRenewal = Bool(section, "MqttRenewal", true, Key("MqttRenewal"), errors),
            InventoryFile = Blank(section["InventoryFile"]) is { } inventory ? Path.GetFullPath(inventory) : null,
        };
        options.Validate(errors);
        return options;
    }

    /// <summary>Checks combinations of keys; appends one message per problem, naming the key.</summary>
    public void Validate(List<string> errors)
    {
        if ((CaCertificate is null) != (CaKey is null))
        {
            errors.Add(CaCertificate is null ? $"{Section}:CaCertificate: required when {Section}:CaKey is set" : $"{Section}:CaKey: required when {Section}:CaCertificate is set");
        }
        if (CaKeyPassphraseEnvironmentVariable is not null && CaKeyPassphraseFile is not null)
        {
            errors.Add($"{Section}:CaKeyPassphraseFile: give either it or {Section}:CaKeyPassphraseEnvironmentVariable, not both");
        }
        if (CaKeyPassphraseEnvironmentVariable is { } variable && Environment.GetEnvironmentVariable(variable) is null)
        {
            errors.Add($"{Section}:CaKeyPassphraseEnvironmentVariable: environment variable {variable} is not set");
        }
    }

    private static string? Blank(string? text) => string.IsNullOrWhiteSpace(text) ? null : text.Trim();

    private static bool Bool(IConfiguration section, string name, bool fallback, string key, List<string> errors)
    {
        var text = Blank(section[name]);
        if (text is null)
        {
            return fallback;
        }
        if (bool.TryParse(text, out var value))
        {
            return value;
        }
        errors.Add($"{key}: '{text}' is not true or false");
        return fallback;
    }

    private static int Int(IConfiguration section, string name, int fallback, int min, int max, string key, List<string> errors)
    {
        var text = Blank(section[name]);
        if (text is null)
        {
            return fallback;
        }
        if (int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
        {
            return value;
        }
        errors.Add($"{key}: '{text}' must be a whole number from {min} to {max}");
        return fallback;
    }

    private static IPAddress ReadAddress(string? text, string key, List<string> errors)
    {
        if (Blank(text) is not { } value)
        {
            return IPAddress.Any;
        }
        if (IPAddress.TryParse(value, out var address))
        {
            return address;
        }
        errors.Add($"{key}: '{value}' is not an IP address");
        return IPAddress.Any;
    }

    private static string? File(IConfiguration section, string name, List<string> errors)
    {
        if (Blank(section[name]) is not { } text)
        {
            return null;
        }
        var path = Path.GetFullPath(text);
        if (!System.IO.File.Exists(path))
        {
            errors.Add($"{Section}:{name}: file {path} not found");
        }
        return path;
    }

    private static string? Url(IConfiguration section, string name, List<string> errors)
    {
        if (Blank(section[name]) is not { } text)
        {
            return null;
        }
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            errors.Add($"{Section}:{name}: '{text}' is not an absolute http(s) URL");
        }
        return text;
    }

    private static List<string> Files(IConfiguration section, string name, List<string> errors)
    {
        var values = new List<(string Key, string Value)>();
        if (Blank(section[name]) is { } single)
        {
            values.AddRange(single.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(v => ($"{Section}:{name}", v)));
        }
        foreach (var child in section.GetSection(name).GetChildren())
        {
            if (Blank(child.Value) is { } value)
            {
                values.Add(($"{Section}:{name}:{child.Key}", value));
            }
        }
        var paths = new List<string>();
        foreach (var (key, value) in values)
        {
            var path = Path.GetFullPath(value);
            if (!System.IO.File.Exists(path))
            {
                errors.Add($"{key}: file {path} not found");
                continue;
            }
            paths.Add(path);
        }
        return paths;
    }
}
