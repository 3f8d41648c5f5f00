namespace OmniBroker.Host.Metrics;

/// <summary>Configuration section "Metrics".</summary>
public sealed class MetricsOptions
{
    public const string SectionName = "Metrics";

    /// <summary>Path of the Prometheus endpoint on the HTTP listener. Default "/metrics".</summary>
    public string Path { get; set; } = "/metrics";
}
