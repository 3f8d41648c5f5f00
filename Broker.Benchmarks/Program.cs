using BenchmarkDotNet.Running;

namespace OmniBroker.Benchmarks;

// Every benchmark class in this assembly; pick with --filter, e.g.
//   dotnet run -c Release --project Broker.Benchmarks -- --filter '*Handshake*'
internal static class BenchmarkProgram
{
    public static int Main(string[] args)
    {
        // Load tools beside the BenchmarkDotNet suites (each compares with Mosquitto in the same run).
        switch (args.FirstOrDefault())
        {
            case "durable-qos1":
                DurableQos1Load.RunAsync(args).GetAwaiter().GetResult();
                return 0;
            case "durable-startup":
                DurableStartupLoad.RunAsync(args).GetAwaiter().GetResult();
                return 0;
        }
        if (args is ["load", .. var load])
        {
            // The publish load generator (Load/LoadGenerator.cs): scenarios beside Mosquitto, loss counted.
            return Load.LoadGenerator.RunAsync(load).GetAwaiter().GetResult();
        }
        if (args is [ConnectionStorm.ChildCommand, .. var storm])
        {
            // One process's share of the devices of a reconnect storm (started by 'conn storm').
            return ConnectionStorm.ChildAsync(storm).GetAwaiter().GetResult();
        }
        if (args is [ConnectionLoad.Command, .. var connection])
        {
            // Handshake CPU, idle memory and reconnect storm beside Mosquitto (issue 13).
            return ConnectionLoad.RunAsync(connection).GetAwaiter().GetResult();
        }
        if (args is [ClusterLoad.Command, .. var clusterArgs])
        {
            // Cross-node rates, latency and session moves on three nodes beside one (issue 15).
            return ClusterLoad.RunAsync(clusterArgs).GetAwaiter().GetResult();
        }
        if (args is ["est-burst", .. var rest])
        {
            // A load tool, not a BenchmarkDotNet benchmark: one burst of EST enrollments (docs/benchmarks.md).
            return EstEnrollmentBurst.RunAsync(rest).GetAwaiter().GetResult();
        }

        // The MQTTnet server baseline runs as its own process, started by BrokerFixture.
        if (args.Length > 0 && args[0] == Support.MqttNetServerHost.Command)
        {
            return Support.MqttNetServerHost.RunAsync(args).GetAwaiter().GetResult();
        }

        if (args.Length > 0 && args[0] == Support.SslStreamFloorHost.Command)
        {
            return Support.SslStreamFloorHost.RunAsync(args).GetAwaiter().GetResult();
        }

        BenchmarkSwitcher.FromAssembly(typeof(BenchmarkProgram).Assembly).Run(args);
        return 0;
    }
}
