using BenchmarkDotNet.Running;

namespace OmniBroker.Benchmarks;

// Every benchmark class in this assembly; pick with --filter, e.g.
//   dotnet run -c Release --project Broker.Benchmarks -- --filter '*Handshake*'
internal static class BenchmarkProgram
{
    public static void Main(string[] args)
    {
        if (args is ["est-burst", .. var rest])
        {
            // A load tool, not a BenchmarkDotNet benchmark: one burst of EST enrollments (docs/benchmarks.md).
            Environment.ExitCode = EstEnrollmentBurst.RunAsync(rest).GetAwaiter().GetResult();
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(BenchmarkProgram).Assembly).Run(args);
    }
}
