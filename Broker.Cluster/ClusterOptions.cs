using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;

namespace OmniBroker.Cluster;

/// <summary>
/// The Cluster section. Cluster mode is on when <c>Cluster:Nats:Urls</c> is set; then <c>Cluster:NodeId</c> is
/// required. Without the section nothing changes (a single node).
/// </summary>
public sealed partial class ClusterOptions
{
    public const string Section = "Cluster";
    public const string UrlsKey = "Cluster:Nats:Urls";
    public const string NodeIdKey = "Cluster:NodeId";
    public const string UserKey = "Cluster:Nats:User";
    public const string PasswordKey = "Cluster:Nats:Password";
    public const string TlsCaFileKey = "Cluster:Nats:TlsCaFile";
    public const string TlsCertFileKey = "Cluster:Nats:TlsCertFile";
    public const string TlsKeyFileKey = "Cluster:Nats:TlsKeyFile";
    public const string CredsFileKey = "Cluster:Nats:CredsFile";
    public const string NKeyFileKey = "Cluster:Nats:NKeyFile";
    public const string ReplicasKey = "Cluster:Replicas";
    public const string NodeTimeoutKey = "Cluster:NodeTimeout";
    public const string ForwardTimeoutKey = "Cluster:ForwardTimeout";

    private static readonly string[] s_knownKeys = ["NodeId", "Nats", "Replicas", "NodeTimeout", "ForwardTimeout"];
    private static readonly string[] s_knownNatsKeys = ["Urls", "User", "Password", "TlsCaFile", "TlsCertFile", "TlsKeyFile", "CredsFile", "NKeyFile"];

    /// <summary>NATS server URLs (nats:// or tls://), comma separated; any one is enough to join.</summary>
    public required string Urls { get; init; }

    /// <summary>This node's name in the cluster: letters, digits, '-' and '_', at most 32 (a NATS subject token).</summary>
    public required string NodeId { get; init; }

    public string? User { get; init; }

    public string? Password { get; init; }

    /// <summary>PEM CA bundle that signs the NATS servers' certificates (else the system's trust store).</summary>
    public string? TlsCaFile { get; init; }

    /// <summary>PEM client certificate and key presented to NATS servers that verify clients (both or neither).</summary>
    public string? TlsCertFile { get; init; }

    public string? TlsKeyFile { get; init; }

    /// <summary>NATS credentials file (.creds: user JWT and NKey seed), or a file holding an NKey seed alone.</summary>
    public string? CredsFile { get; init; }

    public string? NKeyFile { get; init; }

    /// <summary>Any TLS setting: the connection must then be TLS whatever the URL scheme.</summary>
    public bool UsesTls => TlsCaFile is not null || TlsCertFile is not null;

    /// <summary>Replicas of every stream and bucket (1 for a single nats-server, 3 for a three-server cluster).</summary>
    public int Replicas { get; init; } = 1;

    /// <summary>A node not heard of for this long is dead: its routes are removed and its clients' wills published.</summary>
    public TimeSpan NodeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a QoS 1/2 acknowledgement waits for the other nodes' inboxes before the publish is refused.</summary>
    public TimeSpan ForwardTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Heartbeats are written four times per node timeout.</summary>
    public TimeSpan HeartbeatInterval => NodeTimeout / 4;

    [GeneratedRegex("^[A-Za-z0-9_-]{1,32}$")]
    private static partial Regex NodeIdPattern();

