using BenchmarkDotNet.Running;

namespace OmniBroker.Benchmarks;

// Every benchmark class in this assembly; pick with --filter, e.g.
//   dotnet run -c Release --project Broker.Benchmarks -- --filter '*Handshake*'
internal static class BenchmarkProgram
{
    public static int Main(string[] args)
    {
        if (args is ["load", ..])
        {
            // The publish load generator (Load/LoadGenerator.cs): scenarios beside Mosquitto, loss counted.
            return Load.LoadGenerator.RunAsync(args[1..]).GetAwaiter().GetResult();
        }
        BenchmarkSwitcher.FromAssembly(typeof(BenchmarkProgram).Assembly).Run(args);
        return 0;
    }
}
