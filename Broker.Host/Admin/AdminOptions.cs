using System.Net;

namespace OmniBroker.Host.Admin;

/// <summary>How the admin API on the HTTP listener is protected; derived from the listener's bind address.</summary>
public sealed class AdminOptions
{
    /// <summary>Configuration key of the HTTP listener (metrics, health, admin API).</summary>
    public const string HttpUrlKey = "Http:Url";

    public const string DefaultHttpUrl = "http://127.0.0.1:9090";

    /// <summary>Configuration key: true requires HTTPS + client certificate + admin grant even on a loopback bind
    /// (hosts where other local users must not administer the broker). Default false.</summary>
    public const string RequireClientCertificateKey = "Admin:RequireClientCertificate";

    /// <summary>Configuration key: extra Host header names (without port) the loopback admin API answers, besides
    /// localhost, 127.0.0.1 and [::1]; a list (Http:AllowedHosts:0=...) or one ';'-separated value.</summary>
    public const string AllowedHostsKey = "Http:AllowedHosts";

    /// <summary>Host names (without port) accepted by a loopback-only admin API besides the loopback ones.</summary>
    public IReadOnlyCollection<string> AllowedHosts { get; set; } = [];

    /// <summary>
    /// Whether a loopback-only admin API answers a request with this Host header (name only, no port). A page in a
    /// browser on this machine can reach 127.0.0.1 through a name it controls (DNS rebinding) but cannot choose the
    /// Host header the browser sends: only loopback names and configured ones are answered. No Host (HTTP/1.0 tools,
    /// in-process callers) is not a browser and is accepted.
    /// </summary>
    public bool IsAllowedHost(string? host)
    {
        if (string.IsNullOrEmpty(host) || string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }
        var literal = host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host;
        if (IPAddress.TryParse(literal, out var ip) && IPAddress.IsLoopback(ip))
        {
            return true;
        }
        foreach (var allowed in AllowedHosts)
        {
            if (string.Equals(allowed, host, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Http:AllowedHosts as a list (array children and/or one ';'-separated value).</summary>
    public static IReadOnlyCollection<string> ReadAllowedHosts(Microsoft.Extensions.Configuration.IConfiguration? configuration)
    {
        if (configuration is null)
        {
            return [];
        }
        var hosts = new List<string>();
        if (configuration[AllowedHostsKey] is { } single)
        {
            hosts.AddRange(single.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        }
        foreach (var child in configuration.GetSection(AllowedHostsKey).GetChildren())
        {
            if (!string.IsNullOrWhiteSpace(child.Value))
            {
                hosts.Add(child.Value.Trim());
            }
        }
        return hosts;
    }

    /// <summary>True when every address the HTTP listener binds is a loopback address: the admin API is then open
    /// to local callers. Otherwise it requires HTTPS, a client certificate and an <c>admin</c> grant.</summary>
    public bool LoopbackOnly { get; set; } = true;

    /// <summary>Default <c>days</c> of GET /api/certificates/expiring.</summary>
    public int DefaultExpiringDays { get; set; } = 30;

    /// <summary>True when every URL in <paramref name="urls"/> (Kestrel syntax, ';'-separated) names a loopback
    /// host: 127.0.0.0/8, ::1 or "localhost". Wildcards (*, +, 0.0.0.0, [::]) and other names are not loopback.</summary>
    public static bool IsLoopbackBinding(string? urls)
    {
        if (string.IsNullOrWhiteSpace(urls))
        {
            urls = DefaultHttpUrl;
        }

        foreach (var raw in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var host = HostOf(raw);
            if (host is null)
            {
                return false;
            }

            if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            if (!IPAddress.TryParse(host.Trim('[', ']'), out var ip) || !IPAddress.IsLoopback(ip))
            {
                return false;
            }
        }

        return true;
    }

    private static string? HostOf(string url)
    {
        // Kestrel accepts "http://*:9090" and "http://+:9090", which Uri rejects or misreads; take the authority by hand.
        int scheme = url.IndexOf("://", StringComparison.Ordinal);
        if (scheme < 0)
        {
            return null;
        }

        var authority = url[(scheme + 3)..];
        int slash = authority.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            authority = authority[..slash];
        }

        if (authority.StartsWith('['))
        {
            int close = authority.IndexOf(']', StringComparison.Ordinal);
            return close < 0 ? null : authority[..(close + 1)];
        }

        int colon = authority.LastIndexOf(':');
        return colon >= 0 ? authority[..colon] : authority;
    }
}
