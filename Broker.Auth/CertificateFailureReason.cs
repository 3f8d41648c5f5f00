namespace OmniBroker.Auth;

/// <summary>Why a client certificate or handshake was refused. <see cref="CertificateFailureReasons.Label"/>
/// gives the stable snake_case label used in logs and metrics (bounded label set).</summary>
public enum CertificateFailureReason
{
    None = 0,
    NoCertificate,
    Untrusted,
    Expired,
    NotYetValid,
    Revoked,
    RevocationUnknown,
    BadKeyUsage,
    ConnectDenied,
    TlsError,

    /// <summary>The TLS handshake never finished: no bytes, a stalled ClientHello (scanners, slowloris), the
    /// handshake timeout, or the wait for a handshake slot. Not a certificate problem, so not an alert.</summary>
    Timeout,
}

public static class CertificateFailureReasons
{
    public static string Label(this CertificateFailureReason reason) => reason switch
    {
        CertificateFailureReason.None => "none",
        CertificateFailureReason.NoCertificate => "no_cert",
        CertificateFailureReason.Untrusted => "untrusted",
        CertificateFailureReason.Expired => "expired",
        CertificateFailureReason.NotYetValid => "not_yet_valid",
        CertificateFailureReason.Revoked => "revoked",
        CertificateFailureReason.RevocationUnknown => "revocation_unknown",
        CertificateFailureReason.BadKeyUsage => "bad_key_usage",
        CertificateFailureReason.ConnectDenied => "connect_denied",
        CertificateFailureReason.TlsError => "tls_error",
        CertificateFailureReason.Timeout => "timeout",
        _ => "tls_error",
    };
}
