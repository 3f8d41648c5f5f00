using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using FluentAssertions;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Metrics;

/// <summary>The console log format switch, on the real <c>omnibroker</c> executable.</summary>
public sealed class LogFormatTests
{
    private const int MqttListeningEventId = 6000;

    /// <summary>Runs <c>omnibroker serve</c> on free loopback ports until it logs that the MQTT listener is up (or
    /// 60 s pass, or it exits), then stops it. Returns every stdout line and the exit code (null when it was stopped).</summary>
    private static async Task<(List<string> Lines, int? ExitCode, string Stderr)> ServeAsync(params string[] extraArgs)
    {
        var directory = Support.TempDirectory.Create("omnibroker-logs");
        try
        {
            var psi = new ProcessStartInfo("dotnet")
            {
                WorkingDirectory = directory,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var a in new[]
                     {
                         Path.Combine(AppContext.BaseDirectory, "omnibroker.dll"), "serve", "--data-dir", Path.Combine(directory, "data"),
                         "--port", "0", "--http-url", "http://127.0.0.1:0", "--Revocation:Mode=none",
                     }.Concat(extraArgs))
            {
                psi.ArgumentList.Add(a);
            }

            using var process = Process.Start(psi)!;
            var lines = new List<string>();
            var stderr = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var endOfOutput = false;
            try
            {
                while (true)
                {
                    var line = await process.StandardOutput.ReadLineAsync(timeout.Token);
                    if (line is null)
                    {
                        endOfOutput = true;
                        break;
                    }

                    lines.Add(line);
                    if (Regex.IsMatch(line, @"\[6000\]|""EventId"":6000"))
                    {
                        break;
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }

            int? exitCode = null;
            if (endOfOutput)
            {
                // stdout closes as the process exits: wait for the exit code.
                await process.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
            }

            if (process.HasExited)
            {
                exitCode = process.ExitCode;
            }
            else
            {
                process.Kill(entireProcessTree: true);
            }

            await process.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
            return (lines, exitCode, await stderr.WaitAsync(TimeSpan.FromSeconds(10)));
        }
        finally
        {
            Support.TempDirectory.Delete(directory);
        }
    }

    [Fact]
    public async Task Serve_WithLogFormatJson_WritesEveryLogEventAsOneJsonObjectPerLine()
    {
        var (lines, exitCode, stderr) = await ServeAsync("--log-format", "json");

        exitCode.Should().BeNull("the broker must still be running; stderr: {0}", stderr);
        var json = lines.Where(l => l.StartsWith('{')).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var listening = json.Should().ContainSingle(e => e.GetProperty("EventId").GetInt32() == MqttListeningEventId,
            "stdout was:\n{0}", string.Join('\n', lines)).Which;
        listening.GetProperty("LogLevel").GetString().Should().Be("Information");
        listening.GetProperty("Category").GetString().Should().StartWith("OmniBroker");
        listening.GetProperty("Message").GetString().Should().NotBeNullOrEmpty();
        listening.GetProperty("State").ValueKind.Should().Be(JsonValueKind.Object, "structured fields are kept");
        lines.Should().NotContain(l => Regex.IsMatch(l, @"^\d\d:\d\d:\d\d (info|warn|fail)"), "no event may be written in the simple format");
    }

    [Fact]
    public async Task Serve_ByDefault_WritesSingleLineSimpleFormat()
    {
        var (lines, exitCode, stderr) = await ServeAsync();

        exitCode.Should().BeNull("the broker must still be running; stderr: {0}", stderr);
        lines.Should().Contain(l => Regex.IsMatch(l, @"^\d\d:\d\d:\d\d info: .*\[6000\]"), "stdout was:\n{0}", string.Join('\n', lines));
        lines.Should().NotContain(l => l.StartsWith("{\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Serve_WithUnknownLogFormat_ExitsWithConfigurationError()
    {
        var (_, exitCode, stderr) = await ServeAsync("--log-format", "xml");

        exitCode.Should().Be(2);
        stderr.Should().Contain("Logging:Console:FormatterName").And.Contain("'xml'");
    }
}
