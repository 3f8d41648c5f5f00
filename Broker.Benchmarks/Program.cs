using BenchmarkDotNet.Running;

namespace OmniBroker.Benchmarks;

// Every benchmark class in this assembly; pick with --filter, e.g.
//   dotnet run -c Release --project Broker.Benchmarks -- --filter '*Handshake*'
internal static class BenchmarkProgram
{
    public static void Main(string[] args) =>
        BenchmarkSwitcher.FromAssembly(typeof(BenchmarkProgram).Assembly).Run(args);
}
