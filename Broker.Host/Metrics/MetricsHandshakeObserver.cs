using OmniBroker.Auth;
using OmniBroker.Mqtt.Diagnostics;

namespace OmniBroker.Host.Metrics;

/// <summary>Feeds omnibroker_tls_handshakes_total and omnibroker_tls_handshake_duration_seconds from the
/// MQTT listener's certificate authentication.</summary>
internal sealed class MetricsHandshakeObserver : IHandshakeObserver
{
    public void OnHandshakeSucceeded(TimeSpan duration) => BrokerMetrics.HandshakeSucceeded(duration.TotalSeconds);

    public void OnHandshakeFailed(CertificateFailureReason reason, TimeSpan duration) =>
        BrokerMetrics.HandshakeFailed(reason.Label(), duration.TotalSeconds);
}
