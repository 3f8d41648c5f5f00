using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Enrollment.Inventory;

/// <summary>Status of a certificate in the inventory.</summary>
public static class CertificateStatus
{
    public const string Active = "active";
    public const string Superseded = "superseded";
    public const string Revoked = "revoked";
}

/// <summary>One certificate the broker issued or saw at CONNECT.</summary>
public sealed record CertificateRecord(
    string Serial,
    string Subject,
    string CommonName,
    string Issuer,
    DateTimeOffset NotBefore,
    DateTimeOffset NotAfter,
    string Status,
    string? IssuedVia,
    DateTimeOffset? IssuedAt,
    DateTimeOffset? FirstSeen,
    DateTimeOffset? LastSeen,
    IReadOnlyList<string> ClientIds,
    string? SupersededBy,
    DateTimeOffset? SupersededAt);

/// <summary>Filters of <see cref="ICertificateInventory.Query"/>; null means "any".</summary>
public sealed record CertificateQuery(
    int? ExpiringWithinDays = null,
    string? Status = null,
    string? CommonName = null,
    string? Organization = null,
    string? OrganizationalUnit = null,
    int Limit = 1000);

/// <summary>
/// The certificate inventory. Kept behind this interface so it can move into the broker's state store
/// (issue 11) without touching its users; today <see cref="SqliteCertificateStore"/> keeps it in
/// &lt;DataDirectory&gt;/certificates.db.
/// </summary>
public interface ICertificateInventory
{
    /// <summary>Records an issued certificate; when it replaces <paramref name="supersedes"/>, that one becomes superseded.</summary>
    void RecordIssued(X509Certificate2 certificate, string via, X509Certificate2? supersedes);

    /// <summary>Records that <paramref name="certificate"/> connected as <paramref name="clientId"/> (written in batches).</summary>
    void RecordSeen(X509Certificate2 certificate, string clientId);

    /// <summary>Status of a serial (upper-case hex) from memory: null when unknown or active.</summary>
    (string Status, DateTimeOffset? Since, string? SupersededBy)? FindInactive(string serial);

    void MarkRevoked(string serial);

    CertificateRecord? Find(string serial);

    IReadOnlyList<CertificateRecord> Query(CertificateQuery query);

    /// <summary>Counts by status, and of active certificates expiring within <paramref name="days"/>.</summary>
    (IReadOnlyDictionary<string, long> ByStatus, long Expiring) Summary(int days);
}

/// <summary>What a one-time enrollment token binds: the subject the certificate will carry.</summary>
public sealed record EnrollmentTokenSubject(string CommonName, string Organization, string OrganizationalUnit, string DeviceType, string? Country, string? Locality);

/// <summary>One-time enrollment tokens (RFC 7030 §3.2.3 HTTP Basic): stored as SHA-256 of the secret, used once.</summary>
public interface IEnrollmentTokenStore
{
    /// <summary>Creates a token; returns "id:secret", the only time the secret exists in clear.</summary>
    string Create(EnrollmentTokenSubject subject, DateTimeOffset expires);

    /// <summary>Consumes the token atomically. On failure <paramref name="reason"/> says why (unknown, used, expired).</summary>
    bool TryConsume(string id, string secret, out EnrollmentTokenSubject? subject, out string reason);

    /// <summary>Checks a token without consuming it (so a bad CSR does not burn it).</summary>
    bool TryPeek(string id, string secret, out EnrollmentTokenSubject? subject, out string reason);
}
