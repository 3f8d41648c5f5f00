using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

/// <summary>Start-up restore: persisted sessions come back offline, re-authorized against the current policy and
/// revocation state, with the time the broker was down counted against their expiry.</summary>
internal sealed partial class SessionRegistry
{
    public async Task RestoreAsync(StoredState state, IMqttAuthorizer authorizer, IRestoredIdentityValidator? validator,
        CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var now = _time.GetUtcNow();
        // Sessions connected when the broker stopped were disconnected then, as far as their expiry is concerned.
        var stoppedAt = state.LastAlive ?? now;
        int restored = 0, subscriptions = 0, messages = 0, retained = 0, expired = 0, discarded = 0;
        List<WillState>? dueWills = null;
        var certificates = await CheckCertificatesAsync(state.Sessions, validator, cancellationToken).ConfigureAwait(false);

        foreach (var message in state.Retained)
        {
            if (message.ExpiresAt is { } at && at <= now)
            {
                _store?.Append(new RetainedDeleted(message.Topic));
                continue;
            }
            _router.RestoreRetained(message);
            retained++;
        }

        foreach (var stored in state.Sessions)
        {
            var row = stored.Session;
            var expiresAt = row.ExpiresAt ?? stoppedAt.AddSeconds(row.ExpiryInterval);
            if (row.ExpiryInterval == 0 || expiresAt <= now)
            {
                // Expired while the broker was down: gone, and its will (the session ended) is due. Expiry 0: a
                // non-persistent session stored only for its connection's will (SessionRegistry.Wills.cs).
                if (row.ExpiryInterval > 0)
                {
                    _logger.SessionExpired(row.ClientId);
                }
                _store?.Append(new SessionDeleted(row.ClientId));
                expired++;
                if (stored.Will is { } will && await AuthorizeAsync(row, authorizer, validator, certificates, cancellationToken).ConfigureAwait(false) is { } willGrants)
                {
                    // Published once every session is back: a subscriber restored later in the loop receives it too.
                    (dueWills ??= []).Add(WillStates.FromStored(row.ClientId, will, willGrants, now).Will);
                }
                continue;
            }

            var grants = await AuthorizeAsync(row, authorizer, validator, certificates, cancellationToken).ConfigureAwait(false);
            if (grants is null)
            {
                _store?.Append(new SessionDeleted(row.ClientId));
                discarded++;
                continue;
            }

            var session = new MqttSession(row.ClientId, _budget) { Cluster = _router.Cluster };
            lock (_sessionsLock)
            {
                if (!_sessions.TryAdd(row.ClientId, session))
                {
                    continue;
                }
                Interlocked.Increment(ref _sessionCount);
                lock (session.Sync)
                {
                    session.ExpiryInterval = row.ExpiryInterval;
                    session.ExpiresAt = expiresAt;
                    session.Grants = grants;
                    session.Identity = SessionIdentity.FromStored(row);
                    foreach (var subscription in stored.Subscriptions)
                    {
                        var restoredSubscription = Subscription.FromStored(session, subscription);
                        if (!grants.CanSubscribe(restoredSubscription.TopicFilter))
                        {
                            // The right was lost while the broker was down.
                            _logger.SubscriptionRevoked(row.ClientId, subscription.Filter);
                            _store?.Append(new SubscriptionDeleted(row.ClientId, subscription.Filter));
                            continue;
                        }
                        session.Subscriptions[restoredSubscription.Filter] = restoredSubscription;
                        _router.Subscriptions.Add(restoredSubscription);
                        subscriptions++;
                    }
                    if (stored.Will is { } will)
                    {
                        session.DelayedWill = WillStates.FromStored(row.ClientId, will, grants, now);
                        if (will.DueAt is null)
                        {
                            // Its due time is now known: a second crash before it does not postpone it again.
                            _store?.Append(new WillSaved(row.ClientId, WillStates.ToStored(session.DelayedWill)));
                        }
                    }
                    // Rows are already stored: attach the store without writing them again.
                    session.AttachRestoredStoreLocked(_store);
                    if (row.ExpiresAt is null)
                    {
                        _store?.Append(new SessionSaved(session.ToStoredLocked()));
                    }
                }
                messages += session.Restore(stored);
                _offline.Add(session);
            }
            restored++;
        }

        // Wills that fell due while the broker was down are published now, before the first connection.
        PublishWills(dueWills);
        RunMaintenance();
        _logger.StateRestored(clock.ElapsedMilliseconds, restored, subscriptions, messages, retained, expired, discarded);
    }

