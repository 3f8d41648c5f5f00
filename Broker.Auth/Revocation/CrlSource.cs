using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Auth.Revocation;

internal enum CrlVerdictKind
{
    Good,
    Revoked,

    /// <summary>Only CRLs past nextUpdate + grace, and the stale policy is fail-closed.</summary>
    StaleRefuse,

    /// <summary>The certificate names distribution points whose CRL is not held yet: a fetch may answer.</summary>
    Missing,

    /// <summary>No CRL for this issuer and nowhere to fetch one (or fetching failed moments ago).</summary>
    NoSource,

    /// <summary>Not listed in a held CRL, but that CRL was downloaded longer ago than the caller's maximum status
    /// age (connected clients, <see cref="RevocationOptions.MaxStatusAge"/>): download it again, then decide.</summary>
    RefreshDue,
}

internal readonly record struct CrlVerdict(CrlVerdictKind Kind, string Detail, IReadOnlyList<Uri> FetchUrls)
{
    public static CrlVerdict Of(CrlVerdictKind kind, string detail) => new(kind, detail, []);
}

/// <summary>One place CRLs come from: a configured file or an http distribution point.</summary>
internal sealed class CrlSource
{
    public CrlSource(string name, Uri? url, X509Certificate2? issuer)
    {
        Name = name;
        Url = url;
        Issuer = issuer;
    }

    /// <summary>Absolute URL or full file path.</summary>
    public string Name { get; }

    public Uri? Url { get; }

    /// <summary>The CA whose certificates pointed here (distribution points only): new CRLs must verify with it.</summary>
    public X509Certificate2? Issuer { get; }

    /// <summary>The last good CRL: verified against the issuing CA (signature, cRLSign, issuer name by DER).</summary>
    public volatile ParsedCrl? Current;

    /// <summary>Files only: the file's newest content, well-formed but signed by a CA no certificate chain has shown
    /// yet, so it cannot be verified; it replaces <see cref="Current"/> only once verified by that CA.</summary>
    public volatile ParsedCrl? Pending;

    public DateTimeOffset NextRefresh { get; set; }

    /// <summary>When the last good CRL was (re)confirmed: loaded, or downloaded again unchanged.</summary>
    public DateTimeOffset? LastSuccess { get; set; }

    public DateTimeOffset? LastFailure { get; set; }

    public string? LastError { get; set; }

    /// <summary>When the last download finished, whatever its outcome (distribution points only).</summary>
    public DateTimeOffset? LastAttempt { get; set; }

    public (DateTime, long)? Stamp { get; set; }

    public bool MayFetch(DateTimeOffset now, TimeSpan retryInterval) =>
        LastAttempt is not { } last || now - last >= retryInterval || now < last;
}
