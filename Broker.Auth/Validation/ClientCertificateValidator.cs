using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace OmniBroker.Auth;

/// <summary>
/// Validates client certificates against the configured <see cref="TrustStore"/> only: custom root trust, no
/// system store, no certificate download, no revocation (that is <see cref="IRevocationChecker"/>'s job).
/// The leaf must carry the clientAuth extended key usage and, when it has a KeyUsage extension, digitalSignature.
/// <para>The handshake is the hot path, so a result is computed once per certificate: cached under the leaf's
/// SHA-256 plus the intermediates the client presented, until the earliest notAfter of the chain (successes) or
/// for <see cref="FailureCacheDuration"/> (failures). The cache holds at most <see cref="CacheCapacity"/> entries.</para>
/// </summary>
public sealed class ClientCertificateValidator
{
    public const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";

    /// <summary>A refused certificate is re-evaluated after this long (it may become valid: not-yet-valid).</summary>
    public static readonly TimeSpan FailureCacheDuration = TimeSpan.FromMinutes(1);

    private const X509ChainStatusFlags UntrustedFlags =
        X509ChainStatusFlags.PartialChain | X509ChainStatusFlags.UntrustedRoot | X509ChainStatusFlags.NotSignatureValid |
        X509ChainStatusFlags.Cyclic | X509ChainStatusFlags.InvalidBasicConstraints | X509ChainStatusFlags.InvalidNameConstraints |
        X509ChainStatusFlags.HasNotPermittedNameConstraint | X509ChainStatusFlags.HasExcludedNameConstraint |
        X509ChainStatusFlags.HasNotDefinedNameConstraint | X509ChainStatusFlags.HasNotSupportedNameConstraint |
        X509ChainStatusFlags.InvalidExtension | X509ChainStatusFlags.HasNotSupportedCriticalExtension |
        X509ChainStatusFlags.InvalidPolicyConstraints | X509ChainStatusFlags.ExplicitDistrust |
        X509ChainStatusFlags.NoIssuanceChainPolicy;

    // Revocation flags cannot appear (RevocationMode.NoCheck) and are not this class's business.
    private const X509ChainStatusFlags IgnoredFlags =
        X509ChainStatusFlags.Revoked | X509ChainStatusFlags.RevocationStatusUnknown | X509ChainStatusFlags.OfflineRevocation;

    private readonly TrustStore _trust;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, CacheEntry> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _insertionOrder = new();

    public ClientCertificateValidator(TrustStore trust, TimeProvider? timeProvider = null, int cacheCapacity = 10_000)
    {
        ArgumentNullException.ThrowIfNull(trust);
        ArgumentOutOfRangeException.ThrowIfLessThan(cacheCapacity, 1);
        _trust = trust;
        _time = timeProvider ?? TimeProvider.System;
        CacheCapacity = cacheCapacity;
    }

    public TrustStore Trust => _trust;

    public int CacheCapacity { get; }

    internal int CachedCount => _cache.Count;

    /// <summary>Validates <paramref name="leaf"/> with the certificates the client sent along
    /// (<paramref name="presented"/>, may include the leaf itself; it is ignored there).</summary>
    public CertificateValidationResult Validate(X509Certificate2? leaf, IEnumerable<X509Certificate2>? presented = null)
    {
        if (leaf is null)
        {
            return CertificateValidationResult.Failure(CertificateFailureReason.NoCertificate, "the client sent no certificate");
        }

        var leafHash = leaf.GetCertHashString(HashAlgorithmName.SHA256);
        var extras = new List<X509Certificate2>();
        var extraHashes = new List<string>();
        foreach (var certificate in presented ?? [])
        {
            var hash = certificate.GetCertHashString(HashAlgorithmName.SHA256);
            if (hash != leafHash && !extraHashes.Contains(hash))
            {
                extras.Add(certificate);
                extraHashes.Add(hash);
            }
        }
        extraHashes.Sort(StringComparer.Ordinal);
        var key = extraHashes.Count == 0 ? leafHash : leafHash + "|" + string.Join('|', extraHashes);

        var now = _time.GetUtcNow();
        if (_cache.TryGetValue(key, out var cached) && now < cached.ExpiresAt)
        {
            return cached.Result;
        }

        var result = Evaluate(leaf, extras, now, out var expiresAt);
        Store(key, new CacheEntry(result, expiresAt));
        return result;
    }

