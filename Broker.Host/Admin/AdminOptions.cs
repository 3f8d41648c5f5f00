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
