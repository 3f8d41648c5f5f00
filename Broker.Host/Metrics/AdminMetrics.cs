using System.Diagnostics.Metrics;
using OmniBroker.Mqtt.Diagnostics;

namespace OmniBroker.Host.Metrics;

/// <summary>The host's own instruments (meter <see cref="MeterName"/>): access decisions of the admin API.</summary>
internal sealed class AdminMetrics : IPrimedMetrics
{
    public const string MeterName = "OmniBroker.Host";

    private static readonly KeyValuePair<string, object?> s_allow = new("result", "allow");
    private static readonly KeyValuePair<string, object?> s_deny = new("result", "deny");

    private readonly Counter<long> _requests;

    public AdminMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        // omnibroker_admin_requests_total{result}
        _requests = meter.CreateCounter<long>("omnibroker.admin.requests", "{request}",
            "Requests to the admin API (/api/*), by access decision (allow, deny).");
        PrimeSeries();
    }

    public void PrimeSeries()
    {
        _requests.Add(0, s_allow);
        _requests.Add(0, s_deny);
    }

    public void Decision(bool allowed) => _requests.Add(1, allowed ? s_allow : s_deny);
}
