namespace OmniBroker.Mqtt.Diagnostics;

// Data sources of the observable gauges in BrokerMetrics. The host composes them from the engine, the policy
// store and the revocation caches and hands them to BrokerMetrics.RegisterSource. Implementations are called
// on the scrape thread and must be thread-safe and cheap (no I/O).

/// <summary>Engine state: omnibroker_sessions, omnibroker_subscriptions, omnibroker_retained_messages.</summary>
public interface IBrokerStateSource
{
    long SessionCount { get; }

    long SubscriptionCount { get; }

    long RetainedMessageCount { get; }

    /// <summary>Messages queued for subscribers: omnibroker_queue_messages.</summary>
    long QueuedMessageCount => 0;

    /// <summary>Bytes queued for subscribers: omnibroker_queue_bytes.</summary>
    long QueuedBytes => 0;
}

/// <summary>Active policy: omnibroker_policy_version.</summary>
public interface IPolicyStateSource
{
    bool IsPolicyLoaded { get; }

    long PolicyVersion { get; }
}

/// <summary>A cached CRL's freshness for one issuer.</summary>
/// <param name="Issuer">Issuer name (subject DN of the CA); one series per configured CA keeps the label bounded.</param>
public readonly record struct CrlState(string Issuer, DateTimeOffset ThisUpdate, DateTimeOffset? NextUpdate);

/// <summary>Revocation caches: omnibroker_crl_age_seconds, omnibroker_crl_next_update_timestamp_seconds.</summary>
public interface ICrlStateSource
{
    IEnumerable<CrlState> GetCrlStates();
}

/// <summary>Connected clients' certificates: omnibroker_client_certificates*, soonest expiry.</summary>
public interface ICertificateExpirySource
{
    /// <summary>notAfter of each connected client's certificate.</summary>
    IEnumerable<DateTimeOffset> GetConnectedCertificateExpiries();
}