    /// <summary>Binds the Cluster section; null when cluster mode is off. Every problem is added to
    /// <paramref name="errors"/> with its key.</summary>
    public static ClusterOptions? Load(IConfiguration configuration, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(errors);
        var section = configuration.GetSection(Section);
        foreach (var child in section.GetChildren())
        {
            if (!s_knownKeys.Contains(child.Key, StringComparer.OrdinalIgnoreCase))
            {
                errors.Add($"{Section}:{child.Key}: unknown key (known: {string.Join(", ", s_knownKeys)})");
            }
        }
        foreach (var child in section.GetSection("Nats").GetChildren())
        {
            if (!s_knownNatsKeys.Contains(child.Key, StringComparer.OrdinalIgnoreCase))
            {
                errors.Add($"{Section}:Nats:{child.Key}: unknown key (known: {string.Join(", ", s_knownNatsKeys)})");
            }
        }

        var urls = configuration[UrlsKey];
        var nodeId = configuration[NodeIdKey];
        if (string.IsNullOrWhiteSpace(urls))
        {
            if (!string.IsNullOrWhiteSpace(nodeId))
            {
                errors.Add($"{NodeIdKey}: set, but {UrlsKey} is not (cluster mode needs the NATS servers)");
            }
            return null;
        }

        var before = errors.Count;
        foreach (var url in urls.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("nats" or "tls") || uri.Host.Length == 0)
            {
                errors.Add($"{UrlsKey}: '{url}' is not a nats:// or tls:// URL with a host");
            }
        }
        if (string.IsNullOrWhiteSpace(nodeId))
        {
            errors.Add($"{NodeIdKey}: required when {UrlsKey} is set");
        }
        else if (!NodeIdPattern().IsMatch(nodeId))
        {
            errors.Add($"{NodeIdKey}: '{nodeId}' must be 1 to 32 letters, digits, '-' or '_'");
        }
        var caFile = ExistingFile(configuration, TlsCaFileKey, errors);
        var certFile = ExistingFile(configuration, TlsCertFileKey, errors);
        var keyFile = ExistingFile(configuration, TlsKeyFileKey, errors);
        var credsFile = ExistingFile(configuration, CredsFileKey, errors);
        var nkeyFile = ExistingFile(configuration, NKeyFileKey, errors);
        if (string.IsNullOrWhiteSpace(configuration[TlsCertFileKey]) != string.IsNullOrWhiteSpace(configuration[TlsKeyFileKey]))
        {
            errors.Add($"{(certFile is null ? TlsCertFileKey : TlsKeyFileKey)}: required with {(certFile is null ? TlsKeyFileKey : TlsCertFileKey)} (a client certificate needs its key)");
        }
        if (!string.IsNullOrWhiteSpace(configuration[CredsFileKey]) && !string.IsNullOrWhiteSpace(configuration[NKeyFileKey]))
        {
            errors.Add($"{NKeyFileKey}: set with {CredsFileKey}; use one (a .creds file holds its own NKey seed)");
        }
        var replicas = ParseInt(configuration, ReplicasKey, 1, 1, 5, errors);
        var nodeTimeout = ParseDuration(configuration, NodeTimeoutKey, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(1), errors);
        var forwardTimeout = ParseDuration(configuration, ForwardTimeoutKey, TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(100), errors);
        if (errors.Count > before)
        {
            return null;
        }
        return new ClusterOptions
        {
            Urls = urls.Trim(),
            NodeId = nodeId!,
            User = configuration[UserKey],
            Password = configuration[PasswordKey],
            TlsCaFile = caFile,
            TlsCertFile = certFile,
            TlsKeyFile = keyFile,
            CredsFile = credsFile,
            NKeyFile = nkeyFile,
            Replicas = replicas,
            NodeTimeout = nodeTimeout,
            ForwardTimeout = forwardTimeout,
        };
    }

    /// <summary>A file named by <paramref name="key"/> (null when unset); a missing file is one error naming the key.</summary>
    private static string? ExistingFile(IConfiguration configuration, string key, List<string> errors)
    {
        var path = configuration[key];
        if (string.IsNullOrWhiteSpace(path))
        {
            return null;
        }
        if (!File.Exists(path))
        {
            errors.Add($"{key}: file '{path}' does not exist");
            return null;
        }
        return Path.GetFullPath(path);
    }

    private static int ParseInt(IConfiguration configuration, string key, int fallback, int min, int max, List<string> errors)
    {
        var text = configuration[key];
        if (string.IsNullOrWhiteSpace(text))
        {
            return fallback;
        }
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            errors.Add($"{key}: '{text}' is not a whole number between {min} and {max}");
            return fallback;
        }
        return value;
    }

    /// <summary>Durations as seconds ("5", "2.5") or hh:mm:ss, between <paramref name="min"/> and one hour.</summary>
    private static TimeSpan ParseDuration(IConfiguration configuration, string key, TimeSpan fallback, TimeSpan min, List<string> errors)
    {
        var text = configuration[key];
        if (string.IsNullOrWhiteSpace(text))
        {
            return fallback;
        }
        TimeSpan value;
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && double.IsFinite(seconds))
        {
            value = TimeSpan.FromSeconds(seconds);
        }
        else if (!TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value))
        {
            errors.Add($"{key}: '{text}' is not a duration (seconds, or hh:mm:ss)");
            return fallback;
        }
        if (value < min || value > TimeSpan.FromHours(1))
        {
            errors.Add($"{key}: {text} must be at least {min.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s and at most 1 hour");
            return fallback;
        }
        return value;
    }
}
