using System.Text;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Policy;
using OmniBroker.Policy.Compilation;

namespace OmniBroker.Fuzz.Targets;

/// <summary>
/// Policy YAML compiler (Broker.Policy, <c>PolicyLoader.Load</c> as a policy directory's file is loaded), then, when
/// the file compiles, a few questions to the compiled policy about the fixed device certificate. A broken policy is
/// reported as errors in the result (<see cref="PolicyLoadException"/> where a caller throws them): nothing escapes.
/// </summary>
internal static class PolicyTarget
{
    private const string Directory = "/fuzz/policies";

    private static readonly PolicyQuery[] s_queries =
    [
        new(FuzzPki.Leaf, "device-1", PolicyAction.Connect),
        new(FuzzPki.Leaf, "device-1", PolicyAction.Publish, "devices/device-1/telemetry", MqttQos.AtLeastOnce, Retain: true),
        new(FuzzPki.Leaf, "device-1", PolicyAction.Subscribe, "devices/+/commands/#"),
        new(FuzzPki.Leaf, "device-1", PolicyAction.Receive, "fleet/all"),
        new(null, null, PolicyAction.Admin),
    ];

    public static void Run(byte[] data)
    {
        PolicyLoadResult result;
        try
        {
            result = PolicyLoader.Load([new PolicySource(Directory + "/fuzz.yaml", Encoding.UTF8.GetString(data))], Directory);
        }
        catch (PolicyLoadException)
        {
            return;
        }

        if (result.Policy is { } policy)
        {
            foreach (PolicyQuery query in s_queries)
            {
                _ = PolicyEvaluator.Explain(policy, query).ToString();
            }
        }
    }
}
