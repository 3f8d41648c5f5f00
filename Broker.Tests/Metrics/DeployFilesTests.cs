using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using FluentAssertions;
using Xunit;

namespace OmniBroker.Tests.Metrics;

/// <summary>deploy/: the Prometheus config, alert rules (checked and unit-tested by the real promtool) and the
/// Grafana dashboard, and that every series they query is one the broker exports.</summary>
[Collection(MetricsCollection.Name)]
public sealed partial class DeployFilesTests
{
    private static string Deploy([CallerFilePath] string thisFile = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(thisFile)!, "..", "..", "deploy"));

    private static (int ExitCode, string Output) RunPromtool(params string[] args)
    {
        var psi = new ProcessStartInfo("promtool") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Deploy() };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(120)))
        {
            process.Kill();
            throw new TimeoutException("promtool " + string.Join(' ', args));
        }

        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    [Fact]
    public void AlertRules_PassPromtoolCheckRules()
    {
        var (exit, output) = RunPromtool("check", "rules", "alerts.yml");

        exit.Should().Be(0, output);
        output.Should().Contain("SUCCESS");
    }

    [Fact]
    public void AlertRules_UnitTests_PassPromtoolTestRules()
    {
        var (exit, output) = RunPromtool("test", "rules", "alerts.test.yml");

        exit.Should().Be(0, output);
    }

    [Fact]
    public void ScrapeConfig_PassesPromtoolCheckConfig()
    {
        var (exit, output) = RunPromtool("check", "config", "prometheus.yml");

        exit.Should().Be(0, output);
    }

    [Fact]
    public void AlertRules_CoverTheRequiredConditions()
    {
        var rules = File.ReadAllText(Path.Combine(Deploy(), "alerts.yml"));

        foreach (var alert in new[]
                 {
                     "OmniBrokerClientCertificatesExpiringSoon", "OmniBrokerCrlStale", "OmniBrokerOcspResponderFailing",
                     "OmniBrokerHandshakeFailureRatioHigh", "OmniBrokerPolicyReloadFailed",
                 })
        {
            rules.Should().Contain("alert: " + alert);
        }
    }

    [Fact]
    public void Dashboard_IsValidJsonWithPanelsAndQueries()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Deploy(), "grafana-dashboard.json")));
        var panels = doc.RootElement.GetProperty("panels").EnumerateArray().Where(p => p.GetProperty("type").GetString() != "row").ToList();

        panels.Should().HaveCountGreaterThanOrEqualTo(10);
        panels.Should().OnlyContain(p => p.GetProperty("targets").GetArrayLength() > 0);
        var titles = panels.Select(p => p.GetProperty("title").GetString()).ToList();
        titles.Should().Contain(["Refused TLS handshakes by reason", "Soonest client certificate expiry", "Authorization denials by action",
            "OCSP requests by result", "CRL age by issuer", "Dropped messages by reason", "Connections by protocol"]);
    }

    [Fact]
    public void AlertsAndDashboard_QueryOnlySeriesTheBrokerExports()
    {
        var exported = ExportedFamilies();
        var used = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var file in new[] { "alerts.yml", "alerts.test.yml", "grafana-dashboard.json" })
        {
            foreach (Match m in MetricName().Matches(File.ReadAllText(Path.Combine(Deploy(), file))))
            {
                used.Add(m.Value);
            }
        }

        used.Should().NotBeEmpty();
        foreach (var name in used)
        {
            var family = Regex.Replace(name, "_(bucket|sum|count)$", "");
            (exported.Contains(name) || exported.Contains(family)).Should().BeTrue("{0} is queried in deploy/ but not exported; exported: {1}",
                name, string.Join(", ", exported));
        }
    }

    /// <summary>The families <see cref="ComponentMetricsTests.FullExposition_WithEverySeriesPopulated_PassesPromtool"/>
    /// finds in a real scrape with every component populated.</summary>
    private static HashSet<string> ExportedFamilies() =>
        ComponentMetricsTests.ExportedSeries.Select(static n => Regex.Replace(n, "_bucket$", "")).ToHashSet(StringComparer.Ordinal);

    [GeneratedRegex(@"\bomnibroker_[a-z_]+[a-z]")]
    private static partial Regex MetricName();
}
