using System.Diagnostics;
using FluentAssertions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Policy;
using OmniBroker.Policy.Hosting;
using Xunit;

namespace OmniBroker.Tests.Policy;

public class PolicyReloadTests
{
    private const string AllowTelemetry = """
        rules:
          - id: connect
            effect: allow
            actions: [connect]
          - id: telemetry
            effect: allow
            actions: [publish]
            topics: ["devices/${cert.cn}/telemetry"]
        """;

    private const string AllowStatusToo = """
        rules:
          - id: status
            effect: allow
            actions: [publish]
            topics: ["devices/${cert.cn}/status"]
        """;

    private static MqttClientInfo Client(string id = "sensor-001") =>
        new(id, MqttProtocolVersion.V311, PolicyTestCerts.Sensor001, null, null);

    [Fact]
    public void Reload_BrokenFile_KeepsLastGood_AndReportsEveryError()
    {
        using var dir = new TempDirectory();
        dir.Write("main.yaml", AllowTelemetry);
        var authorizer = PolicyAuthorizer.Load(dir.Path);
        var before = authorizer.Version;
        int changed = 0;
        authorizer.PolicyChanged += () => changed++;

        dir.Write("broken.yaml", """
            rules:
              - id: x
                effect: allow
                actions: [publish, jump]
                topics: ["a/#/b"]
            """);
        dir.Write("broken2.yaml", "rules: [\n");
        var result = authorizer.Reload("test");

        result.Status.Should().Be(PolicyReloadStatus.Rejected);
        result.Version.Should().Be(before);
        result.Errors.Select(e => e.ToString()).Should().HaveCount(3).And.Satisfy(
            e => e.StartsWith(Path.Join(dir.Path, "broken.yaml") + ":4:") && e.Contains("unknown action 'jump'"),
            e => e.StartsWith(Path.Join(dir.Path, "broken.yaml") + ":5:") && e.Contains("'#' must be the last level"),
            e => e.StartsWith(Path.Join(dir.Path, "broken2.yaml") + ":") && e.Contains("invalid YAML"));
        authorizer.Version.Should().Be(before);
        changed.Should().Be(0);
        var decision = authorizer.AuthorizeConnect(Client());
        decision.Allowed.Should().BeTrue();
        decision.Grants!.CanPublish("devices/sensor-001/telemetry", MqttQos.AtMostOnce, false).Should().BeTrue();
    }

    [Fact]
    public void Reload_ValidChange_SwapsPolicy_AndRaisesPolicyChanged()
    {
        using var dir = new TempDirectory();
        dir.Write("main.yaml", AllowTelemetry);
        var authorizer = PolicyAuthorizer.Load(dir.Path);
        var oldGrants = authorizer.AuthorizeConnect(Client()).Grants!;
        var before = authorizer.Version;
        int changed = 0;
        authorizer.PolicyChanged += () => changed++;

        dir.Write("status.yaml", AllowStatusToo);
        var result = authorizer.Reload("test");

        result.Status.Should().Be(PolicyReloadStatus.Applied);
        changed.Should().Be(1);
        authorizer.Version.Generation.Should().Be(before.Generation + 1);
        authorizer.Version.ContentHash.Should().NotBe(before.ContentHash);
        authorizer.RuleCount.Should().Be(3);
        authorizer.AuthorizeConnect(Client()).Grants!.CanPublish("devices/sensor-001/status", MqttQos.AtMostOnce, false).Should().BeTrue();

        // Grants resolved before the swap keep answering from their own policy until the engine re-resolves them.
        oldGrants.CanPublish("devices/sensor-001/status", MqttQos.AtMostOnce, false).Should().BeFalse();
    }

    [Fact]
    public void Reload_UnchangedFiles_IsANoOp()
    {
        using var dir = new TempDirectory();
        dir.Write("main.yaml", AllowTelemetry);
        var authorizer = PolicyAuthorizer.Load(dir.Path);
        int changed = 0;
        authorizer.PolicyChanged += () => changed++;

        File.SetLastWriteTimeUtc(Path.Combine(dir.Path, "main.yaml"), DateTime.UtcNow.AddMinutes(1));
        var result = authorizer.Reload("touch");

        result.Status.Should().Be(PolicyReloadStatus.Unchanged);
        changed.Should().Be(0);
        authorizer.Version.Generation.Should().Be(1);
    }

    [Fact]
    public void Reload_AfterRejection_NextValidPolicyApplies()
    {
        using var dir = new TempDirectory();
        dir.Write("main.yaml", AllowTelemetry);
        var authorizer = PolicyAuthorizer.Load(dir.Path);
        dir.Write("status.yaml", "rules: [");
        authorizer.Reload().Status.Should().Be(PolicyReloadStatus.Rejected);

        dir.Write("status.yaml", AllowStatusToo);
        authorizer.Reload().Status.Should().Be(PolicyReloadStatus.Applied);
        authorizer.Version.Generation.Should().Be(2); // rejected loads do not consume a generation
    }

    [Fact]
    public void PolicyChanged_FailingSubscriber_DoesNotStopOthers()
    {
        using var dir = new TempDirectory();
        dir.Write("main.yaml", AllowTelemetry);
        var authorizer = PolicyAuthorizer.Load(dir.Path);
        bool second = false;
        authorizer.PolicyChanged += () => throw new InvalidOperationException("boom");
        authorizer.PolicyChanged += () => second = true;

        dir.Write("status.yaml", AllowStatusToo);
        authorizer.Reload().Status.Should().Be(PolicyReloadStatus.Applied);
        second.Should().BeTrue();
    }

