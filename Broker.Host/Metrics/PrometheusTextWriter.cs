using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Text;
using OpenTelemetry.Metrics;

namespace OmniBroker.Host.Metrics;

/// <summary>
/// Renders OpenTelemetry metrics (cumulative temporality) in the Prometheus text exposition format 0.0.4:
/// <c># HELP</c> / <c># TYPE</c> per family, counters as <c>_total</c>, gauges, and histograms as cumulative
/// <c>_bucket{le=...}</c> series ending in <c>le="+Inf"</c> plus <c>_sum</c> and <c>_count</c>. No timestamps:
/// Prometheus stamps the scrape. The per-metric header bytes are computed once per <see cref="Metric"/>.
/// </summary>
internal sealed class PrometheusTextWriter
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private readonly ArrayBufferWriter<byte> _buffer = new(16 * 1024);
    private readonly Dictionary<Metric, Family?> _families = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<string> _writtenNames = new(StringComparer.Ordinal);
    private readonly Dictionary<string, byte[]> _labelNames = new(StringComparer.Ordinal);

    public ReadOnlySpan<byte> Written => _buffer.WrittenSpan;

    public void Reset()
    {
        _buffer.ResetWrittenCount();
        _writtenNames.Clear();
    }

    private sealed class Family(string name, byte[] header, byte[] name8)
    {
        public string Name { get; } = name;
        public byte[] Header { get; } = header;
        public byte[] Name8 { get; } = name8;
    }

    public void Write(Metric metric)
    {
        if (!_families.TryGetValue(metric, out var family))
        {
            family = CreateFamily(metric);
            _families[metric] = family;
        }

        // Unsupported type, or a second instrument mapping to a name already written this scrape: a repeated
        // family would make the whole exposition invalid, so only the first is kept.
        if (family is null || !_writtenNames.Add(family.Name))
        {
            return;
        }

        Append(family.Header);
        var type = metric.MetricType;
        foreach (ref readonly var point in metric.GetMetricPoints())
        {
            switch (type)
            {
                case MetricType.LongSum:
                case MetricType.LongSumNonMonotonic:
                    WriteSample(family.Name8, default, in point, null);
                    WriteLong(point.GetSumLong());
                    AppendNewLine();
                    break;
                case MetricType.DoubleSum:
                case MetricType.DoubleSumNonMonotonic:
                    WriteSample(family.Name8, default, in point, null);
                    WriteDouble(point.GetSumDouble());
                    AppendNewLine();
                    break;
                case MetricType.LongGauge:
                    WriteSample(family.Name8, default, in point, null);
                    WriteLong(point.GetGaugeLastValueLong());
                    AppendNewLine();
                    break;
                case MetricType.DoubleGauge:
                    WriteSample(family.Name8, default, in point, null);
                    WriteDouble(point.GetGaugeLastValueDouble());
                    AppendNewLine();
                    break;
                case MetricType.Histogram:
                    WriteHistogram(family, in point);
                    break;
            }
        }
    }

    private void WriteHistogram(Family family, in MetricPoint point)
    {
        long cumulative = 0;
        foreach (var bucket in point.GetHistogramBuckets())
        {
            // OpenTelemetry counts per bucket; Prometheus buckets are cumulative (count of values <= le).
            cumulative += bucket.BucketCount;
            WriteSample(family.Name8, "_bucket"u8, in point, bucket.ExplicitBound);
            WriteLong(cumulative);
            AppendNewLine();
        }

        WriteSample(family.Name8, "_sum"u8, in point, null);
        WriteDouble(point.GetHistogramSum());
        AppendNewLine();
        WriteSample(family.Name8, "_count"u8, in point, null);
        WriteLong(point.GetHistogramCount());
        AppendNewLine();
    }

    /// <summary>Writes <c>name{labels} </c> (with the trailing space before the value).</summary>
    private void WriteSample(byte[] name, ReadOnlySpan<byte> suffix, in MetricPoint point, double? le)
    {
        Append(name);
        Append(suffix);
        bool first = true;
        foreach (var tag in point.Tags)
        {
            Append(first ? "{"u8 : ","u8);
            first = false;
            Append(LabelName(tag.Key));
            Append("=\""u8);
            WriteEscapedLabelValue(FormatTagValue(tag.Value));
            Append("\""u8);
        }

        if (le is { } bound)
        {
            Append(first ? "{"u8 : ","u8);
            first = false;
            Append("le=\""u8);
            WriteDouble(bound);
            Append("\""u8);
        }

        if (!first)
        {
            Append("}"u8);
        }

        Append(" "u8);
    }

    private byte[] LabelName(string key)
    {
        if (!_labelNames.TryGetValue(key, out var bytes))
        {
            bytes = Encoding.UTF8.GetBytes(PrometheusNaming.SanitizeLabelName(key));
            _labelNames[key] = bytes;
        }

        return bytes;
    }

    private static string FormatTagValue(object? value) => value switch
    {
        null => "",
        string s => s,
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static Family? CreateFamily(Metric metric)
    {
        var type = PrometheusNaming.TypeName(metric.MetricType);
        if (type is null)
        {
            return null;
        }

        var name = PrometheusNaming.MetricName(metric.Name, metric.Unit, metric.MetricType);
        var header = new StringBuilder();
        if (!string.IsNullOrEmpty(metric.Description))
        {
            header.Append("# HELP ").Append(name).Append(' ').Append(EscapeHelp(metric.Description)).Append('\n');
        }

        header.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        return new Family(name, Encoding.UTF8.GetBytes(header.ToString()), Encoding.UTF8.GetBytes(name));
    }

    /// <summary>HELP text escapes only backslash and line feed.</summary>
    internal static string EscapeHelp(string text) =>
        text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    /// <summary>Label values escape backslash, double quote and line feed.</summary>
    internal static string EscapeLabelValue(string value)
    {
        if (value.AsSpan().IndexOfAny('\\', '"', '\n') < 0)
        {
            return value;
        }

        return value.Replace("\\", "\\\\", StringComparison.Ordinal)
            .Replace("\"", "\\\"", StringComparison.Ordinal)
            .Replace("\n", "\\n", StringComparison.Ordinal);
    }

    private void WriteEscapedLabelValue(string value)
    {
        var escaped = EscapeLabelValue(value);
        int max = Encoding.UTF8.GetMaxByteCount(escaped.Length);
        int n = Encoding.UTF8.GetBytes(escaped, _buffer.GetSpan(max));
        _buffer.Advance(n);
    }

    private void WriteLong(long value)
    {
        var span = _buffer.GetSpan(20);
        Utf8Formatter.TryFormat(value, span, out int n);
        _buffer.Advance(n);
    }

    /// <summary>Go ParseFloat syntax: +Inf, -Inf, NaN, otherwise the shortest round-trip form.</summary>
    private void WriteDouble(double value)
    {
        if (double.IsPositiveInfinity(value))
        {
            Append("+Inf"u8);
        }
        else if (double.IsNegativeInfinity(value))
        {
            Append("-Inf"u8);
        }
        else if (double.IsNaN(value))
        {
            Append("NaN"u8);
        }
        else
        {
            var span = _buffer.GetSpan(32);
            value.TryFormat(span, out int n, "R", CultureInfo.InvariantCulture);
            _buffer.Advance(n);
        }
    }

    private void Append(ReadOnlySpan<byte> bytes) => _buffer.Write(bytes);

    private void AppendNewLine() => _buffer.Write("\n"u8);
}
