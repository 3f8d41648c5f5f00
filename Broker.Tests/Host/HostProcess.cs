using System.Diagnostics;

namespace OmniBroker.Tests.Host;

/// <summary>Runs the real <c>omnibroker</c> executable (from the test output) until it exits, bounded.</summary>
internal static class HostProcess
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
    }

    /// <summary>Starts <c>omnibroker serve</c> with <paramref name="args"/> in <paramref name="workingDirectory"/>; a
    /// process still running after <paramref name="timeout"/> (default 60 s) is killed and reported as exit -1.</summary>
    public static async Task<Result> RunAsync(string workingDirectory, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "omnibroker.dll"));
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        var exitCode = -1;
        try
        {
            await process.WaitForExitAsync(cts.Token);
            exitCode = process.ExitCode;
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        }
        return new Result(exitCode, await stdout.WaitAsync(TimeSpan.FromSeconds(10)), await stderr.WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
