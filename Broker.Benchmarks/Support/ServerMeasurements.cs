using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace OmniBroker.Benchmarks.Support;

/// <summary>
/// Measurements BenchmarkDotNet cannot take itself (the broker is another process): the benchmark process appends
/// them to a file in the temp directory and prints them; <see cref="ServerMeasurementColumn"/> shows them in the
/// summary table of the host process. A record is keyed by benchmark type, method and parameter values; records
/// from several launches of one run are averaged, weighted by how many operations each covered.
/// </summary>
internal static class ServerMeasurements
{
    private static readonly string s_file = Path.Combine(Path.GetTempPath(), "omnibroker-benchmarks", "server-measurements.tsv");

    public static void Record(Type benchmarkType, string method, string metric, double value, long weight, params (string Name, object Value)[] parameters)
    {
        string key = Key(benchmarkType.Name, method, parameters.Select(p => (p.Name, Convert.ToString(p.Value, CultureInfo.InvariantCulture) ?? "")));
        Directory.CreateDirectory(Path.GetDirectoryName(s_file)!);
        File.AppendAllText(s_file, string.Join('\t',
            DateTime.UtcNow.Ticks.ToString(CultureInfo.InvariantCulture), key, metric,
            value.ToString("R", CultureInfo.InvariantCulture), weight.ToString(CultureInfo.InvariantCulture)) + "\n");
        Console.WriteLine($"// {metric} = {value.ToString("0.###", CultureInfo.InvariantCulture)} ({key}, over {weight})");
    }

    /// <summary>Weighted mean of the records since <paramref name="since"/>, or null.</summary>
    public static double? Read(BenchmarkCase benchmarkCase, string metric, DateTime since)
    {
        if (!File.Exists(s_file))
        {
            return null;
        }

        string key = Key(benchmarkCase.Descriptor.Type.Name, benchmarkCase.Descriptor.WorkloadMethod.Name,
            benchmarkCase.Parameters.Items.Select(p => (p.Name, Convert.ToString(p.Value, CultureInfo.InvariantCulture) ?? "")));
        double sum = 0;
        long weights = 0;
        foreach (string line in File.ReadLines(s_file))
        {
            string[] f = line.Split('\t');
            if (f.Length == 5 && f[1] == key && f[2] == metric && long.Parse(f[0], CultureInfo.InvariantCulture) >= since.Ticks)
            {
                long w = long.Parse(f[4], CultureInfo.InvariantCulture);
                sum += double.Parse(f[3], CultureInfo.InvariantCulture) * w;
                weights += w;
            }
        }

        return weights > 0 ? sum / weights : null;
    }

    private static string Key(string type, string method, IEnumerable<(string Name, string Value)> parameters) =>
        $"{type}.{method}({string.Join(",", parameters.OrderBy(p => p.Name, StringComparer.Ordinal).Select(p => p.Name + "=" + p.Value))})";
}

/// <summary>A summary column showing one <see cref="ServerMeasurements"/> metric.</summary>
internal sealed class ServerMeasurementColumn(string metric, string legend, string format = "0.000") : IColumn
{
    private static readonly DateTime s_hostStart = Process.GetCurrentProcess().StartTime.ToUniversalTime();

    public string Id => nameof(ServerMeasurementColumn) + "." + metric;

    public string ColumnName => metric;

    public bool AlwaysShow => true;

    public ColumnCategory Category => ColumnCategory.Custom;

    public int PriorityInCategory => 0;

    public bool IsNumeric => true;

    public UnitType UnitType => UnitType.Dimensionless;

    public string Legend => legend;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, summary.Style);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) =>
        ServerMeasurements.Read(benchmarkCase, metric, s_hostStart) is { } value ? value.ToString(format, CultureInfo.InvariantCulture) : "n/a";

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    public bool IsAvailable(Summary summary) => true;
}
