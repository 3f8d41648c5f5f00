using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace OmniBroker.Auth.Revocation;

/// <summary>Bad <c>Revocation</c> configuration; <see cref="Errors"/> lists every problem found, each with its key.</summary>
public sealed class RevocationConfigurationException : Exception
{
    public RevocationConfigurationException(IReadOnlyList<string> errors)
        : base("Invalid revocation configuration:" + Environment.NewLine + "  " + string.Join(Environment.NewLine + "  ", errors))
    {
        Errors = errors;
    }

    public IReadOnlyList<string> Errors { get; }
}

/// <summary>
/// Reads the <c>Revocation</c> section. Keys (all optional):
/// Mode (ocsp | crl | ocsp-then-crl | crl-then-ocsp | none), FailurePolicy (hard-fail | soft-fail),
/// OcspUnknown (fallback | refuse), CrlFiles (list of paths), FetchDistributionPoints (bool), CrlTimeout,
/// RefreshMargin, CrlMaxRefreshInterval, CrlRetryInterval, CrlFilePollInterval, StaleCrlGrace,
/// StaleCrlPolicy (fail-closed | fail-open), OcspTimeout, OcspCacheTtl, OcspMaxCacheAge, OcspFailureBackoff,
/// ClockSkew, UseNonce (bool), RequestMethod (post | get), HashAlgorithm (sha256 | sha1), MonitorInterval,
/// MaxStatusAge, MaxCrlBytes, PerAnchor:&lt;subject or thumbprint&gt;:{Mode, FailurePolicy, OcspUnknown, OcspResponder}.
/// Durations are "hh:mm:ss" or a number with ms, s, m, h or d. Every error is collected before throwing.
/// </summary>
public static class RevocationOptionsLoader
{
    private static readonly HashSet<string> s_knownKeys = new(StringComparer.OrdinalIgnoreCase)
    {
        "Mode", "FailurePolicy", "OcspUnknown", "CrlFiles", "FetchDistributionPoints", "CrlTimeout", "RefreshMargin",
        "CrlMaxRefreshInterval", "CrlRetryInterval", "CrlFilePollInterval", "StaleCrlGrace", "StaleCrlPolicy",
        "OcspTimeout", "OcspCacheTtl", "OcspMaxCacheAge", "OcspFailureBackoff", "ClockSkew", "UseNonce",
        "RequestMethod", "HashAlgorithm", "MonitorInterval", "MaxStatusAge", "MaxCrlBytes", "PerAnchor",
    };

    private static readonly HashSet<string> s_anchorKeys = new(StringComparer.OrdinalIgnoreCase)
    {
        "Mode", "FailurePolicy", "OcspUnknown", "OcspResponder",
    };

