using System.Globalization;
using System.Net;
using Microsoft.Extensions.Configuration;
using OmniBroker.Host.WebSockets;
using OmniBroker.Mqtt.Engine;

namespace OmniBroker.Host.Configuration;

/// <summary>
/// The host's validated configuration. <see cref="Load"/> checks every key at once and throws one
/// <see cref="BrokerConfigurationException"/> naming each bad key ("Mqtt:Port: 70000 is not a valid port").
/// Sections: Mqtt (listener + <see cref="MqttBrokerOptions"/>), Tls, Http, DataDirectory, Policy. See docs/configuration.md.
/// </summary>
public sealed class BrokerSettings
{
    public const string MqttSection = "Mqtt";
    public const string MqttAddressKey = "Mqtt:Address";
    public const string MqttPortKey = "Mqtt:Port";
    public const string TlsServerCertificateKey = "Tls:ServerCertificate";
    public const string TlsServerKeyKey = "Tls:ServerKey";
    public const string TlsTrustAnchorsKey = "Tls:TrustAnchors";
    public const string TlsIntermediatesKey = "Tls:Intermediates";
    public const string TlsAllowTlsResumeKey = "Tls:AllowTlsResume";
    public const string TlsOpenSslTuningKey = "Tls:OpenSslTuning";
    public const string TlsEngineKey = "Tls:Engine";
    public const string TlsHandshakeTimeoutKey = "Tls:HandshakeTimeout";
    public const string TlsProtocolsKey = "Tls:Protocols";
    public const string TlsMaxConcurrentHandshakesKey = "Tls:MaxConcurrentHandshakes";
    public const string TlsHandshakeQueueTimeoutKey = "Tls:HandshakeQueueTimeout";
    public const string HttpUrlKey = "Http:Url";
    public const string DataDirectoryKey = "DataDirectory";
    public const string PolicyDirectoryKey = "Policy:Directory";
    public const string MqttProxyProtocolKey = "Mqtt:ProxyProtocol";

    public const int DefaultMqttPort = 8883;
    public const string DefaultHttpUrl = "http://127.0.0.1:9090";

    public required IPAddress MqttAddress { get; init; }

    /// <summary>0 picks a free port (tests); the bound port is in <see cref="BrokerEndpoints"/> after start.</summary>
    public required int MqttPort { get; init; }

    /// <summary>Engine options bound from the Mqtt section.</summary>
    public required MqttBrokerOptions Mqtt { get; init; }

    /// <summary>Server certificate PEM (may contain its intermediates after it); null: use the development PKI.</summary>
    public string? ServerCertificatePath { get; init; }

    public string? ServerKeyPath { get; init; }

    public IReadOnlyList<string> TrustAnchorPaths { get; init; } = [];

    public IReadOnlyList<string> IntermediatePaths { get; init; } = [];

    public bool AllowTlsResume { get; init; }

    /// <summary>Tls:OpenSslTuning (default true): release idle TLS buffers, one shared SSL_CTX, no session tickets.</summary>
    public bool OpenSslTuning { get; init; } = true;

    /// <summary>Tls:Engine (default Direct): the MQTT over TLS listener drives SslStream itself; Kestrel = Kestrel's HTTPS middleware.</summary>
    public OmniBroker.Auth.TlsEngine TlsEngine { get; init; } = OmniBroker.Auth.TlsEngine.Direct;

    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Tls:Protocols: the TLS versions of the MQTT, WebSocket and HTTPS listeners (Tls12, Tls13).</summary>
    public System.Security.Authentication.SslProtocols TlsProtocols { get; init; } =
        System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13;

    /// <summary>Tls:MaxConcurrentHandshakes: handshakes in progress at once; more wait in a queue.</summary>
    public int MaxConcurrentHandshakes { get; init; } = 64;

    /// <summary>Tls:HandshakeQueueTimeout: the longest wait for a handshake slot.</summary>
    public TimeSpan HandshakeQueueTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Mqtt:ProxyProtocol: every connection to the MQTT over TLS listener starts with a PROXY protocol v2
    /// header (behind a TLS-passthrough load balancer). Off by default.</summary>
    public bool ProxyProtocol { get; init; }

    /// <summary>Section Limits: the device listeners' connection cap, below the descriptor limit.</summary>
    public Connections.ConnectionLimitSettings ConnectionLimits { get; init; } = new(0, Connections.ConnectionLimitSettings.DefaultReservedDescriptors);

