using System.Diagnostics.Metrics;
using System.Text;
using FluentAssertions;
using OmniBroker.Host.Metrics;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using Xunit;

namespace OmniBroker.Tests.Metrics;

/// <summary>The pull exporter over a private meter per test, so nothing else in the process records into it.</summary>
public sealed class PrometheusExporterTests : IDisposable
{
    private readonly Meter _meter = new("OmniBroker.Tests.Exporter." + Guid.NewGuid().ToString("N"));
    private readonly PrometheusPullExporter _exporter = new();
    private readonly MeterProvider _provider;

    public PrometheusExporterTests()
    {
        _provider = Sdk.CreateMeterProviderBuilder()
            .AddMeter(_meter.Name)
            .AddReader(new BaseExportingMetricReader(_exporter))
            .Build();
    }

    public void Dispose()
    {
        _provider.Dispose();
        _meter.Dispose();
    }

    private string ScrapeText()
    {
        var bytes = _exporter.Scrape(10_000);
        bytes.Should().NotBeNull("the collection must finish");
        return Encoding.UTF8.GetString(bytes!);
    }

    private Exposition Scrape() => Exposition.Parse(ScrapeText());

    [Fact]
    public void Counter_WithUnitAnnotation_RendersTotalSuffixHelpTypeAndLabels()
    {
        var counter = _meter.CreateCounter<long>("test.requests", "{request}", "Requests handled.");
        counter.Add(3, new KeyValuePair<string, object?>("method", "get"));
        counter.Add(2, new KeyValuePair<string, object?>("method", "get"));
        counter.Add(1, new KeyValuePair<string, object?>("method", "put"));

        var text = ScrapeText();

        text.Should().Contain("# HELP test_requests_total Requests handled.\n");
        text.Should().Contain("# TYPE test_requests_total counter\n");
        text.Should().Contain("test_requests_total{method=\"get\"} 5\n");
        text.Should().Contain("test_requests_total{method=\"put\"} 1\n");
    }

    [Fact]
    public void Counter_InBytes_GetsBytesUnitBeforeTotal()
    {
        _meter.CreateCounter<long>("test.payload", "By", "Payload.").Add(1024);

        Scrape().Value("test_payload_bytes_total").Should().Be(1024);
    }

    [Fact]
    public void Counter_ScrapedTwice_IsCumulative()
    {
        var counter = _meter.CreateCounter<long>("test.events", "", "Events.");
        counter.Add(4);
        Scrape().Value("test_events_total").Should().Be(4);

        counter.Add(6);
        Scrape().Value("test_events_total").Should().Be(10);
    }

    [Fact]
    public void Histogram_Buckets_AreCumulativeEndWithInfAndHaveSumAndCount()
    {
        var histogram = _meter.CreateHistogram("test.latency", "s", "Latency.", tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.1, 1] });
        foreach (var v in new[] { 0.003, 0.004, 0.2, 0.5, 20 })
        {
            histogram.Record(v);
        }

        var e = Scrape();

        e.Types["test_latency_seconds"].Should().Be("histogram");
        e.Value("test_latency_seconds_bucket", "le=0.005").Should().Be(2);
        e.Value("test_latency_seconds_bucket", "le=0.1").Should().Be(2);
        e.Value("test_latency_seconds_bucket", "le=1").Should().Be(4);
        e.Value("test_latency_seconds_bucket", "le=+Inf").Should().Be(5);
        e.Value("test_latency_seconds_count").Should().Be(5);
        e.Value("test_latency_seconds_sum").Should().BeApproximately(20.707, 1e-9);
        // Bucket lines come in increasing le order, +Inf last, as the format requires.
        var les = e.Find("test_latency_seconds_bucket").Select(s => s.Labels["le"]).ToList();
        les.Should().Equal("0.005", "0.1", "1", "+Inf");
    }

    [Fact]
    public void Histogram_WithTags_PutsLeAfterTheTags()
    {
        var histogram = _meter.CreateHistogram("test.op.duration", "s", "Op.", tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [1] });
        histogram.Record(0.5, new KeyValuePair<string, object?>("outcome", "success"));

        ScrapeText().Should().Contain("test_op_duration_seconds_bucket{outcome=\"success\",le=\"1\"} 1\n");
    }

    [Fact]
    public void LabelValues_WithQuoteBackslashAndNewline_AreEscaped()
    {
        var counter = _meter.CreateCounter<long>("test.escaped", "", "Help with a \\ backslash\nand a new line.");
        counter.Add(1, new KeyValuePair<string, object?>("issuer", "CN=\"Evil\\CA\"\nO=x"));

        var text = ScrapeText();

        text.Should().Contain("test_escaped_total{issuer=\"CN=\\\"Evil\\\\CA\\\"\\nO=x\"} 1\n");
        text.Should().Contain("# HELP test_escaped_total Help with a \\\\ backslash\\nand a new line.\n");
        Exposition.Parse(text).Value("test_escaped_total").Should().Be(1);
        Exposition.Parse(text).Find("test_escaped_total").Single().Labels["issuer"].Should().Be("CN=\"Evil\\CA\"\nO=x");
    }

    [Fact]
    public void UpDownCounterAndObservableGauge_RenderAsGaugesWithoutTotal()
    {
        var updown = _meter.CreateUpDownCounter<long>("test.open", "{connection}", "Open.");
        updown.Add(5);
        updown.Add(-2);
        _meter.CreateObservableGauge("test.temperature", () => 21.5, "Cel", "Temperature.");
        _meter.CreateObservableGauge("test.fill", () => 0.25, "1", "Fill ratio.");

        var e = Scrape();

        e.Types["test_open"].Should().Be("gauge");
        e.Value("test_open").Should().Be(3);
        e.Types["test_temperature_celsius"].Should().Be("gauge");
        e.Value("test_temperature_celsius").Should().Be(21.5);
        e.Value("test_fill_ratio").Should().Be(0.25);
    }

    [Fact]
    public void InvalidCharactersInNamesAndLabelKeys_AreReplaced()
    {
        _meter.CreateCounter<long>("test.weird-name/x", "", "Weird.").Add(1, new KeyValuePair<string, object?>("label.with-dash", "v"));

        ScrapeText().Should().Contain("test_weird_name_x_total{label_with_dash=\"v\"} 1\n");
    }

    [Fact]
    public void Exposition_OfEveryKind_PassesPromtoolCheckMetrics()
    {
        _meter.CreateCounter<long>("test.requests", "{request}", "Requests.").Add(1, new KeyValuePair<string, object?>("code", "200"));
        _meter.CreateCounter<double>("test.work", "s", "Work done.").Add(0.5);
        _meter.CreateUpDownCounter<long>("test.open", "{connection}", "Open.").Add(1);
        _meter.CreateObservableGauge("test.queue", () => 7L, "{message}", "Queue depth.");
        _meter.CreateHistogram("test.latency", "s", "Latency.", tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.1] }).Record(0.05, new KeyValuePair<string, object?>("outcome", "ok\"x"));

        var text = ScrapeText();
        var (exit, output) = Promtool.CheckMetrics(text);

        exit.Should().Be(0, "promtool check metrics reported:\n{0}\non:\n{1}", output, text);
    }

    [Fact]
    public void Promtool_OnABrokenExposition_Fails()
    {
        // Guards the check above: promtool must really judge what it is given.
        var (exit, output) = Promtool.CheckMetrics("# TYPE x counter\nx 1\n");

        exit.Should().NotBe(0);
        output.Should().Contain("_total");
    }
}
