using BenchmarkDotNet.Attributes;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Engine;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Benchmarks;

/// <summary>
/// Topic matching in the engine's subscription trie with 100,000 subscriptions: one per device
/// (devices/{id}/commands/#), plus a few hundred fleet-wide wildcard subscriptions (devices/+/status, +/{site}/#).
/// A publish matches a handful of them; the cost must follow the topic depth and the matches, not the 100,000.
/// The linear scan over every filter is the baseline the trie replaces.
///   dotnet run -c Release --project Broker.Benchmarks -- --filter '*TopicMatchBenchmarks*'
/// </summary>
[MemoryDiagnoser]
public class TopicMatchBenchmarks
{
    private const int Devices = 100_000 - 300;

    private readonly List<Subscription> _matches = new();
    private readonly List<SharedGroup> _groups = new();
    private SubscriptionIndex _index = null!;
    private string[] _filters = null!;

    [GlobalSetup]
    public void Setup()
    {
        _index = new SubscriptionIndex();
        var filters = new List<string>(100_000);
        for (var i = 0; i < Devices; i++)
        {
            Add($"device-{i}", $"devices/{i}/commands/#");
        }
        for (var i = 0; i < 100; i++)
        {
            Add($"monitor-{i}", "devices/+/status");
            Add($"site-{i}", $"+/site-{i}/#");
            Add($"worker-{i}", "$share/workers/devices/+/telemetry");
        }
        _filters = filters.ToArray();

        void Add(string clientId, string filter)
        {
            _index.Add(new Subscription(new MqttSession(clientId, 16), filter, new SubscriptionOptions(MqttQos.AtLeastOnce), 0));
            filters.Add(filter);
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _index.Dispose();

    /// <summary>A command to one device: one match among 100,000 subscriptions.</summary>
    [Benchmark]
    public int DeviceCommand() => Match("devices/42424/commands/reboot");

    /// <summary>A status report: matched by the 100 fleet monitors.</summary>
    [Benchmark]
    public int FleetStatus() => Match("devices/42424/status");

    /// <summary>Telemetry for a share group of 100 members: one group returned, no member list copied.</summary>
    [Benchmark]
    public int SharedTelemetry() => Match("devices/42424/telemetry");

    /// <summary>A topic nobody subscribed to.</summary>
    [Benchmark]
    public int NoMatch() => Match("factory/line-7/temperature");

    /// <summary>What the trie replaces: every filter tested against the topic.</summary>
    [Benchmark(Baseline = true)]
    public int LinearScanDeviceCommand()
    {
        var count = 0;
        foreach (var filter in _filters)
        {
            if (MqttTopic.Matches(filter, "devices/42424/commands/reboot"))
            {
                count++;
            }
        }
        return count;
    }

    private int Match(string topic)
    {
        _matches.Clear();
        _groups.Clear();
        _index.Match(topic, _matches, _groups);
        return _matches.Count + _groups.Count;
    }
}
