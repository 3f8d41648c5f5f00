using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace OmniBroker.Tests.Metrics;

/// <summary>One sample line of a Prometheus text exposition.</summary>
internal sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

/// <summary>A small parser for the text format 0.0.4, enough to read values back in tests
/// (promtool does the strict validation).</summary>
internal sealed class Exposition
{
    private Exposition(string text, List<Sample> samples, Dictionary<string, string> types, Dictionary<string, string> help)
    {
        Text = text;
        Samples = samples;
        Types = types;
        Help = help;
    }

    public string Text { get; }

    public IReadOnlyList<Sample> Samples { get; }

    public IReadOnlyDictionary<string, string> Types { get; }

    public IReadOnlyDictionary<string, string> Help { get; }

    public static Exposition Parse(string text)
    {
        var samples = new List<Sample>();
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        var help = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0)
            {
                continue;
            }

            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line[7..].Split(' ');
                types[parts[0]] = parts[1];
                continue;
            }

            if (line.StartsWith("# HELP ", StringComparison.Ordinal))
            {
                var rest = line[7..];
                int sp = rest.IndexOf(' ', StringComparison.Ordinal);
                help[rest[..sp]] = rest[(sp + 1)..];
                continue;
            }

            if (line.StartsWith('#'))
            {
                continue;
            }

            samples.Add(ParseSample(line));
        }

        return new Exposition(text, samples, types, help);
    }

    private static Sample ParseSample(string line)
    {
        int i = 0;
        while (i < line.Length && line[i] != '{' && line[i] != ' ')
        {
            i++;
        }

        var name = line[..i];
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (line[i] != '}')
            {
                int eq = line.IndexOf('=', i);
                var key = line[i..eq];
                i = eq + 2; // skip ="
                var value = new StringBuilder();
                while (line[i] != '"')
                {
                    if (line[i] == '\\')
                    {
                        i++;
                        value.Append(line[i] switch { 'n' => '\n', var c => c });
                    }
                    else
                    {
                        value.Append(line[i]);
                    }

                    i++;
                }

                i++; // closing quote
                labels[key] = value.ToString();
                if (line[i] == ',')
                {
                    i++;
                }
            }

            i++; // '}'
        }

        var valueText = line[(i + 1)..].Split(' ')[0];
        double v = valueText switch
        {
            "+Inf" => double.PositiveInfinity,
            "-Inf" => double.NegativeInfinity,
            "NaN" => double.NaN,
            _ => double.Parse(valueText, NumberStyles.Float, CultureInfo.InvariantCulture),
        };
        return new Sample(name, labels, v);
    }

    /// <summary>Samples named <paramref name="name"/> whose labels include all of <paramref name="labels"/> ("k=v").</summary>
    public IEnumerable<Sample> Find(string name, params string[] labels) =>
        Samples.Where(s => s.Name == name && labels.All(l =>
        {
            int eq = l.IndexOf('=', StringComparison.Ordinal);
            return s.Labels.TryGetValue(l[..eq], out var v) && v == l[(eq + 1)..];
        }));

    /// <summary>The value of the one sample matching; fails when none or several match.</summary>
    public double Value(string name, params string[] labels)
    {
        var found = Find(name, labels).ToList();
        if (found.Count != 1)
        {
            throw new InvalidOperationException($"expected exactly one sample {name}{{{string.Join(",", labels)}}}, found {found.Count}:\n{Text}");
        }

        return found[0].Value;
    }

    /// <summary>The value of the matching sample, or 0 when the series does not exist yet.</summary>
    public double ValueOrZero(string name, params string[] labels)
    {
        var found = Find(name, labels).ToList();
        return found.Count == 0 ? 0 : found.Single().Value;
    }
}

/// <summary>Runs the real <c>promtool check metrics</c> (Debian package prometheus) on an exposition.</summary>
internal static class Promtool
{
    public static (int ExitCode, string Output) CheckMetrics(string exposition)
    {
        var psi = new ProcessStartInfo("promtool", "check metrics")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("promtool did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardInput.Write(exposition);
        process.StandardInput.Close();
        if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            process.Kill();
            throw new TimeoutException("promtool check metrics did not finish within 60 s");
        }

        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