    /// <summary>The MQTT over secure WebSockets listener (section WebSockets).</summary>
    public WebSocketSettings WebSockets { get; init; } = new(false, IPAddress.Loopback, 0, "/mqtt", "mqtt");

    /// <summary>HTTP listener (health, metrics, admin API, CRL/OCSP); null when Http:Url is empty.</summary>
    public HttpListenerSettings? Http { get; init; }

    /// <summary>The EST server, issuing CA and certificate inventory (section Est).</summary>
    public OmniBroker.Enrollment.EstOptions Est { get; init; } = new();

    /// <summary>Cluster mode (section Cluster; on when Cluster:Nats:Urls is set), or null for a single node.</summary>
    public OmniBroker.Cluster.ClusterOptions? Cluster { get; init; }

    /// <summary>Absolute path of the data directory.</summary>
    public required string DataDirectory { get; init; }

    /// <summary>Absolute path of the policy directory (start-up fails when none can be found).</summary>
    public string? PolicyDirectory { get; init; }

    public bool UsesDevelopmentPki => ServerCertificatePath is null;

    public string DevelopmentPkiDirectory => Path.Combine(DataDirectory, "pki");

    /// <summary>Values the front door rewrote into the form every binder reads (durations as hh:mm:ss); the host
    /// adds them on top of its configuration so that library options bound later see them.</summary>
    public IReadOnlyDictionary<string, string?> NormalizedValues { get; init; } = new Dictionary<string, string?>();

