using System.Diagnostics.Metrics;
using OmniBroker.Mqtt.Diagnostics;

namespace OmniBroker.Policy.Diagnostics;

/// <summary>
/// Policy instruments, on the meter <see cref="MeterName"/> from an <see cref="IMeterFactory"/>: reloads by result,
/// the version of the policy in force and whether the last reload succeeded. The Prometheus name of each instrument
/// is in its comment.
/// </summary>
public sealed class PolicyMetrics : IPrimedMetrics, IDisposable
{
    public const string MeterName = "OmniBroker.Policy";

    private static readonly KeyValuePair<string, object?> s_success = new("result", "success");
    private static readonly KeyValuePair<string, object?> s_failure = new("result", "failure");

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Counter<long> _reloads;
    private PolicyAuthorizer? _authorizer;
    private int _lastReloadFailed;

    public PolicyMetrics(IMeterFactory? meterFactory = null)
    {
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);

        // omnibroker_policy_reloads_total{result}
        _reloads = _meter.CreateCounter<long>("omnibroker.policy.reloads", "{reload}", "Policy reloads, by result.");
        // omnibroker_policy_version
        _meter.CreateObservableGauge("omnibroker.policy.version", ObserveVersion, "", "Version (load counter) of the active, last good policy.");
        // omnibroker_policy_last_reload_success
        _meter.CreateObservableGauge("omnibroker.policy.last_reload.success", () => Volatile.Read(ref _lastReloadFailed) == 0 ? 1 : 0, "",
            "1 when the last policy reload succeeded (or none failed yet), 0 when it failed and the last good policy is still in force.");

        PrimeSeries();
    }

    /// <inheritdoc/>
    public void PrimeSeries()
    {
        _reloads.Add(0, s_success);
        _reloads.Add(0, s_failure);
    }

    /// <summary>The authorizer whose policy version the gauge reports; set by <see cref="PolicyAuthorizer"/>.</summary>
    internal void Observe(PolicyAuthorizer authorizer) => Volatile.Write(ref _authorizer, authorizer);

    internal void Reloaded(bool ok)
    {
        _reloads.Add(1, ok ? s_success : s_failure);
        Volatile.Write(ref _lastReloadFailed, ok ? 0 : 1);
    }

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    private IEnumerable<Measurement<long>> ObserveVersion() =>
        Volatile.Read(ref _authorizer) is { } authorizer ? [new Measurement<long>(authorizer.Version.Generation)] : [];
}
