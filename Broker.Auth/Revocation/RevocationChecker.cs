using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace OmniBroker.Auth.Revocation;

internal enum RevocationCheckPurpose
{
    /// <summary>A new connection: answer from cache when it can, else wait at most the timeouts.</summary>
    Handshake,

    /// <summary>Re-check of a connected client: also refresh OCSP answers that are close to expiry.</summary>
    Monitor,
}

/// <summary>
/// <see cref="IRevocationChecker"/> over the CRL store and the OCSP cache/client. Each certificate below the
/// trust anchor is checked with the anchor's mode. First pass: caches only (no network); a revoked answer from
/// any source wins, otherwise the first definite answer in the mode's order. Only what the caches cannot
/// answer goes to the network, in the mode's order, each source bounded by its timeout, the chain's
/// certificates in parallel.
/// </summary>
internal sealed partial class RevocationChecker : IRevocationChecker
{
    private readonly RevocationOptions _options;
    private readonly CrlStore _crls;
    private readonly OcspCache _ocspCache;
    private readonly OcspClient _ocsp;
    private readonly RevocationMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ConditionalWeakTable<X509Certificate2, AnchorPolicy> _anchorPolicies = new();
    private readonly Dictionary<string, AnchorRevocationOptions> _perAnchor;

    public RevocationChecker(RevocationOptions options, CrlStore crls, OcspCache ocspCache, OcspClient ocsp,
        RevocationMetrics metrics, ILogger logger, TimeProvider time)
    {
        _options = options;
        _crls = crls;
        _ocspCache = ocspCache;
        _ocsp = ocsp;
        _metrics = metrics;
        _logger = logger;
        _time = time;
        _perAnchor = new Dictionary<string, AnchorRevocationOptions>(StringComparer.OrdinalIgnoreCase);
        foreach ((string key, AnchorRevocationOptions value) in options.PerAnchor)
        {
            _perAnchor[key.Trim()] = value;
            _perAnchor.TryAdd(NormalizeThumbprint(key), value);
        }
    }

    internal OcspCache OcspCache => _ocspCache;

    internal CrlStore Crls => _crls;

    public ValueTask<RevocationCheckResult> CheckAsync(IReadOnlyList<X509Certificate2> chain, CancellationToken cancellationToken) =>
        CheckAsync(chain, RevocationCheckPurpose.Handshake, cancellationToken);

    internal ValueTask<RevocationCheckResult> CheckAsync(IReadOnlyList<X509Certificate2> chain, RevocationCheckPurpose purpose, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(chain);
        if (chain.Count == 0)
        {
            throw new ArgumentException("the chain is empty", nameof(chain));
        }

        AnchorPolicy policy = PolicyFor(chain[^1]);
        if (policy.Mode == RevocationMode.None)
        {
            return new(new RevocationCheckResult(RevocationStatus.NotChecked, Admit: true, "revocation checking is off for this trust anchor"));
        }

        if (chain.Count == 1)
        {
            return new(new RevocationCheckResult(RevocationStatus.NotChecked, Admit: true, "no certificate below the trust anchor"));
        }

        DateTimeOffset now = _time.GetUtcNow();
        int count = chain.Count - 1;
        CertState[] states = new CertState[count];
        bool pending = false;
        for (int i = 0; i < count; i++)
        {
            states[i] = EvaluateCached(chain[i], chain[i + 1], i == 0, policy, purpose, now);
            pending |= !states[i].Resolved && states[i].NeedsNetwork;
        }

        if (states.Any(static s => s.Resolved && s.Outcome == Outcome.Revoked))
        {
            return new(Finish(chain, states, policy, purpose));
        }

        // A later source answered from cache while the preferred one has nothing cached: the monitor waits for
        // the preferred source (it is not on a handshake's clock); a handshake only starts it in the background
        // so that the next check finds it cached.
        bool preferredPending = false;
        for (int i = 0; i < count; i++)
        {
            if (states[i].PreferredNeedsNetwork)
            {
                if (purpose == RevocationCheckPurpose.Monitor)
                {
                    states[i].Reopen();
                    pending = true;
                }
                else
                {
                    preferredPending = true;
                }
            }
        }

        if (!pending)
        {
            if (preferredPending)
            {
                _ = WarmPreferredAsync(chain, states, policy);
            }

            return new(Finish(chain, states, policy, purpose));
        }

        return new(CheckSlowAsync(chain, states, policy, purpose, cancellationToken));
    }

