using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Policy;
using OmniBroker.Policy.Certificates;
using OmniBroker.Policy.Compilation;
using OmniBroker.Policy.Matching;

namespace OmniBroker.Tests.Policy;

/// <summary>Compiles policies from text and resolves grants the way the broker does.</summary>
internal static class TestPolicy
{
    public const string Extensions = """
        extensions:
          deviceType: 1.3.6.1.4.1.59999.1.1
        """;

    /// <summary>Compiles one file named "test.yaml"; fails the test with every error if it is invalid.</summary>
    public static CompiledPolicy Compile(string yaml) => Compile(("test.yaml", yaml));

    public static CompiledPolicy Compile(params (string Path, string Yaml)[] files)
    {
        var result = PolicyLoader.Load([.. files.Select(f => new PolicySource(f.Path, f.Yaml))], ".");
        if (result.Policy is null)
        {
            throw new InvalidOperationException("policy invalid:\n" + string.Join("\n", result.Errors));
        }

        return result.Policy;
    }

    public static IReadOnlyList<PolicyError> Errors(params (string Path, string Yaml)[] files) =>
        PolicyLoader.Load([.. files.Select(f => new PolicySource(f.Path, f.Yaml))], ".").Errors;

    public static IReadOnlyList<PolicyError> Errors(string yaml) => Errors(("test.yaml", yaml));

    public static ClientGrants Grants(this CompiledPolicy policy, X509Certificate2? certificate, string? clientId = null) =>
        ClientGrants.Resolve(policy, ClientAttributes.From(certificate, clientId));

    public static ConnectDecision Connect(this CompiledPolicy policy, X509Certificate2? certificate, string clientId) =>
        PolicyEvaluator.AuthorizeConnect(policy, new MqttClientInfo(clientId, MqttProtocolVersion.V500, certificate, null, null));

    public static PolicyDecision Explain(
        this CompiledPolicy policy, X509Certificate2? certificate, PolicyAction action, string? topic = null,
        MqttQos qos = MqttQos.AtMostOnce, bool retain = false, string? clientId = null) =>
        PolicyEvaluator.Explain(policy, new PolicyQuery(certificate, clientId, action, topic, qos, retain));

    /// <summary>A single allow rule for one attribute condition (YAML fragment) granting publish on "granted/topic".</summary>
    public static CompiledPolicy MatchPolicy(string attribute, string conditionYaml) => Compile($$"""
        {{Extensions}}
        rules:
          - id: probe
            effect: allow
            actions: [publish]
            match:
              {{attribute}}: {{conditionYaml}}
            topics: [granted/topic]
        """);

    public static bool Matches(this CompiledPolicy policy, X509Certificate2 certificate) =>
        policy.Grants(certificate).CanPublish("granted/topic", MqttQos.AtMostOnce, false);

    /// <summary>The repository's policies/ directory (found from this source file, not from the build output).</summary>
    public static string RepositoryPolicies([CallerFilePath] string thisFile = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(thisFile)!, "..", "..", "policies"));
}

/// <summary>A temporary directory deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "omnibroker-policy-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Write(string relative, string text)
    {
        var file = System.IO.Path.Combine(Path, relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(file)!);
        File.WriteAllText(file, text);
        return file;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
