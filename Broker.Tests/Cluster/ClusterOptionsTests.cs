using FluentAssertions;
using Xunit;
using Microsoft.Extensions.Configuration;
using OmniBroker.Cluster;
using OmniBroker.Tests.Storage;
using OmniBroker.Tests.Support;

namespace OmniBroker.Tests.Cluster;

public sealed class ClusterOptionsTests
{
    private static (ClusterOptions? Options, List<string> Errors) Load(params (string Key, string Value)[] values)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();
        var errors = new List<string>();
        return (ClusterOptions.Load(configuration, errors), errors);
    }

    [Fact]
    public void Load_NoClusterSection_SingleNode()
    {
        var (options, errors) = Load();
        options.Should().BeNull();
        errors.Should().BeEmpty();
    }

    [Fact]
    public void Load_UrlsAndNodeId_ClusterModeWithDefaults()
    {
        var (options, errors) = Load(("Cluster:Nats:Urls", "nats://127.0.0.1:4222, nats://127.0.0.1:4223"), ("Cluster:NodeId", "node-1"));
        errors.Should().BeEmpty();
        options!.NodeId.Should().Be("node-1");
        options.Replicas.Should().Be(1);
        options.NodeTimeout.Should().Be(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void Load_MissingTlsAndCredsFiles_OneErrorPerKey()
    {
        var (options, errors) = Load(("Cluster:Nats:Urls", "tls://127.0.0.1:4222"), ("Cluster:NodeId", "n1"),
            ("Cluster:Nats:TlsCaFile", "/nonexistent/ca.crt"), ("Cluster:Nats:TlsCertFile", "/nonexistent/c.crt"),
            ("Cluster:Nats:TlsKeyFile", "/nonexistent/c.key"), ("Cluster:Nats:CredsFile", "/nonexistent/n.creds"));
        options.Should().BeNull();
        errors.Should().HaveCount(4).And.OnlyContain(e => e.Contains("does not exist", StringComparison.Ordinal));
        errors.Select(e => e[..e.IndexOf(": ", StringComparison.Ordinal)]).Should().BeEquivalentTo(
            "Cluster:Nats:TlsCaFile", "Cluster:Nats:TlsCertFile", "Cluster:Nats:TlsKeyFile", "Cluster:Nats:CredsFile");
    }

    [Fact]
    public void Load_CertWithoutKey_ErrorNamesKeyFile()
    {
        var cert = Path.GetTempFileName();
        try
        {
            var (options, errors) = Load(("Cluster:Nats:Urls", "tls://127.0.0.1:4222"), ("Cluster:NodeId", "n1"), ("Cluster:Nats:TlsCertFile", cert));
            options.Should().BeNull();
            errors.Should().ContainSingle().Which.Should().StartWith("Cluster:Nats:TlsKeyFile: required with Cluster:Nats:TlsCertFile");
        }
        finally
        {
            File.Delete(cert);
        }
    }

    [Fact]
    public void Load_BadValues_EveryErrorNamesItsKey()
    {
        var (options, errors) = Load(("Cluster:Nats:Urls", "http://x"), ("Cluster:NodeId", "no spaces"), ("Cluster:Replicas", "9"),
            ("Cluster:NodeTimeout", "soon"), ("Cluster:Nats:Token", "t"), ("Cluster:Mode", "x"));
        options.Should().BeNull();
        errors.Should().Contain(e => e.StartsWith("Cluster:Nats:Urls:", StringComparison.Ordinal));
        errors.Should().Contain(e => e.StartsWith("Cluster:NodeId:", StringComparison.Ordinal));
        errors.Should().Contain(e => e.StartsWith("Cluster:Replicas:", StringComparison.Ordinal));
        errors.Should().Contain(e => e.StartsWith("Cluster:NodeTimeout:", StringComparison.Ordinal));
        errors.Should().Contain(e => e.StartsWith("Cluster:Nats:Token:", StringComparison.Ordinal));
        errors.Should().Contain(e => e.StartsWith("Cluster:Mode:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task HostStart_BadClusterKeys_RefusedWithEveryKeyNamed()
    {
        var root = TempDirectory.Create("omnibroker-cluster-config");
        try
        {
            var policies = Path.Combine(root, "policies");
            Directory.CreateDirectory(policies);
            File.WriteAllText(Path.Combine(policies, "p.yaml"), "version: 1\nrules: []\n");
            using var broker = BrokerHostProcess.Launch(root, BrokerHostProcess.FreePort(), policies,
                "--Cluster:Nats:Urls=nats://127.0.0.1:1", "--Cluster:Replicas=0");
            var exitCode = await broker.WaitForExitAsync(TimeSpan.FromSeconds(90));

            exitCode.Should().NotBe(0, broker.Describe());
            broker.Output.Should().Contain(l => l.Contains("Cluster:NodeId: required", StringComparison.Ordinal), broker.Describe());
            broker.Output.Should().Contain(l => l.Contains("Cluster:Replicas:", StringComparison.Ordinal), broker.Describe());
            broker.Output.Should().NotContain(l => l.Contains("[6000]", StringComparison.Ordinal), "nothing listens");
        }
        finally
        {
            TempDirectory.Delete(root);
        }
    }

    [Fact]
    public void Load_UrlsWithoutNodeId_ErrorNamesNodeId()
    {
        var (_, errors) = Load(("Cluster:Nats:Urls", "nats://127.0.0.1:4222"));
        errors.Should().ContainSingle().Which.Should().StartWith("Cluster:NodeId: required");
    }
}