    /// <exception cref="BrokerConfigurationException">with every problem found.</exception>
    public static BrokerSettings Load(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var errors = new List<string>();
        // The front door: unknown keys and badly typed option values, all reported with their keys.
        var normalized = ConfigurationSchema.Check(configuration, errors);
        var schemaErrors = errors.Count;
        if (normalized.Count > 0)
        {
            configuration = new ConfigurationBuilder().AddConfiguration(configuration).AddInMemoryCollection(normalized).Build();
        }

        var address = IPAddress.Any;
        var addressText = configuration[MqttAddressKey];
        if (!string.IsNullOrWhiteSpace(addressText) && !IPAddress.TryParse(addressText.Trim(), out address!))
        {
            errors.Add($"{MqttAddressKey}: '{addressText}' is not an IP address");
            address = IPAddress.Any;
        }
        var port = ReadPort(configuration, MqttPortKey, DefaultMqttPort, errors);

        // The Mqtt section is bound here, once; the engine gets this instance.
        var mqtt = new MqttBrokerOptions();
        try
        {
            configuration.GetSection(MqttSection).Bind(mqtt);
            foreach (var error in mqtt.GetValidationErrors())
            {
                // "MaximumPacketSize must be ..." names its property: prefix the section to name the key.
                errors.Add($"{MqttSection}:{error}");
            }
        }
        catch (InvalidOperationException ex)
        {
            // A value the binder cannot convert was already reported, with its key, by the schema check.
            if (schemaErrors == 0)
            {
                errors.Add($"{MqttSection}: {ex.Message}");
            }
        }

        var serverCertificate = ReadOptionalFile(configuration, TlsServerCertificateKey, errors);
        var serverKey = ReadOptionalFile(configuration, TlsServerKeyKey, errors);
        var anchors = ReadFileList(configuration, TlsTrustAnchorsKey, errors);
        var intermediates = ReadFileList(configuration, TlsIntermediatesKey, errors);
        var serverCertificateSet = !string.IsNullOrWhiteSpace(configuration[TlsServerCertificateKey]);
        var serverKeySet = !string.IsNullOrWhiteSpace(configuration[TlsServerKeyKey]);
        if (serverCertificateSet != serverKeySet)
        {
            errors.Add(serverCertificateSet
                ? $"{TlsServerKeyKey}: required when {TlsServerCertificateKey} is set"
                : $"{TlsServerCertificateKey}: required when {TlsServerKeyKey} is set");
        }
        var anchorsSet = configuration.GetSection(TlsTrustAnchorsKey).GetChildren().Any() || !string.IsNullOrWhiteSpace(configuration[TlsTrustAnchorsKey]);
        if (serverCertificateSet && !anchorsSet)
        {
            errors.Add($"{TlsTrustAnchorsKey}: at least one trust anchor (root CA PEM file) is required when {TlsServerCertificateKey} is set");
        }
        if (!serverCertificateSet && (anchorsSet || configuration.GetSection(TlsIntermediatesKey).GetChildren().Any()))
        {
            errors.Add($"{TlsServerCertificateKey}: required when {TlsTrustAnchorsKey} or {TlsIntermediatesKey} is set (without any of them the development PKI is used)");
        }

        var allowResume = ReadBool(configuration, TlsAllowTlsResumeKey, false, errors);
        var openSslTuning = ReadBool(configuration, TlsOpenSslTuningKey, true, errors);
        var tlsEngine = ReadTlsEngine(configuration, errors);
        var handshakeTimeout = ReadTimeSpan(configuration, TlsHandshakeTimeoutKey, TimeSpan.FromSeconds(10), errors);
        var tlsProtocols = ReadTlsProtocols(configuration, errors);
        var maxHandshakes = ReadInt(configuration, TlsMaxConcurrentHandshakesKey, 64, 1, 100_000, errors);
        var handshakeQueueTimeout = ReadTimeSpan(configuration, TlsHandshakeQueueTimeoutKey, TimeSpan.FromSeconds(30), errors);

        HttpListenerSettings? http = null;
        var httpUrl = configuration[HttpUrlKey] ?? DefaultHttpUrl;
        if (!string.IsNullOrWhiteSpace(httpUrl))
        {
            http = HttpListenerSettings.Parse(httpUrl.Trim(), HttpUrlKey, errors);
        }

        var proxyProtocol = ReadBool(configuration, MqttProxyProtocolKey, false, errors);
        var webSockets = WebSocketSettings.Load(configuration, address, port, http?.Port, errors);
        var connectionLimits = Connections.ConnectionLimitSettings.Load(configuration, errors);

        var dataDirectory = Path.GetFullPath(string.IsNullOrWhiteSpace(configuration[DataDirectoryKey]) ? "data" : configuration[DataDirectoryKey]!.Trim());
        if (File.Exists(dataDirectory))
        {
            errors.Add($"{DataDirectoryKey}: {dataDirectory} is a file, not a directory");
        }

        string? policyDirectory = null;
        var policyText = configuration[PolicyDirectoryKey];
        if (!string.IsNullOrWhiteSpace(policyText))
        {
            policyDirectory = Path.GetFullPath(policyText.Trim());
            if (!Directory.Exists(policyDirectory))
            {
                errors.Add($"{PolicyDirectoryKey}: directory {policyDirectory} not found");
            }
        }
        else
        {
            // ./policies in the working directory, else the copy shipped next to the executable.
            var local = Path.GetFullPath("policies");
            var shipped = Path.Combine(AppContext.BaseDirectory, "policies");
            policyDirectory = Directory.Exists(local) ? local : Directory.Exists(shipped) ? shipped : null;
            if (policyDirectory is null)
            {
                // Without a policy every certificate would get every right: refuse to start instead.
                errors.Add($"{PolicyDirectoryKey}: not set, and neither {local} nor {shipped} exists; point it at a directory of policy files");
            }
        }

        var est = OmniBroker.Enrollment.EstOptions.Load(configuration, errors);
        var cluster = OmniBroker.Cluster.ClusterOptions.Load(configuration, errors);

        if (errors.Count > 0)
        {
            throw new BrokerConfigurationException(errors);
        }

        return new BrokerSettings
        {
            MqttAddress = address,
            MqttPort = port,
            Mqtt = mqtt,
            ServerCertificatePath = serverCertificate,
            ServerKeyPath = serverKey,
            TrustAnchorPaths = anchors,
            IntermediatePaths = intermediates,
            AllowTlsResume = allowResume,
            OpenSslTuning = openSslTuning,
            TlsEngine = tlsEngine,
            HandshakeTimeout = handshakeTimeout,
            TlsProtocols = tlsProtocols,
            MaxConcurrentHandshakes = maxHandshakes,
            HandshakeQueueTimeout = handshakeQueueTimeout,
            Http = http,
            ProxyProtocol = proxyProtocol,
            WebSockets = webSockets,
            ConnectionLimits = connectionLimits,
            DataDirectory = dataDirectory,
            PolicyDirectory = policyDirectory,
            NormalizedValues = normalized,
            Est = est,
            Cluster = cluster,
        };
    }

