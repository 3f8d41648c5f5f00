using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace OmniBroker.Auth.Revocation;

/// <summary>One source's answer (CRL store, OCSP cache, OCSP responder) as a <see cref="MethodResult"/>.</summary>
internal sealed partial class RevocationChecker
{
    private static MethodResult FromCrl(CrlVerdict verdict) => verdict.Kind switch
    {
        CrlVerdictKind.Good => new MethodResult(Outcome.Good, "CRL: " + verdict.Detail),
        CrlVerdictKind.Revoked => new MethodResult(Outcome.Revoked, "CRL: " + verdict.Detail),
        CrlVerdictKind.StaleRefuse => new MethodResult(Outcome.Unavailable, "CRL: " + verdict.Detail, ForceRefuse: true,
            NeedsNetwork: verdict.FetchUrls.Count > 0, FetchUrls: verdict.FetchUrls),
        CrlVerdictKind.RefreshDue => new MethodResult(Outcome.Unavailable, "CRL: " + verdict.Detail, NeedsNetwork: true, FetchUrls: verdict.FetchUrls),
        CrlVerdictKind.Missing => new MethodResult(Outcome.Unavailable, "CRL: " + verdict.Detail, NeedsNetwork: true, FetchUrls: verdict.FetchUrls),
        _ => new MethodResult(Outcome.Unavailable, "CRL: " + verdict.Detail),
    };

    private MethodResult OcspFromCache(X509Certificate2 certificate, X509Certificate2 issuer, Uri? responder, AnchorPolicy policy,
        RevocationCheckPurpose purpose, DateTimeOffset now)
    {
        if (responder is null)
        {
            return new MethodResult(Outcome.Unavailable, "OCSP: the certificate names no responder and none is configured");
        }

        OcspCacheKey key = Key(certificate, issuer);
        if (_ocspCache.TryGet(key, now, out OcspCacheEntry entry))
        {
            _metrics.OcspCache(hit: true);
            // A connected client's status is refreshed ahead of the answer's expiry, and also once it is older than
            // MaxStatusAge: a long-lived answer must not keep a revoked device connected until its nextUpdate.
            if (purpose == RevocationCheckPurpose.Monitor && (now >= entry.RefreshAt || now - entry.FetchedAt >= _options.MaxStatusAge)
                && !_ocspCache.IsDown(responder, now, out _))
            {
                return new MethodResult(Outcome.Unavailable, "OCSP: cached answer due for refresh", NeedsNetwork: true);
            }

            return FromAnswer(entry.Answer, entry.Responder, policy, certificate, log: false);
        }

        _metrics.OcspCache(hit: false);
        if (_ocspCache.IsDown(responder, now, out string error))
        {
            return new MethodResult(Outcome.Unavailable, $"OCSP: responder {responder} failed moments ago ({error})");
        }

        return new MethodResult(Outcome.Unavailable, "OCSP: no cached answer", NeedsNetwork: true);
    }

    private async Task<MethodResult> OcspFromNetworkAsync(X509Certificate2 certificate, X509Certificate2 issuer, Uri responder,
        AnchorPolicy policy, CancellationToken cancellationToken)
    {
        OcspCacheKey key = Key(certificate, issuer);
        OcspLookup lookup = await _ocspCache
            .GetOrStart(key, () => _ocsp.QueryAsync(responder, certificate, issuer, CancellationToken.None))
            .WaitAsync(cancellationToken).ConfigureAwait(false);
        DateTimeOffset now = _time.GetUtcNow();
        if (lookup.Answer is { } answer)
        {
            _ocspCache.Store(key, answer, responder, now);
            return FromAnswer(answer, responder, policy, certificate, log: true);
        }

        _ocspCache.MarkDown(responder, now, lookup.Error ?? lookup.Result.ToString());
        if (_ocspCache.TryGet(key, now, out OcspCacheEntry entry))
        {
            // A refresh ahead of expiry failed: the cached answer is still valid.
            return FromAnswer(entry.Answer, entry.Responder, policy, certificate, log: false);
        }

        return new MethodResult(Outcome.Unavailable, $"OCSP: {responder}: {lookup.Error}");
    }

    private MethodResult FromAnswer(OcspAnswer answer, Uri responder, AnchorPolicy policy, X509Certificate2 certificate, bool log)
    {
        switch (answer.Status)
        {
            case OcspCertStatus.Good:
                return new MethodResult(Outcome.Good, $"OCSP: good per {responder}");
            case OcspCertStatus.Revoked:
                string reason = answer.RevocationReason is { } r ? $", reason {(X509RevocationReason)r}" : "";
                return new MethodResult(Outcome.Revoked, $"OCSP: revoked {answer.RevocationTime:O}{reason} per {responder}");
            default:
                if (log)
                {
                    RevocationLog.OcspUnknown(_logger, responder.ToString(), CertificateRevocationInfo.Get(certificate).SerialHex,
                        RevocationOptionsLoader.Kebab(policy.OcspUnknown));
                }

                return policy.OcspUnknown == OcspUnknownPolicy.Refuse
                    ? new MethodResult(Outcome.Refuse, $"OCSP: {responder} does not know the certificate (status unknown, refused)")
                    : new MethodResult(Outcome.Unavailable, $"OCSP: {responder} does not know the certificate (status unknown)");
        }
    }
}
