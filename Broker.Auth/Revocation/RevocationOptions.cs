namespace OmniBroker.Auth.Revocation;

/// <summary>How revocation of a chain's certificates is checked (config values: ocsp, crl, ocsp-then-crl,
/// crl-then-ocsp, none). In the two ordered modes the network is tried in that order; whatever the cache
/// already knows from either source answers without touching the network.</summary>
public enum RevocationMode
{
    None,
    Ocsp,
    Crl,
    OcspThenCrl,
    CrlThenOcsp,
}

/// <summary>What to do when no source can say whether a certificate is revoked (config: hard-fail, soft-fail).</summary>
public enum RevocationFailurePolicy
{
    /// <summary>Status unknown refuses the client.</summary>
    HardFail,

    /// <summary>Status unknown admits the client; every such admission is logged and counted.</summary>
    SoftFail,
}

/// <summary>A CRL past its nextUpdate plus <see cref="RevocationOptions.StaleCrlGrace"/> (config: fail-closed, fail-open).</summary>
public enum StaleCrlPolicy
{
    /// <summary>The stale CRL no longer vouches for anyone: refuse unless another source answers (even under soft-fail).</summary>
    FailClosed,

    /// <summary>Keep using the stale CRL (certificates it lists stay revoked, others are admitted).</summary>
    FailOpen,
}

/// <summary>An OCSP "unknown" certStatus (RFC 6960 §2.2) (config: fallback, refuse).</summary>
public enum OcspUnknownPolicy
{
    /// <summary>Treat as no answer: try the mode's other source, else apply the failure policy.</summary>
    Fallback,

    /// <summary>Refuse the certificate, whatever the failure policy.</summary>
    Refuse,
}

public enum OcspRequestMethod
{
    Post,
    Get,
}

public enum OcspHashAlgorithm
{
    Sha256,
    Sha1,
}

/// <summary>Per-trust-anchor overrides (config <c>Revocation:PerAnchor:&lt;anchor subject or SHA-1/SHA-256 thumbprint&gt;</c>).</summary>
public sealed class AnchorRevocationOptions
{
    public RevocationMode? Mode { get; set; }

    public RevocationFailurePolicy? FailurePolicy { get; set; }

    public OcspUnknownPolicy? OcspUnknown { get; set; }

    /// <summary>Used instead of the AIA responder of client certificates under this anchor.</summary>
    public Uri? OcspResponder { get; set; }
}

/// <summary>Configuration section <c>Revocation</c>. See docs in <see cref="RevocationOptionsLoader"/> for the keys.</summary>
public sealed class RevocationOptions
{
    public RevocationMode Mode { get; set; } = RevocationMode.CrlThenOcsp;

    public RevocationFailurePolicy FailurePolicy { get; set; } = RevocationFailurePolicy.HardFail;

    public OcspUnknownPolicy OcspUnknown { get; set; } = OcspUnknownPolicy.Fallback;

    /// <summary>Overrides keyed by anchor subject DN (as X509Certificate2.Subject) or SHA-1/SHA-256 thumbprint (hex).</summary>
    public Dictionary<string, AnchorRevocationOptions> PerAnchor { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>CRL files (DER or PEM), reloaded when they change.</summary>
    public List<string> CrlFiles { get; } = [];

    /// <summary>Fetch CRLs from the certificates' http CRL distribution points.</summary>
    public bool FetchDistributionPoints { get; set; } = true;

    /// <summary>Longest wait for one CRL download (cold fetches during a handshake included).</summary>
    public TimeSpan CrlTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Refresh a CRL this long before its nextUpdate (and an OCSP answer of a connected device before it expires).</summary>
    public TimeSpan RefreshMargin { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Refetch a CRL at least this often even when its nextUpdate is far away.</summary>
    public TimeSpan CrlMaxRefreshInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Delay before retrying a CRL download that failed.</summary>
    public TimeSpan CrlRetryInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often CRL files are polled in addition to the file watcher (watchers miss events on some file systems).</summary>
    public TimeSpan CrlFilePollInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>A CRL past its nextUpdate is still used for this long.</summary>
    public TimeSpan StaleCrlGrace { get; set; } = TimeSpan.FromHours(1);

    public StaleCrlPolicy StaleCrlPolicy { get; set; } = StaleCrlPolicy.FailClosed;

    /// <summary>Longest wait for one OCSP answer.</summary>
    public TimeSpan OcspTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long an OCSP answer without nextUpdate is valid after its thisUpdate.</summary>
    public TimeSpan OcspCacheTtl { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Upper bound on how long any OCSP answer is cached, whatever its nextUpdate.</summary>
    public TimeSpan OcspMaxCacheAge { get; set; } = TimeSpan.FromHours(1);

    /// <summary>After a responder failed, answer "unknown" for this long without asking it again (so an outage
    /// does not make every handshake wait the timeout). Zero disables.</summary>
    public TimeSpan OcspFailureBackoff { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Allowed difference between our clock and the CA's/responder's for thisUpdate/nextUpdate.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Send an OCSP nonce (RFC 8954) and require the responder to echo it.</summary>
    public bool UseNonce { get; set; } = true;

    public OcspRequestMethod RequestMethod { get; set; } = OcspRequestMethod.Post;

    public OcspHashAlgorithm HashAlgorithm { get; set; } = OcspHashAlgorithm.Sha256;

    /// <summary>How often connected clients are re-checked (revocation and expiry).</summary>
    public TimeSpan MonitorInterval { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Oldest revocation status a connected client is kept on: when the monitor finds the OCSP answer or the
    /// distribution-point CRL behind a client's status older than this, it asks again (whatever the answer's
    /// nextUpdate), so a client revoked at its CA is dropped within about MaxStatusAge + MonitorInterval while the
    /// source answers.</summary>
    public TimeSpan MaxStatusAge { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Largest CRL accepted, in bytes.</summary>
    public int MaxCrlBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>Settings for the embedded development PKI: its CRL files are watched, CRL first then OCSP,
    /// hard-fail, connected clients re-checked every 10 s so `omnibroker pki revoke` drops a device quickly.</summary>
    public RevocationOptions UseDevelopmentPki(IEnumerable<string> crlFiles)
    {
        Mode = RevocationMode.CrlThenOcsp;
        FailurePolicy = RevocationFailurePolicy.HardFail;
        MonitorInterval = TimeSpan.FromSeconds(10);
        CrlFilePollInterval = TimeSpan.FromSeconds(5);
        foreach (string file in crlFiles)
        {
            if (!CrlFiles.Contains(file, StringComparer.Ordinal))
            {
                CrlFiles.Add(file);
            }
        }

        return this;
    }
}
