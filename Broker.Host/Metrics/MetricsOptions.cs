namespace OmniBroker.Host.Metrics;

/// <summary>Configuration section "Metrics".</summary>
public sealed class MetricsOptions
{
    public const string SectionName = "Metrics";

    /// <summary>Path of the Prometheus endpoint on the HTTP listener. Default "/metrics".</summary>
    public string Path { get; set; } = "/metrics";

    /// <summary>Longest a scrape waits for the collection (observable callbacks included) before answering 503.
    /// Default 5 s, below Prometheus' default scrape timeout of 10 s.</summary>
    public TimeSpan CollectTimeout { get; set; } = TimeSpan.FromSeconds(5);
}
