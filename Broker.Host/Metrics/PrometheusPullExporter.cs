using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace OmniBroker.Host.Metrics;

/// <summary>
/// Pull exporter: nothing is exported until a scrape calls <see cref="Scrape"/>, which asks the reader to collect
/// (observable callbacks run on this thread) and renders the batch in the Prometheus text format. Scrapes are
/// serialised: the reader's Collect and the shared render buffer are not reentrant.
/// </summary>
[ExportModes(ExportModes.Pull)]
internal sealed class PrometheusPullExporter : BaseExporter<Metric>, IPullMetricExporter
{
    private readonly Lock _scrapeLock = new();
    private readonly PrometheusTextWriter _writer = new();

    /// <summary>Set by <see cref="BaseExportingMetricReader"/> to its Collect.</summary>
    public Func<int, bool>? Collect { get; set; }

    public override ExportResult Export(in Batch<Metric> batch)
    {
        foreach (var metric in batch)
        {
            _writer.Write(metric);
        }

        return ExportResult.Success;
    }

    /// <summary>Collects and renders; null when the collection did not finish within <paramref name="timeoutMilliseconds"/>
    /// or the provider is gone.</summary>
    public byte[]? Scrape(int timeoutMilliseconds)
    {
        var collect = Collect;
        if (collect is null)
        {
            return null;
        }

        // Prometheus scrapes a few times a minute; a lock is cheaper than a second buffer and keeps Export simple.
        lock (_scrapeLock)
        {
            _writer.Reset();
            if (!collect(timeoutMilliseconds))
            {
                return null;
            }

            return _writer.Written.ToArray();
        }
    }
}
