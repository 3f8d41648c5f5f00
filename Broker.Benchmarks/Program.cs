using BenchmarkDotNet.Running;

namespace OmniBroker.Benchmarks;

// Every benchmark class in this assembly; pick with --filter, e.g.
//   dotnet run -c Release --project Broker.Benchmarks -- --filter '*Handshake*'
internal static class BenchmarkProgram
{
    public static void Main(string[] args)
    {
        // Load tools beside the BenchmarkDotNet suites (each compares with Mosquitto in the same run).
        switch (args.FirstOrDefault())
        {
            case "durable-qos1":
                DurableQos1Load.RunAsync(args).GetAwaiter().GetResult();
                return;
            case "durable-startup":
                DurableStartupLoad.RunAsync(args).GetAwaiter().GetResult();
                return;
        }
        if (args is ["est-burst", .. var rest])
        {
            // A load tool, not a BenchmarkDotNet benchmark: one burst of EST enrollments (docs/benchmarks.md).
            Environment.ExitCode = EstEnrollmentBurst.RunAsync(rest).GetAwaiter().GetResult();
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(BenchmarkProgram).Assembly).Run(args);
    }
}
