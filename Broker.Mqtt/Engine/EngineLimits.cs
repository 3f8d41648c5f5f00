using Microsoft.Extensions.Logging;
using OmniBroker.Mqtt.Diagnostics;

namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// The engine's operator limits (<see cref="MqttBrokerOptions"/>): connections in total, subscriptions per client and
/// retained messages. Every hit is counted (omnibroker_limit_hits_total{limit}) and logged in aggregate (event 1400).
/// </summary>
internal sealed class EngineLimits
{
    private readonly MqttBrokerOptions _options;
    private readonly AggregatedLog _log;
    private int _connections;

    public EngineLimits(MqttBrokerOptions options, ILogger logger, TimeProvider time)
    {
        _options = options;
        _log = new AggregatedLog(logger, time, options.LimitLogInterval);
        Retained = new RetainedLimits(options.MaxRetainedMessages, options.MaxRetainedBytes,
            options.MaxRetainedMessagesPerClient, options.MaxRetainedBytesPerClient);
    }

    public RetainedLimits Retained { get; }

    /// <summary>Connected clients counted against <see cref="MqttBrokerOptions.MaxConnections"/>.</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Takes a connection slot; false (counted and logged) when the broker is full.</summary>
    public bool TryOpenConnection(string clientId)
    {
        var count = Interlocked.Increment(ref _connections);
        if (_options.MaxConnections > 0 && count > _options.MaxConnections)
        {
            Interlocked.Decrement(ref _connections);
            _log.LimitHit(LimitMetrics.Limits.Connections, clientId, _options.MaxConnections, "CONNECT refused with Quota exceeded (Mqtt:MaxConnections)");
            return false;
        }
        return true;
    }

    public void CloseConnection() => Interlocked.Decrement(ref _connections);

    /// <summary>Whether adding <paramref name="filter"/> would exceed the session's subscription limit (counted and
    /// logged when it would). Replacing an existing filter never does.</summary>
    public bool SubscriptionRefused(MqttSession session, string filter)
    {
        if (_options.MaxSubscriptionsPerClient <= 0)
        {
            return false;
        }
        lock (session.Sync)
        {
            if (session.Subscriptions.Count < _options.MaxSubscriptionsPerClient || session.Subscriptions.ContainsKey(filter))
            {
                return false;
            }
        }
        _log.LimitHit(LimitMetrics.Limits.SubscriptionsPerClient, session.ClientId, _options.MaxSubscriptionsPerClient,
            $"SUBSCRIBE {filter} refused with Quota exceeded (Mqtt:MaxSubscriptionsPerClient)");
        return true;
    }

    /// <summary>Counts and logs a retained message that was delivered but not retained.</summary>
    public void RetainRefused(string limit, string? clientId, string topic, int payloadBytes)
    {
        var value = limit switch
        {
            LimitMetrics.Limits.RetainedMessages => _options.MaxRetainedMessages,
            LimitMetrics.Limits.RetainedBytes => _options.MaxRetainedBytes,
            LimitMetrics.Limits.RetainedMessagesPerClient => _options.MaxRetainedMessagesPerClient,
            _ => _options.MaxRetainedBytesPerClient,
        };
        _log.LimitHit(limit, clientId, value, $"retained PUBLISH on {topic} ({payloadBytes} bytes) delivered but not retained");
    }
}
