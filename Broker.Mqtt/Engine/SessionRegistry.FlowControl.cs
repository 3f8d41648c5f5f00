using OmniBroker.Mqtt.Diagnostics;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

/// <summary>The registry's side of flow control (issue 10): slow subscribers.</summary>
internal sealed partial class SessionRegistry
{
    /// <summary>A publisher waited for <paramref name="session"/> for the slow-subscriber timeout: declares it slow
    /// (if its queue is still full) and applies <see cref="MqttBrokerOptions.SlowSubscriberPolicy"/>.</summary>
    public void DeclareSlow(MqttSession session)
    {
        var declaration = session.DeclareSlow();
        if (!declaration.Declared)
        {
            return;
        }
        var policy = _options.SlowSubscriberPolicy;
        _metrics.SlowSubscriber(policy == SlowSubscriberPolicy.Disconnect);
        _logger.SlowSubscriber(session.ClientId, _options.SlowSubscriberTimeout, policy);
        if (declaration.DroppedQos0 > 0)
        {
            _router.RecordDrop(session.ClientId, MqttMetrics.DropReasons.SlowSubscriber, null, declaration.DroppedQos0);
        }
        if (policy == SlowSubscriberPolicy.Disconnect)
        {
            declaration.Connection?.RequestClose(MqttReasonCode.QuotaExceeded);
        }
    }
}
