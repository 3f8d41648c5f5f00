using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Auth;

/// <summary>Outcome of chain validation (trust, validity period, key usage); revocation is checked separately.</summary>
public sealed class CertificateValidationResult
{
    private CertificateValidationResult(CertificateFailureReason reason, string detail, IReadOnlyList<X509Certificate2> chain, DateTimeOffset validUntil)
    {
        Reason = reason;
        Detail = detail;
        Chain = chain;
        ValidUntil = validUntil;
    }

    public bool IsValid => Reason == CertificateFailureReason.None;

    public CertificateFailureReason Reason { get; }

    /// <summary>Human-readable explanation, for logs.</summary>
    public string Detail { get; }

    /// <summary>The validated chain, leaf first, anchor last (empty on failure). The certificates are shared
    /// by every connection presenting the same chain: never dispose them.</summary>
    public IReadOnlyList<X509Certificate2> Chain { get; }

    /// <summary>The earliest notAfter in the chain: the identity is no longer valid after it.</summary>
    public DateTimeOffset ValidUntil { get; }

    internal static CertificateValidationResult Success(IReadOnlyList<X509Certificate2> chain) =>
        new(CertificateFailureReason.None, "valid", chain, chain.Min(c => new DateTimeOffset(c.NotAfter.ToUniversalTime())));

    internal static CertificateValidationResult Failure(CertificateFailureReason reason, string detail) =>
        new(reason, detail, [], DateTimeOffset.MinValue);
}