    /// <summary>The chain policy used for a client chain: only the configured anchors are trusted.</summary>
    public X509ChainPolicy CreateChainPolicy(IEnumerable<X509Certificate2>? presented = null, DateTimeOffset? verificationTime = null)
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
            DisableCertificateDownloads = true,
            VerificationFlags = X509VerificationFlags.NoFlag,
        };
        policy.CustomTrustStore.AddRange(_trust.Anchors);
        policy.ExtraStore.AddRange(_trust.Intermediates);
        foreach (var certificate in presented ?? [])
        {
            policy.ExtraStore.Add(certificate);
        }
        policy.ApplicationPolicy.Add(new Oid(ClientAuthOid));
        if (verificationTime is { } time)
        {
            policy.VerificationTime = time.UtcDateTime;
            policy.VerificationTimeIgnored = false;
        }
        return policy;
    }

    private CertificateValidationResult Evaluate(X509Certificate2 leaf, List<X509Certificate2> extras, DateTimeOffset now, out DateTimeOffset expiresAt)
    {
        expiresAt = now + FailureCacheDuration;
        using var chain = new X509Chain { ChainPolicy = CreateChainPolicy(extras, now) };
        chain.Build(leaf);

        var elements = new List<X509Certificate2>(chain.ChainElements.Count);
        var flags = X509ChainStatusFlags.NoError;
        foreach (var element in chain.ChainElements)
        {
            // Copies: the chain owns (and disposes) its element certificates, the cache outlives it.
            elements.Add(X509CertificateLoader.LoadCertificate(element.Certificate.RawData));
            foreach (var status in element.ChainElementStatus)
            {
                flags |= status.Status;
            }
        }
        foreach (var status in chain.ChainStatus)
        {
            flags |= status.Status;
        }
        flags &= ~IgnoredFlags;

        if ((flags & UntrustedFlags) != 0)
        {
            return CertificateValidationResult.Failure(CertificateFailureReason.Untrusted,
                $"chain does not lead to a configured trust anchor ({Describe(chain)})");
        }

        if ((flags & (X509ChainStatusFlags.NotTimeValid | X509ChainStatusFlags.NotTimeNested)) != 0 || elements.Count == 0)
        {
            foreach (var certificate in elements.Count == 0 ? [leaf] : elements)
            {
                var notBefore = new DateTimeOffset(certificate.NotBefore.ToUniversalTime());
                var notAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime());
                if (now < notBefore)
                {
                    if (notBefore < expiresAt)
                    {
                        expiresAt = notBefore;
                    }
                    return CertificateValidationResult.Failure(CertificateFailureReason.NotYetValid,
                        $"{Name(certificate, leaf)} is not valid before {notBefore:u}");
                }
                if (now > notAfter)
                {
                    return CertificateValidationResult.Failure(CertificateFailureReason.Expired,
                        $"{Name(certificate, leaf)} expired at {notAfter:u}");
                }
            }
        }

        var usage = CheckLeafUsage(leaf);
        if (usage is not null)
        {
            return CertificateValidationResult.Failure(CertificateFailureReason.BadKeyUsage, usage);
        }

        if ((flags & X509ChainStatusFlags.NotValidForUsage) != 0)
        {
            return CertificateValidationResult.Failure(CertificateFailureReason.BadKeyUsage,
                $"an issuer's extended key usage does not allow clientAuth ({Describe(chain)})");
        }

        if ((flags & ~(X509ChainStatusFlags.NotTimeValid | X509ChainStatusFlags.NotTimeNested)) != 0)
        {
            return CertificateValidationResult.Failure(CertificateFailureReason.Untrusted, $"chain is not valid ({Describe(chain)})");
        }

        var result = CertificateValidationResult.Success(elements);
        expiresAt = result.ValidUntil;
        return result;
    }

    /// <summary>clientAuth EKU required; digitalSignature required when KeyUsage is present (RFC 5280 §4.2.1.3,
    /// TLS client authentication signs the handshake).</summary>
    internal static string? CheckLeafUsage(X509Certificate2 leaf)
    {
        var eku = leaf.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault();
        if (eku is null)
        {
            return $"certificate has no extended key usage extension; clientAuth ({ClientAuthOid}) is required";
        }
        var hasClientAuth = false;
        foreach (var oid in eku.EnhancedKeyUsages)
        {
            hasClientAuth |= oid.Value == ClientAuthOid;
        }
        if (!hasClientAuth)
        {
            return $"certificate extended key usage lacks clientAuth ({ClientAuthOid})";
        }
        var keyUsage = leaf.Extensions.OfType<X509KeyUsageExtension>().FirstOrDefault();
        if (keyUsage is not null && (keyUsage.KeyUsages & X509KeyUsageFlags.DigitalSignature) == 0)
        {
            return $"certificate key usage ({keyUsage.KeyUsages}) lacks digitalSignature";
        }
        return null;
    }

    private static string Name(X509Certificate2 certificate, X509Certificate2 leaf) =>
        certificate.RawDataMemory.Span.SequenceEqual(leaf.RawDataMemory.Span)
            ? "certificate"
            : $"issuer certificate {certificate.Subject}";

    private static string Describe(X509Chain chain)
    {
        var text = new StringBuilder();
        foreach (var status in chain.ChainStatus)
        {
            if ((status.Status & IgnoredFlags) != 0)
            {
                continue;
            }
            if (text.Length > 0)
            {
                text.Append("; ");
            }
            text.Append(status.Status).Append(": ").Append(status.StatusInformation.Trim());
        }
        return text.Length == 0 ? "no status" : text.ToString();
    }

    private void Store(string key, CacheEntry entry)
    {
        if (_cache.TryAdd(key, entry))
        {
            _insertionOrder.Enqueue(key);
        }
        else
        {
            _cache[key] = entry;
        }

        // Bounded: forget the oldest insertions first (a handshake flood of distinct certificates must not grow memory).
        while (_cache.Count > CacheCapacity && _insertionOrder.TryDequeue(out var oldest))
        {
            _cache.TryRemove(oldest, out _);
        }
    }

    private sealed record CacheEntry(CertificateValidationResult Result, DateTimeOffset ExpiresAt);
}