    /// <summary>The grants of a restored session under the current policy, or null (logged) when it lost the right to
    /// connect or its certificate is no longer valid (revoked, expired).</summary>
    private async ValueTask<IClientGrants?> AuthorizeAsync(StoredSession row, IMqttAuthorizer authorizer, IRestoredIdentityValidator? validator,
        Dictionary<string, CertificateCheck> certificates, CancellationToken cancellationToken)
    {
        X509Certificate2[] chain = [];
        if (row.CertificateChainPem is { } pem)
        {
            if (!certificates.TryGetValue(pem, out var check))
            {
                check = await CheckCertificateAsync(pem, validator, cancellationToken).ConfigureAwait(false);
                certificates[pem] = check;
            }
            if (check.Problem is { } problem)
            {
                _logger.RestoredSessionDiscarded(row.ClientId, problem);
                return null;
            }
            chain = check.Chain;
        }

        var info = new MqttClientInfo(row.ClientId, (MqttProtocolVersion)row.ProtocolVersion, chain.Length > 0 ? chain[0] : null, null, row.UserName);
        var decision = authorizer.AuthorizeConnect(info);
        if (!decision.Allowed || decision.Grants is null)
        {
            _logger.RestoredSessionDiscarded(row.ClientId, $"not authorized by the current policy: {decision.Reason}");
            return null;
        }
        return decision.Grants;
    }

    /// <summary>One parse and one chain/revocation check per distinct stored certificate chain, however many sessions
    /// hold it, run concurrently (chain building is CPU work, OCSP is waiting on a responder). The first runs alone: a
    /// validator may load shared state on first use (the CRL files, before any revocation answer counts).</summary>
    private static async Task<Dictionary<string, CertificateCheck>> CheckCertificatesAsync(IReadOnlyList<StoredSessionState> sessions,
        IRestoredIdentityValidator? validator, CancellationToken cancellationToken)
    {
        var distinct = new HashSet<string>(StringComparer.Ordinal);
        foreach (var stored in sessions)
        {
            if (stored.Session.CertificateChainPem is { } pem)
            {
                distinct.Add(pem);
            }
        }
        var results = new Dictionary<string, CertificateCheck>(distinct.Count, StringComparer.Ordinal);
        if (distinct.Count == 0)
        {
            return results;
        }
        var pems = distinct.ToArray();
        results[pems[0]] = await CheckCertificateAsync(pems[0], validator, cancellationToken).ConfigureAwait(false);
        var checks = new CertificateCheck[pems.Length];
        var options = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(4, 4 * Environment.ProcessorCount), CancellationToken = cancellationToken };
        await Parallel.ForEachAsync(Enumerable.Range(1, pems.Length - 1), options,
            async (i, token) => checks[i] = await CheckCertificateAsync(pems[i], validator, token).ConfigureAwait(false)).ConfigureAwait(false);
        for (var i = 1; i < pems.Length; i++)
        {
            results[pems[i]] = checks[i];
        }
        return results;
    }

    private static async ValueTask<CertificateCheck> CheckCertificateAsync(string pem, IRestoredIdentityValidator? validator,
        CancellationToken cancellationToken)
    {
        X509Certificate2[] chain;
        try
        {
            var collection = new X509Certificate2Collection();
            collection.ImportFromPem(pem);
            chain = [.. collection];
        }
        catch (CryptographicException ex)
        {
            return new CertificateCheck([], $"stored certificate unreadable: {ex.Message}");
        }
        if (validator is not null && chain.Length > 0)
        {
            var problem = await validator.ValidateAsync(chain, cancellationToken).ConfigureAwait(false);
            if (problem is not null)
            {
                return new CertificateCheck(chain, problem);
            }
        }
        return new CertificateCheck(chain, null);
    }

    /// <summary>A stored certificate chain, parsed, and why it is no longer acceptable (null: it is).</summary>
    private readonly record struct CertificateCheck(X509Certificate2[] Chain, string? Problem);
}