    [Fact]
    public void Load_InvalidInitialPolicy_ThrowsWithEveryError()
    {
        using var dir = new TempDirectory();
        dir.Write("a.yaml", "rules:\n  - id: a\n    effect: nope\n    actions: [connect]\n  - id: b\n    effect: allow\n");

        var act = () => PolicyAuthorizer.Load(dir.Path);

        var ex = act.Should().Throw<PolicyLoadException>().Which;
        ex.Errors.Should().HaveCount(2);
        ex.Message.Should().Contain("invalid (2 errors)")
            .And.Contain("a.yaml:3:13: error: effect must be 'allow' or 'deny'")
            .And.Contain("a.yaml:5:5: error: rule 'b' has no 'actions'");
    }

    [Fact]
    public async Task ReloadService_FileChange_AppliesNewPolicy()
    {
        using var dir = new TempDirectory();
        dir.Write("main.yaml", AllowTelemetry);
        var authorizer = PolicyAuthorizer.Load(dir.Path);
        var changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        authorizer.PolicyChanged += () => changed.TrySetResult();
        using var service = new PolicyReloadService(
            authorizer,
            Options.Create(new PolicyOptions { Directory = dir.Path, ReloadDebounce = TimeSpan.FromMilliseconds(100), ReloadOnSighup = false }),
            NullLogger<PolicyReloadService>.Instance);
        await service.StartAsync(CancellationToken.None);
        try
        {
            // First a broken edit (rejected, nothing fires), then the fix.
            dir.Write("status.yaml", "rules: [");
            await Task.Delay(400);
            authorizer.RuleCount.Should().Be(2);
            dir.Write("status.yaml", AllowStatusToo);

            await changed.Task.WaitAsync(TimeSpan.FromSeconds(20));
            authorizer.RuleCount.Should().Be(3);
        }
        finally
        {
            await service.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task ReloadService_Sighup_ReloadsPolicy()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        using var dir = new TempDirectory();
        dir.Write("main.yaml", AllowTelemetry);
        var authorizer = PolicyAuthorizer.Load(dir.Path);
        var changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        authorizer.PolicyChanged += () => changed.TrySetResult();
        using var service = new PolicyReloadService(
            authorizer,
            Options.Create(new PolicyOptions { Directory = dir.Path, WatchFiles = false, ReloadOnSighup = true }),
            NullLogger<PolicyReloadService>.Instance);
        await service.StartAsync(CancellationToken.None);
        try
        {
            dir.Write("status.yaml", AllowStatusToo);
            authorizer.RuleCount.Should().Be(2); // no watcher: nothing happens by itself

            using (var kill = Process.Start("kill", ["-HUP", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }

            await changed.Task.WaitAsync(TimeSpan.FromSeconds(20));
            authorizer.RuleCount.Should().Be(3);
        }
        finally
        {
            await service.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public void AddOmniBrokerPolicy_FromConfiguration_BindsOptions_HostDirectoryWins()
    {
        using var dir = new TempDirectory();
        dir.Write("main.yaml", AllowTelemetry);
        var configuration = new Microsoft.Extensions.Configuration.ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Policy:Directory"] = "relative/ignored",
                ["Policy:ReloadDebounce"] = "00:00:02",
                ["Policy:WatchFiles"] = "false",
            })
            .Build();
        using var provider = new ServiceCollection().AddLogging().AddOmniBrokerPolicy(configuration, dir.Path).BuildServiceProvider();

        var options = provider.GetRequiredService<IOptions<PolicyOptions>>().Value;
        options.Directory.Should().Be(dir.Path);
        options.ReloadDebounce.Should().Be(TimeSpan.FromSeconds(2));
        options.WatchFiles.Should().BeFalse();
        options.ReloadOnSighup.Should().BeTrue();
        provider.GetRequiredService<PolicyAuthorizer>().Directory.Should().Be(dir.Path);
    }

    [Fact]
    public async Task AddOmniBrokerPolicy_RegistersAuthorizer_AndFailsStartWhenInvalid()
    {
        using var good = new TempDirectory();
        good.Write("main.yaml", AllowTelemetry);
        var services = new ServiceCollection().AddLogging();
        services.AddSingleton<IMqttAuthorizer>(AllowAllAuthorizer.Instance); // registered earlier: must be replaced
        services.AddOmniBrokerPolicy(good.Path);
        using (var provider = services.BuildServiceProvider())
        {
            var authorizer = provider.GetRequiredService<IMqttAuthorizer>();
            authorizer.Should().BeSameAs(provider.GetRequiredService<PolicyAuthorizer>());
            provider.GetServices<IMqttAuthorizer>().Should().ContainSingle();
            provider.GetRequiredService<PolicyAuthorizer>().Version.Generation.Should().Be(1);
            provider.GetServices<OmniBroker.Mqtt.Diagnostics.IPrimedMetrics>().Should().ContainSingle(m => m is OmniBroker.Policy.Diagnostics.PolicyMetrics);
            provider.GetServices<IHostedService>().Should().ContainSingle(s => s is PolicyReloadService);
            provider.GetRequiredService<PolicyAuthorizer>().IsAllowed(PolicyTestCerts.Sensor001, "admin").Should().BeFalse();
        }

        using var bad = new TempDirectory();
        bad.Write("main.yaml", "rules:\n  - id: a\n");
        using var host = new HostBuilder()
            .ConfigureServices(s => s.AddLogging().AddOmniBrokerPolicy(bad.Path))
            .Build();

        var start = () => host.StartAsync();

        (await start.Should().ThrowAsync<PolicyLoadException>()).Which.Errors.Should().HaveCount(2);
    }
}
