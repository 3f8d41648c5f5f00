using System.Text;
using OpenTelemetry.Metrics;

namespace OmniBroker.Host.Metrics;

/// <summary>
/// OpenTelemetry instrument name + unit -> Prometheus metric name, following the OpenTelemetry
/// "Prometheus and OpenMetrics compatibility" rules: invalid characters become '_', the UCUM unit is spelled
/// out as a suffix (s -> _seconds, By -> _bytes, annotations like {message} dropped), monotonic sums get _total.
/// </summary>
internal static class PrometheusNaming
{
    public static string MetricName(string instrumentName, string? unit, MetricType type)
    {
        var name = SanitizeMetricName(instrumentName);
        var unitSuffix = UnitSuffix(unit, type);
        if (unitSuffix.Length > 0 && !name.EndsWith("_" + unitSuffix, StringComparison.Ordinal))
        {
            // A name already carrying the unit ("..._bytes") keeps it once.
            name = name + "_" + unitSuffix;
        }

        if (IsCounter(type) && !name.EndsWith("_total", StringComparison.Ordinal))
        {
            name += "_total";
        }

        return name;
    }

    public static bool IsCounter(MetricType type) => type is MetricType.LongSum or MetricType.DoubleSum;

    /// <summary>Prometheus TYPE keyword; null for types this exporter does not render.</summary>
    public static string? TypeName(MetricType type) => type switch
    {
        MetricType.LongSum or MetricType.DoubleSum => "counter",
        MetricType.LongSumNonMonotonic or MetricType.DoubleSumNonMonotonic or MetricType.LongGauge or MetricType.DoubleGauge => "gauge",
        MetricType.Histogram => "histogram",
        _ => null,
    };

    /// <summary>[a-zA-Z_:][a-zA-Z0-9_:]*, runs of '_' collapsed, no trailing '_'.</summary>
    public static string SanitizeMetricName(string name) => Sanitize(name, allowColon: true);

    /// <summary>[a-zA-Z_][a-zA-Z0-9_]*.</summary>
    public static string SanitizeLabelName(string name) => Sanitize(name, allowColon: false);

    private static string Sanitize(string name, bool allowColon)
    {
        if (name.Length == 0)
        {
            return "_";
        }

        var sb = new StringBuilder(name.Length + 1);
        if (char.IsAsciiDigit(name[0]))
        {
            sb.Append('_');
        }

        foreach (char c in name)
        {
            bool ok = char.IsAsciiLetterOrDigit(c) || c == '_' || (allowColon && c == ':');
            char o = ok ? c : '_';
            if (o == '_' && sb.Length > 0 && sb[^1] == '_')
            {
                continue;
            }

            sb.Append(o);
        }

        while (sb.Length > 1 && sb[^1] == '_')
        {
            sb.Length--;
        }

        return sb.ToString();
    }

    /// <summary>The Prometheus spelling of a UCUM unit; empty for dimensionless or annotation-only units.</summary>
    public static string UnitSuffix(string? unit, MetricType type)
    {
        if (string.IsNullOrWhiteSpace(unit))
        {
            return "";
        }

        // Annotations ("{message}") carry no unit.
        var u = StripAnnotations(unit).Trim();
        if (u.Length == 0)
        {
            return "";
        }

        if (u == "1")
        {
            // Dimensionless: only gauges read naturally as a ratio.
            return TypeName(type) == "gauge" ? "ratio" : "";
        }

        int slash = u.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            var num = u[..slash];
            var den = u[(slash + 1)..];
            var n = num.Length == 0 ? "" : MapUnit(num);
            var d = MapPerUnit(den);
            return n.Length == 0 ? "per_" + d : n + "_per_" + d;
        }

        return MapUnit(u);
    }

    private static string StripAnnotations(string unit)
    {
        if (!unit.Contains('{', StringComparison.Ordinal))
        {
            return unit;
        }

        var sb = new StringBuilder(unit.Length);
        int depth = 0;
        foreach (char c in unit)
        {
            if (c == '{')
            {
                depth++;
            }
            else if (c == '}' && depth > 0)
            {
                depth--;
            }
            else if (depth == 0)
            {
                sb.Append(c);
            }
        }

        return sb.ToString();
    }

    private static string MapUnit(string u) => u switch
    {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tebibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        _ => SanitizeLabelName(u).Trim('_'),
    };

    private static string MapPerUnit(string u) => u switch
    {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => SanitizeLabelName(u).Trim('_'),
    };
}