    /// <summary>The data directory alone (for commands that need nothing else).</summary>
    public static string ReadDataDirectory(IConfiguration configuration) =>
        Path.GetFullPath(string.IsNullOrWhiteSpace(configuration[DataDirectoryKey]) ? "data" : configuration[DataDirectoryKey]!.Trim());

    internal static int ReadPort(IConfiguration configuration, string key, int defaultValue, List<string> errors)
    {
        var text = configuration[key];
        if (string.IsNullOrWhiteSpace(text))
        {
            return defaultValue;
        }
        if (!int.TryParse(text.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var port) || port is < 0 or > 65535)
        {
            errors.Add($"{key}: {text} is not a valid port (0-65535)");
            return defaultValue;
        }
        return port;
    }

    /// <summary>"Tls13", "Tls12,Tls13" (also ';' or '|', any case, "1.2"/"1.3" accepted).</summary>
    private static System.Security.Authentication.SslProtocols ReadTlsProtocols(IConfiguration configuration, List<string> errors)
    {
        var text = configuration[TlsProtocolsKey];
        var result = System.Security.Authentication.SslProtocols.None;
        if (string.IsNullOrWhiteSpace(text))
        {
            return System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13;
        }
        foreach (var part in text.Split([',', ';', '|'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            switch (part.ToUpperInvariant())
            {
                case "TLS12" or "TLS1.2" or "1.2":
                    result |= System.Security.Authentication.SslProtocols.Tls12;
                    break;
                case "TLS13" or "TLS1.3" or "1.3":
                    result |= System.Security.Authentication.SslProtocols.Tls13;
                    break;
                default:
                    errors.Add($"{TlsProtocolsKey}: '{part}' is not a supported TLS version (Tls12, Tls13)");
                    break;
            }
        }
        return result == System.Security.Authentication.SslProtocols.None
            ? System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13
            : result;
    }

    internal static int ReadInt(IConfiguration configuration, string key, int defaultValue, int min, int max, List<string> errors)
    {
        var text = configuration[key];
        if (string.IsNullOrWhiteSpace(text))
        {
            return defaultValue;
        }
        if (!int.TryParse(text.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            errors.Add($"{key}: '{text}' is not a whole number between {min} and {max}");
            return defaultValue;
        }
        return value;
    }

    private static OmniBroker.Auth.TlsEngine ReadTlsEngine(IConfiguration configuration, List<string> errors)
    {
        var text = configuration[TlsEngineKey];
        if (string.IsNullOrWhiteSpace(text))
        {
            return OmniBroker.Auth.TlsEngine.Direct;
        }
        if (string.Equals(text.Trim(), "Direct", StringComparison.OrdinalIgnoreCase))
        {
            return OmniBroker.Auth.TlsEngine.Direct;
        }
        if (string.Equals(text.Trim(), "Kestrel", StringComparison.OrdinalIgnoreCase))
        {
            return OmniBroker.Auth.TlsEngine.Kestrel;
        }
        errors.Add($"{TlsEngineKey}: '{text}' is not Direct or Kestrel");
        return OmniBroker.Auth.TlsEngine.Direct;
    }

    private static bool ReadBool(IConfiguration configuration, string key, bool defaultValue, List<string> errors)
    {
        var text = configuration[key];
        if (string.IsNullOrWhiteSpace(text))
        {
            return defaultValue;
        }
        if (!bool.TryParse(text.Trim(), out var value))
        {
            errors.Add($"{key}: '{text}' is not true or false");
            return defaultValue;
        }
        return value;
    }

    /// <summary>A duration in <see cref="Durations"/>' format ("10s", "00:00:10", or "10" seconds), at most 1 hour.</summary>
    private static TimeSpan ReadTimeSpan(IConfiguration configuration, string key, TimeSpan defaultValue, List<string> errors)
    {
        var text = configuration[key];
        if (string.IsNullOrWhiteSpace(text))
        {
            return defaultValue;
        }
        text = text.Trim();
        if (!Durations.TryParse(text, out var value))
        {
            errors.Add($"{key}: '{text}' is not {Durations.Grammar}");
            return defaultValue;
        }
        if (value <= TimeSpan.Zero || value > TimeSpan.FromHours(1))
        {
            errors.Add($"{key}: {text} must be more than 0 and at most 1 hour");
            return defaultValue;
        }
        return value;
    }

    private static string? ReadOptionalFile(IConfiguration configuration, string key, List<string> errors)
    {
        var text = configuration[key];
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }
        var path = Path.GetFullPath(text.Trim());
        if (!File.Exists(path))
        {
            errors.Add($"{key}: file {path} not found");
        }
        return path;
    }

    /// <summary>An array (Tls:TrustAnchors:0, ...) or a single value (Tls:TrustAnchors=/x.pem, also ';'-separated).</summary>
    private static List<string> ReadFileList(IConfiguration configuration, string key, List<string> errors)
    {
        var entries = new List<(string Key, string Value)>();
        var single = configuration[key];
        if (!string.IsNullOrWhiteSpace(single))
        {
            var parts = single.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            for (var i = 0; i < parts.Length; i++)
            {
                entries.Add((parts.Length == 1 ? key : $"{key}[{i}]", parts[i]));
            }
        }
        foreach (var child in configuration.GetSection(key).GetChildren().OrderBy(c => int.TryParse(c.Key, out var n) ? n : int.MaxValue))
        {
            if (!string.IsNullOrWhiteSpace(child.Value))
            {
                entries.Add(($"{key}[{child.Key}]", child.Value.Trim()));
            }
        }

        var paths = new List<string>();
        foreach (var (entryKey, value) in entries)
        {
            var path = Path.GetFullPath(value);
            if (!File.Exists(path))
            {
                errors.Add($"{entryKey}: file {path} not found");
                continue;
            }
            paths.Add(path);
        }
        return paths;
    }
}

/// <summary>The HTTP listener from Http:Url: http or https, an IP address, "localhost" or a wildcard (*, +, 0.0.0.0, [::]).</summary>
public sealed record HttpListenerSettings(string Url, bool Https, IPAddress? Address, bool Localhost, int Port)
{
    internal static HttpListenerSettings? Parse(string url, string key, List<string> errors)
    {
        var schemeEnd = url.IndexOf("://", StringComparison.Ordinal);
        var scheme = schemeEnd < 0 ? "" : url[..schemeEnd].ToLowerInvariant();
        if (scheme is not ("http" or "https"))
        {
            errors.Add($"{key}: '{url}' must start with http:// or https://");
            return null;
        }
        var authority = url[(schemeEnd + 3)..];
        var slash = authority.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            if (authority[slash..].Trim('/').Length > 0)
            {
                errors.Add($"{key}: '{url}' must not have a path");
                return null;
            }
            authority = authority[..slash];
        }

        string host;
        string? portText;
        if (authority.StartsWith('['))
        {
            var close = authority.IndexOf(']', StringComparison.Ordinal);
            host = close < 0 ? authority : authority[1..close];
            portText = close >= 0 && close + 1 < authority.Length && authority[close + 1] == ':' ? authority[(close + 2)..] : null;
        }
        else
        {
            var colon = authority.LastIndexOf(':');
            host = colon >= 0 ? authority[..colon] : authority;
            portText = colon >= 0 ? authority[(colon + 1)..] : null;
        }

        var port = scheme == "https" ? 443 : 80;
        if (portText is not null && (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port > 65535))
        {
            errors.Add($"{key}: '{portText}' in '{url}' is not a valid port (0-65535)");
            return null;
        }

        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return new HttpListenerSettings(url, scheme == "https", null, true, port);
        }
        if (host is "*" or "+")
        {
            return new HttpListenerSettings(url, scheme == "https", IPAddress.IPv6Any, false, port);
        }
        if (!IPAddress.TryParse(host, out var address))
        {
            errors.Add($"{key}: host '{host}' in '{url}' must be an IP address, localhost or *");
            return null;
        }
        return new HttpListenerSettings(url, scheme == "https", address, false, port);
    }

    /// <summary>Base URL for links to this listener (CRL/OCSP URLs in the development PKI).</summary>
    public Uri PublicBaseUrl
    {
        get
        {
            var host = Localhost ? "localhost"
                : Address is null || Address.Equals(IPAddress.Any) || Address.Equals(IPAddress.IPv6Any) ? "127.0.0.1"
                : Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{Address}]"
                : Address.ToString();
            return new Uri($"{(Https ? "https" : "http")}://{host}:{Port}/");
        }
    }
}