    private async Task<RevocationCheckResult> CheckSlowAsync(IReadOnlyList<X509Certificate2> chain, CertState[] states,
        AnchorPolicy policy, RevocationCheckPurpose purpose, CancellationToken cancellationToken)
    {
        Task[] work = new Task[states.Length];
        for (int i = 0; i < states.Length; i++)
        {
            int index = i;
            work[i] = states[i].Resolved || !states[i].NeedsNetwork
                ? Task.CompletedTask
                : ResolveOnNetworkAsync(chain[index], chain[index + 1], states[index], policy, cancellationToken);
        }

        await Task.WhenAll(work).ConfigureAwait(false);
        return Finish(chain, states, policy, purpose);
    }

    private async Task WarmPreferredAsync(IReadOnlyList<X509Certificate2> chain, CertState[] states, AnchorPolicy policy)
    {
        for (int i = 0; i < states.Length; i++)
        {
            if (states[i].PreferredNeedsNetwork)
            {
                states[i].Reopen();
                await ResolveOnNetworkAsync(chain[i], chain[i + 1], states[i], policy, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    private CertState EvaluateCached(X509Certificate2 certificate, X509Certificate2 issuer, bool isLeaf, AnchorPolicy policy,
        RevocationCheckPurpose purpose, DateTimeOffset now)
    {
        CertificateRevocationInfo info = CertificateRevocationInfo.Get(certificate);
        Uri? responder = isLeaf && policy.OcspResponder is not null ? policy.OcspResponder : info.OcspResponders.FirstOrDefault();
        Method[] methods = policy.Methods;
        if (!isLeaf && responder is null && methods is [Method.Ocsp])
        {
            // "ocsp" is about client certificates: an intermediate that names no responder falls back to its CRL.
            methods = [Method.Crl];
        }

        CertState state = new(methods, responder);
        for (int k = 0; k < methods.Length; k++)
        {
            state.Results[k] = methods[k] == Method.Crl
                ? FromCrl(_crls.Evaluate(certificate, issuer, now, purpose == RevocationCheckPurpose.Monitor ? _options.MaxStatusAge : null))
                : OcspFromCache(certificate, issuer, responder, policy, purpose, now);
        }

        state.Resolve();
        if (!isLeaf && !state.Resolved && !state.NeedsNetwork && !state.ForceRefuse
            && info.CrlDistributionPoints.Count == 0 && info.OcspResponders.Count == 0)
        {
            // A CA certificate that publishes no revocation information, and whose issuer has no configured CRL,
            // cannot be checked by anyone; refusing it would refuse the whole PKI. Client certificates get no such pass.
            state.ResolveAs(Outcome.Good, "CA certificate publishes no revocation information (not checked)");
        }

        return state;
    }

    private async Task ResolveOnNetworkAsync(X509Certificate2 certificate, X509Certificate2 issuer, CertState state,
        AnchorPolicy policy, CancellationToken cancellationToken)
    {
        for (int k = 0; k < state.Methods.Length && !state.Resolved; k++)
        {
            MethodResult current = state.Results[k];
            if (!current.NeedsNetwork)
            {
                continue;
            }

            if (state.Methods[k] == Method.Crl)
            {
                await _crls.FetchAsync(current.FetchUrls, issuer, cancellationToken).ConfigureAwait(false);
                MethodResult after = FromCrl(_crls.Evaluate(certificate, issuer, _time.GetUtcNow()));
                state.Results[k] = after with { NeedsNetwork = false };
            }
            else
            {
                state.Results[k] = await OcspFromNetworkAsync(certificate, issuer, state.Responder!, policy, cancellationToken).ConfigureAwait(false);
            }

            state.Resolve();
        }
    }

    private RevocationCheckResult Finish(IReadOnlyList<X509Certificate2> chain, CertState[] states, AnchorPolicy policy, RevocationCheckPurpose purpose)
    {
        RevocationCheckResult result = Combine(chain, states, policy);
        if (purpose == RevocationCheckPurpose.Handshake)
        {
            _metrics.Decision(result.Status, result.Admit);
            if (!result.Admit)
            {
                RevocationLog.Refused(_logger, chain[0].Subject, result.Detail);
            }
            else if (result.Status == RevocationStatus.Unknown)
            {
                RevocationLog.SoftFailAdmitted(_logger, chain[0].Subject, result.Detail);
            }
        }

        return result;
    }

    private static RevocationCheckResult Combine(IReadOnlyList<X509Certificate2> chain, CertState[] states, AnchorPolicy policy)
    {
        for (int i = 0; i < states.Length; i++)
        {
            if (states[i].Resolved && states[i].Outcome == Outcome.Revoked)
            {
                return new RevocationCheckResult(RevocationStatus.Revoked, Admit: false, Describe(chain, i, "is revoked", states[i].Detail));
            }
        }

        int unknown = -1;
        for (int i = 0; i < states.Length; i++)
        {
            CertState s = states[i];
            if ((s.Resolved && s.Outcome == Outcome.Refuse) || (!s.Resolved && s.ForceRefuse))
            {
                return new RevocationCheckResult(RevocationStatus.Unknown, Admit: false, Describe(chain, i, "has no usable revocation status", s.Detail));
            }

            if (!s.Resolved && unknown < 0)
            {
                unknown = i;
            }
        }

        if (unknown >= 0)
        {
            bool admit = policy.FailurePolicy == RevocationFailurePolicy.SoftFail;
            string policyName = admit ? "soft-fail: admitted" : "hard-fail: refused";
            return new RevocationCheckResult(RevocationStatus.Unknown, admit,
                Describe(chain, unknown, $"has unknown revocation status ({policyName})", states[unknown].Detail));
        }

        return new RevocationCheckResult(RevocationStatus.Good, Admit: true, states[0].Detail);
    }

    private static string Describe(IReadOnlyList<X509Certificate2> chain, int index, string what, string detail)
    {
        X509Certificate2 cert = chain[index];
        string role = index == 0 ? "certificate" : "issuing CA certificate";
        return $"{role} '{cert.Subject}' (serial {CertificateRevocationInfo.Get(cert).SerialHex}) {what}: {detail}";
    }

    private static OcspCacheKey Key(X509Certificate2 certificate, X509Certificate2 issuer) =>
        new(CertificateRevocationInfo.Get(issuer).CacheId(issuer), CertificateRevocationInfo.Get(certificate).SerialHex);

    internal AnchorPolicy PolicyFor(X509Certificate2 anchor) =>
        _anchorPolicies.GetValue(anchor, a => ResolvePolicy(a));

    private AnchorPolicy ResolvePolicy(X509Certificate2 anchor)
    {
        AnchorRevocationOptions? over = null;
        if (_perAnchor.Count > 0)
        {
            string sha256 = anchor.GetCertHashString(System.Security.Cryptography.HashAlgorithmName.SHA256);
            if (!_perAnchor.TryGetValue(anchor.Subject, out over)
                && !_perAnchor.TryGetValue(anchor.SubjectName.Format(false), out over)
                && !_perAnchor.TryGetValue(anchor.Thumbprint, out over))
            {
                _perAnchor.TryGetValue(sha256, out over);
            }
        }

        RevocationMode mode = over?.Mode ?? _options.Mode;
        Method[] methods = mode switch
        {
            RevocationMode.Ocsp => [Method.Ocsp],
            RevocationMode.Crl => [Method.Crl],
            RevocationMode.OcspThenCrl => [Method.Ocsp, Method.Crl],
            RevocationMode.CrlThenOcsp => [Method.Crl, Method.Ocsp],
            _ => [],
        };
        return new AnchorPolicy(mode, over?.FailurePolicy ?? _options.FailurePolicy, over?.OcspUnknown ?? _options.OcspUnknown,
            over?.OcspResponder, methods);
    }

    private static string NormalizeThumbprint(string key) =>
        key.Replace(":", "", StringComparison.Ordinal).Replace(" ", "", StringComparison.Ordinal);
}