    /// <summary>Applies the section onto <paramref name="options"/> (defaults stay for absent keys).</summary>
    public static RevocationOptions Load(IConfiguration section, RevocationOptions? options = null)
    {
        options ??= new RevocationOptions();
        List<string> errors = [];
        string prefix = section is IConfigurationSection s ? s.Path + ":" : "";

        foreach (IConfigurationSection child in section.GetChildren())
        {
            if (!s_knownKeys.Contains(child.Key))
            {
                errors.Add($"{prefix}{child.Key}: unknown key (known: {string.Join(", ", s_knownKeys.Order(StringComparer.Ordinal))})");
            }
        }

        ReadEnum<RevocationMode>(section, "Mode", prefix, errors, v => options.Mode = v);
        ReadEnum<RevocationFailurePolicy>(section, "FailurePolicy", prefix, errors, v => options.FailurePolicy = v);
        ReadEnum<OcspUnknownPolicy>(section, "OcspUnknown", prefix, errors, v => options.OcspUnknown = v);
        ReadEnum<StaleCrlPolicy>(section, "StaleCrlPolicy", prefix, errors, v => options.StaleCrlPolicy = v);
        ReadEnum<OcspRequestMethod>(section, "RequestMethod", prefix, errors, v => options.RequestMethod = v);
        ReadEnum<OcspHashAlgorithm>(section, "HashAlgorithm", prefix, errors, v => options.HashAlgorithm = v);
        Bool(section, "FetchDistributionPoints", prefix, errors, v => options.FetchDistributionPoints = v);
        Bool(section, "UseNonce", prefix, errors, v => options.UseNonce = v);
        Duration(section, "CrlTimeout", prefix, errors, positive: true, v => options.CrlTimeout = v);
        Duration(section, "RefreshMargin", prefix, errors, positive: false, v => options.RefreshMargin = v);
        Duration(section, "CrlMaxRefreshInterval", prefix, errors, positive: true, v => options.CrlMaxRefreshInterval = v);
        Duration(section, "CrlRetryInterval", prefix, errors, positive: true, v => options.CrlRetryInterval = v);
        Duration(section, "CrlFilePollInterval", prefix, errors, positive: true, v => options.CrlFilePollInterval = v);
        Duration(section, "StaleCrlGrace", prefix, errors, positive: false, v => options.StaleCrlGrace = v);
        Duration(section, "OcspTimeout", prefix, errors, positive: true, v => options.OcspTimeout = v);
        Duration(section, "OcspCacheTtl", prefix, errors, positive: true, v => options.OcspCacheTtl = v);
        Duration(section, "OcspMaxCacheAge", prefix, errors, positive: true, v => options.OcspMaxCacheAge = v);
        Duration(section, "OcspFailureBackoff", prefix, errors, positive: false, v => options.OcspFailureBackoff = v);
        Duration(section, "ClockSkew", prefix, errors, positive: false, v => options.ClockSkew = v);
        Duration(section, "MonitorInterval", prefix, errors, positive: true, v => options.MonitorInterval = v);
        Duration(section, "MaxStatusAge", prefix, errors, positive: true, v => options.MaxStatusAge = v);

        if (section["MaxCrlBytes"] is { } maxBytes)
        {
            if (int.TryParse(maxBytes, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) && value > 0)
            {
                options.MaxCrlBytes = value;
            }
            else
            {
                errors.Add($"{prefix}MaxCrlBytes: '{maxBytes}' is not a positive integer");
            }
        }

        IConfigurationSection files = section.GetSection("CrlFiles");
        if (files.Value is { } single)
        {
            options.CrlFiles.AddRange(single.Split([';', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        }

        foreach (IConfigurationSection file in files.GetChildren())
        {
            if (string.IsNullOrWhiteSpace(file.Value))
            {
                errors.Add($"{file.Path}: expected a file path");
            }
            else
            {
                options.CrlFiles.Add(file.Value);
            }
        }

        foreach (IConfigurationSection anchor in section.GetSection("PerAnchor").GetChildren())
        {
            AnchorRevocationOptions a = new();
            string anchorPrefix = anchor.Path + ":";
            foreach (IConfigurationSection child in anchor.GetChildren())
            {
                if (!s_anchorKeys.Contains(child.Key))
                {
                    errors.Add($"{child.Path}: unknown key (known: {string.Join(", ", s_anchorKeys.Order(StringComparer.Ordinal))})");
                }
            }

            ReadEnum<RevocationMode>(anchor, "Mode", anchorPrefix, errors, v => a.Mode = v);
            ReadEnum<RevocationFailurePolicy>(anchor, "FailurePolicy", anchorPrefix, errors, v => a.FailurePolicy = v);
            ReadEnum<OcspUnknownPolicy>(anchor, "OcspUnknown", anchorPrefix, errors, v => a.OcspUnknown = v);
            if (anchor["OcspResponder"] is { } responder)
            {
                if (Uri.TryCreate(responder, UriKind.Absolute, out Uri? uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps))
                {
                    a.OcspResponder = uri;
                }
                else
                {
                    errors.Add($"{anchorPrefix}OcspResponder: '{responder}' is not an absolute http(s) URL");
                }
            }

            options.PerAnchor[anchor.Key] = a;
        }

        if (errors.Count > 0)
        {
            throw new RevocationConfigurationException(errors);
        }

        return options;
    }

    /// <summary>Parses "hh:mm:ss[.fff]", "d.hh:mm:ss", a number with a unit (ms, s, m, h, d) or a number of seconds
    /// (the host's one duration format, OmniBroker.Host.Configuration.Durations).</summary>
    public static bool TryParseDuration(string text, out TimeSpan value)
    {
        text = text.Trim();
        ReadOnlySpan<(string Suffix, double Ms)> units = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)];
        foreach ((string suffix, double ms) in units)
        {
            if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
                && double.TryParse(text.AsSpan(0, text.Length - suffix.Length), NumberStyles.Float, CultureInfo.InvariantCulture, out double n)
                && n >= 0 && !double.IsInfinity(n))
            {
                value = TimeSpan.FromMilliseconds(n * ms);
                return true;
            }
        }

        if (!text.Contains(':', StringComparison.Ordinal))
        {
            // A plain number is seconds, as in every other duration key ("10" is not ten days).
            value = default;
            if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds) && seconds >= 0 && seconds <= TimeSpan.MaxValue.TotalSeconds)
            {
                value = TimeSpan.FromSeconds(seconds);
                return true;
            }
            return false;
        }
        return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value) && value >= TimeSpan.Zero;
    }

    /// <summary>Enum values in config are kebab-case ("ocsp-then-crl"); PascalCase is accepted too.</summary>
    public static bool TryParseEnum<T>(string text, out T value) where T : struct, Enum
    {
        string normalized = text.Replace("-", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal).Trim();
        foreach (T candidate in Enum.GetValues<T>())
        {
            if (string.Equals(candidate.ToString(), normalized, StringComparison.OrdinalIgnoreCase))
            {
                value = candidate;
                return true;
            }
        }

        value = default;
        return false;
    }

    public static string Kebab<T>(T value) where T : struct, Enum
    {
        string name = value.ToString();
        System.Text.StringBuilder sb = new(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0)
            {
                sb.Append('-');
            }

            sb.Append(char.ToLowerInvariant(name[i]));
        }

        return sb.ToString();
    }

    private static void ReadEnum<T>(IConfiguration section, string key, string prefix, List<string> errors, Action<T> set)
        where T : struct, Enum
    {
        if (section[key] is not { } text)
        {
            return;
        }

        if (TryParseEnum(text, out T value))
        {
            set(value);
        }
        else
        {
            errors.Add($"{prefix}{key}: '{text}' is not one of {string.Join(", ", Enum.GetValues<T>().Select(Kebab))}");
        }
    }

    private static void Bool(IConfiguration section, string key, string prefix, List<string> errors, Action<bool> set)
    {
        if (section[key] is not { } text)
        {
            return;
        }

        if (bool.TryParse(text, out bool value))
        {
            set(value);
        }
        else
        {
            errors.Add($"{prefix}{key}: '{text}' is not true or false");
        }
    }

    private static void Duration(IConfiguration section, string key, string prefix, List<string> errors, bool positive, Action<TimeSpan> set)
    {
        if (section[key] is not { } text)
        {
            return;
        }

        if (TryParseDuration(text, out TimeSpan value) && (!positive || value > TimeSpan.Zero))
        {
            set(value);
        }
        else
        {
            errors.Add($"{prefix}{key}: '{text}' is not a {(positive ? "positive " : "")}duration (e.g. 00:00:02 or 2s)");
        }
    }
}
