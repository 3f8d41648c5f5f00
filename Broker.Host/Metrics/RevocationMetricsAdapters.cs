using OmniBroker.Auth;
using OmniBroker.Auth.Revocation;
using OmniBroker.Mqtt.Diagnostics;

namespace OmniBroker.Host.Metrics;

/// <summary>Feeds the OCSP, revocation cache and CRL refresh instruments from Broker.Auth's revocation checking.</summary>
internal sealed class MetricsRevocationObserver : IRevocationObserver
{
    public void OcspRequestCompleted(OcspRequestResult result, TimeSpan latency) =>
        BrokerMetrics.OcspRequest(Label(result), latency.TotalSeconds);

    public void CacheLookup(string source, bool hit)
    {
        var cache = source == BrokerMetrics.RevocationCaches.Crl ? BrokerMetrics.RevocationCaches.Crl : BrokerMetrics.RevocationCaches.Ocsp;
        if (hit)
        {
            BrokerMetrics.RevocationCacheHit(cache);
        }
        else
        {
            BrokerMetrics.RevocationCacheMiss(cache);
        }
    }

    public void CrlRefreshed(string source, bool success) => BrokerMetrics.CrlRefresh(success);

    public void Decision(RevocationStatus status, bool admitted)
    {
        // Refusals are counted as handshake failures (revoked, revocation_unknown) by the authenticator.
    }

    internal static string Label(OcspRequestResult result) => result switch
    {
        OcspRequestResult.Good => BrokerMetrics.OcspResults.Good,
        OcspRequestResult.Revoked => BrokerMetrics.OcspResults.Revoked,
        OcspRequestResult.Unknown => BrokerMetrics.OcspResults.Unknown,
        OcspRequestResult.Timeout => BrokerMetrics.OcspResults.Timeout,
        OcspRequestResult.NetworkError => BrokerMetrics.OcspResults.NetworkError,
        OcspRequestResult.HttpError => BrokerMetrics.OcspResults.HttpError,
        OcspRequestResult.InvalidResponse => BrokerMetrics.OcspResults.InvalidResponse,
        _ => BrokerMetrics.OcspResults.Error,
    };
}

/// <summary>omnibroker_crl_age_seconds / omnibroker_crl_next_update_timestamp_seconds from the CRL store. One series
/// per issuer: when several sources (file, distribution point) hold a CRL of one issuer, the freshest counts.</summary>
internal sealed class RevocationCrlStateSource(RevocationMetrics metrics) : ICrlStateSource
{
    public IEnumerable<CrlState> GetCrlStates()
    {
        var byIssuer = new Dictionary<string, CrlState>(StringComparer.Ordinal);
        foreach (var status in metrics.CrlStatus)
        {
            if (status.ThisUpdate is not { } thisUpdate)
            {
                continue; // never loaded: no age to report; CrlRefresh failures and handshake refusals show it
            }

            if (!byIssuer.TryGetValue(status.Issuer, out var known) || known.ThisUpdate < thisUpdate)
            {
                byIssuer[status.Issuer] = new CrlState(status.Issuer, thisUpdate, status.NextUpdate);
            }
        }

        return byIssuer.Values;
    }
}
