namespace OmniBroker.Mqtt.Diagnostics;

/// <summary>
/// A component's meter class whose counters have a known, bounded set of label values. Register it in DI as
/// <see cref="IPrimedMetrics"/>; the host calls <see cref="PrimeSeries"/> once its exporter listens, so every series
/// exists (at 0) from the first scrape and rate()/increase() see the first event (a series born at 1 loses it).
/// Measurements recorded before a listener exists are dropped, which is why the constructor alone cannot do it.
/// </summary>
public interface IPrimedMetrics
{
    /// <summary>Records 0 on every known label combination; calling it again is harmless.</summary>
    void PrimeSeries();
}
