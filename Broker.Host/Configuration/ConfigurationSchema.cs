using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.Configuration;
using OmniBroker.Host.Admin;
using OmniBroker.Host.Metrics;
using OmniBroker.Host.WebSockets;
using OmniBroker.Mqtt.Engine;
using OmniBroker.Policy.Hosting;

namespace OmniBroker.Host.Configuration;

/// <summary>
/// The front door's knowledge of every configuration key: which sections and keys exist (anything else is reported as
/// unknown, so a typo in a limit is not silently ignored), and the types of the keys that bind onto library options
/// types (<see cref="MqttBrokerOptions"/>, <see cref="MetricsOptions"/>, <see cref="PolicyOptions"/>): each value is
/// checked against its property's type, and durations in <see cref="Durations"/>' format are rewritten to the
/// <c>hh:mm:ss</c> form every binder understands. Sections that check their own keys (Revocation, Logging, and
/// sections of optional features) are listed as open. A new section is added to <see cref="Sections"/>.
/// </summary>
internal static class ConfigurationSchema
{
    /// <summary>Sections whose keys are checked by their own loader (or free-form, as Logging).</summary>
    public static readonly IReadOnlySet<string> OpenSections = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "Logging", "Revocation", "Est", "Storage", "Cluster",
    };

    /// <summary>Top-level keys that are plain values, not sections.</summary>
    public static readonly IReadOnlySet<string> TopLevelValues = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        BrokerSettings.DataDirectoryKey,
    };

    /// <summary>Known keys of each checked section (first level under the section; arrays below a key are its own).</summary>
    public static readonly IReadOnlyDictionary<string, IReadOnlySet<string>> Sections = new Dictionary<string, IReadOnlySet<string>>(StringComparer.OrdinalIgnoreCase)
    {
        [BrokerSettings.MqttSection] = Keys(typeof(MqttBrokerOptions), "Address", "Port", "ProxyProtocol"),
        ["Tls"] = Keys(null, "ServerCertificate", "ServerKey", "TrustAnchors", "Intermediates", "AllowTlsResume", "OpenSslTuning", "Engine", "HandshakeTimeout",
            "Protocols", "MaxConcurrentHandshakes", "HandshakeQueueTimeout"),
        ["Http"] = Keys(null, "Url", "AllowedHosts"),
        [WebSocketSettings.Section] = Keys(null, "Enabled", "Address", "Port", "Path", "SubProtocol"),
        [Connections.ConnectionLimitSettings.Section] = Keys(null, "MaxConnections", "ReservedDescriptors"),
        [PolicyOptions.SectionName] = Keys(typeof(PolicyOptions)),
        [MetricsOptions.SectionName] = Keys(typeof(MetricsOptions)),
        ["Admin"] = Keys(null, AdminOptions.RequireClientCertificateKey.Split(':')[1]),
    };

    /// <summary>Options types bound from a section, whose values are checked against their property types.</summary>
    private static readonly (string Section, Type Options)[] s_typedSections =
    [
        (BrokerSettings.MqttSection, typeof(MqttBrokerOptions)),
        (PolicyOptions.SectionName, typeof(PolicyOptions)),
        (MetricsOptions.SectionName, typeof(MetricsOptions)),
    ];

    /// <summary>
    /// Reports unknown keys and badly typed option values into <paramref name="errors"/>; returns the normalized values
    /// (durations as hh:mm:ss) to add on top of the configuration.
    /// </summary>
    public static Dictionary<string, string?> Check(IConfiguration configuration, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(errors);
        CheckUnknownKeys(configuration, errors);

        var normalized = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var (section, type) in s_typedSections)
        {
            foreach (var property in BindableProperties(type))
            {
                var key = $"{section}:{property.Name}";
                if (configuration[key] is { } text && CheckValue(key, text, property.PropertyType, errors) is { } value)
                {
                    normalized[key] = value;
                }
            }
        }
        return normalized;
    }

    private static void CheckUnknownKeys(IConfiguration configuration, List<string> errors)
    {
        var reported = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (path, value) in configuration.AsEnumerable())
        {
            if (value is null)
            {
                continue;
            }
            var parts = path.Split(':');
            var top = parts[0];
            if (OpenSections.Contains(top) || (parts.Length == 1 && TopLevelValues.Contains(top)))
            {
                continue;
            }
            if (!Sections.TryGetValue(top, out var keys))
            {
                if (reported.Add(top))
                {
                    errors.Add($"{top}: unknown key (known sections: {string.Join(", ", Sections.Keys.Concat(OpenSections).Concat(TopLevelValues).Order(StringComparer.Ordinal))})");
                }
                continue;
            }
            if (parts.Length == 1)
            {
                continue;
            }
            if (!keys.Contains(parts[1]) && reported.Add($"{top}:{parts[1]}"))
            {
                errors.Add($"{top}:{parts[1]}: unknown key (known: {string.Join(", ", keys.Order(StringComparer.Ordinal))})");
            }
        }
    }

    /// <summary>Null when <paramref name="text"/> is not a <paramref name="type"/> (the error is added); else the value
    /// to bind (durations normalized).</summary>
    private static string? CheckValue(string key, string text, Type type, List<string> errors)
    {
        var trimmed = text.Trim();
        var target = Nullable.GetUnderlyingType(type) ?? type;
        if (trimmed.Length == 0 && target != typeof(string))
        {
            return null;
        }
        if (target == typeof(TimeSpan))
        {
            if (Durations.TryParse(trimmed, out var duration))
            {
                return duration.ToString("c", CultureInfo.InvariantCulture);
            }
            errors.Add($"{key}: '{text}' is not {Durations.Grammar}");
            return null;
        }
        var ok = target switch
        {
            _ when target == typeof(bool) => bool.TryParse(trimmed, out _),
            _ when target == typeof(int) => int.TryParse(trimmed, NumberStyles.Integer, CultureInfo.InvariantCulture, out _),
            _ when target == typeof(long) => long.TryParse(trimmed, NumberStyles.Integer, CultureInfo.InvariantCulture, out _),
            _ when target == typeof(ushort) => ushort.TryParse(trimmed, NumberStyles.Integer, CultureInfo.InvariantCulture, out _),
            _ when target == typeof(uint) => uint.TryParse(trimmed, NumberStyles.Integer, CultureInfo.InvariantCulture, out _),
            _ when target == typeof(double) => double.TryParse(trimmed, NumberStyles.Float, CultureInfo.InvariantCulture, out _),
            _ when target.IsEnum => Enum.TryParse(target, trimmed, ignoreCase: true, out _),
            _ => true,
        };
        if (!ok)
        {
            errors.Add($"{key}: '{text}' is not {Describe(target)}");
            return null;
        }
        return trimmed;
    }

    private static string Describe(Type type) =>
        type == typeof(bool) ? "true or false"
        : type == typeof(int) || type == typeof(long) ? "a whole number"
        : type == typeof(ushort) ? "a whole number between 0 and 65535"
        : type == typeof(uint) ? "a whole number between 0 and 4294967295"
        : type == typeof(double) ? "a number"
        : type.IsEnum ? $"one of {string.Join(", ", Enum.GetNames(type))}"
        : type.Name;

    private static IEnumerable<PropertyInfo> BindableProperties(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite && p.SetMethod!.IsPublic);

    private static HashSet<string> Keys(Type? options, params string[] extra)
    {
        var keys = new HashSet<string>(extra, StringComparer.OrdinalIgnoreCase);
        if (options is not null)
        {
            keys.UnionWith(BindableProperties(options).Select(p => p.Name));
        }
        return keys;
    }
}
