using System.Text.Json.Nodes;
using FluentAssertions;
using Microsoft.Data.Sqlite;
using OmniBroker.Tests.EndToEnd;
using OmniBroker.Tests.Support;
using Xunit;
using static OmniBroker.Tests.EndToEnd.EndToEndBroker;

namespace OmniBroker.Tests.Storage;

/// <summary>Bad states of the state database, with the real host process: a corrupt or newer-schema file stops start-up
/// naming it and is left untouched; a full database refuses new QoS 1/2 messages (0x97) and the broker keeps serving.</summary>
public sealed class StateFailureTests
{
    [Fact]
    public async Task CorruptStateDatabase_HostStarts_ExitsWithOneLineNamingTheFileUntouched()
    {
        await using var env = await DurableBrokerEnvironment.StartAsync();
        await env.KillAsync();
        var garbage = new byte[16384];
        new Random(11).NextBytes(garbage);
        File.Delete(env.StatePath + "-wal");
        File.Delete(env.StatePath + "-shm");
        await File.WriteAllBytesAsync(env.StatePath, garbage);

        await AssertRefusedAsync(env, garbage, "unreadable");
    }

    [Fact]
    public async Task NewerSchemaStateDatabase_HostStarts_ExitsWithOneLineNamingTheFileUntouched()
    {
        await using var env = await DurableBrokerEnvironment.StartAsync();
        await env.KillAsync();
        File.Delete(env.StatePath + "-wal");
        File.Delete(env.StatePath + "-shm");
        File.Delete(env.StatePath);
        using (var connection = new SqliteConnection($"Data Source={env.StatePath};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA application_id=1330466377; PRAGMA user_version=99; CREATE TABLE future (x);";
            command.ExecuteNonQuery();
        }
        var bytes = await File.ReadAllBytesAsync(env.StatePath);

        await AssertRefusedAsync(env, bytes, "newer OmniBroker (schema 99");
    }

    [Fact]
    public async Task FullStateDatabase_Qos1Publishes_RefusedWith0x97NothingAcknowledgedLostBrokerKeepsServing()
    {
        await using var env = await DurableBrokerEnvironment.StartAsync("--Storage:MaxSizeMegabytes=1");
        await env.SubscribeOfflineAsync("backend-telemetry", "durable/full", 1);

        var spec = env.PahoSpec();
        spec["client"] = env.Client("sensor-001", clean: true, expiry: null);
        spec["mode"] = "publish";
        spec["topic"] = "durable/full";
        spec["qos"] = 1;
        spec["count"] = 40;
        spec["size"] = 60_000;
        spec["prefix"] = "big";
        spec["window"] = 1;
        spec["timeout"] = 60;
        using var publisher = StartPaho("durable.py", spec);
        var result = await publisher.WaitForExitAsync(TimeSpan.FromSeconds(70));
        var acks = result.Output.Where(l => l.Contains("\"acked\": \"", StringComparison.Ordinal)).Select(l => JsonNode.Parse(l)!).ToArray();
        var stored = acks.Where(a => (int)a["reason"]! == 0).Select(a => ((string)a["acked"]!).Split('.')[0]).ToHashSet();
        var refused = acks.Count(a => (int)a["reason"]! == 0x97);

        var summary = string.Join(",", acks.Select(a => (int)a["reason"]!)) + "\n" + string.Join("\n", result.Output.Where(l => !l.Contains("\"acked\": \"", StringComparison.Ordinal)))
            + "\n" + result.Errors + "\n" + env.Describe();
        acks.Should().HaveCount(40, summary);
        stored.Should().NotBeEmpty(summary);
        refused.Should().BeGreaterThan(0, "1 MiB cannot hold 40 x 60 kB\n" + summary);
        env.Broker!.HasExited.Should().BeFalse();
        using (var qos0 = ClientProcess.Start("mosquitto_pub", [.. env.MosquittoArgs("gw-berlin"), "-t", "durable/other", "-q", "0", "-m", "still serving"]))
        {
            (await qos0.WaitForExitAsync(ClientTimeout)).ExitCode.Should().Be(0);
        }

        // Everything acknowledged with 0x00 was stored: it survives a SIGKILL.
        await env.RestartAsync();
        using var subscriber = ClientProcess.Start("stdbuf", ["-oL", "mosquitto_sub", .. env.MosquittoArgs("backend-telemetry"), "-c", "-x", "3600",
            "-q", "1", "-t", "durable/full", "-F", "%p", "-W", "30"]);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(40);
        while (!stored.IsSubsetOf(subscriber.Output.Select(p => p.Split('.')[0])) && !subscriber.HasExited && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
        stored.Except(subscriber.Output.Select(p => p.Split('.')[0])).Should().BeEmpty(env.Describe());
    }

    private static async Task AssertRefusedAsync(DurableBrokerEnvironment env, byte[] expectedBytes, string problem)
    {
        using var broker = BrokerHostProcess.Launch(env.DataDirectory, env.Port, env.PolicyDirectory);
        var exitCode = await broker.WaitForExitAsync(TimeSpan.FromSeconds(90));

        exitCode.Should().NotBe(0, broker.Describe());
        var errors = broker.Output.Where(l => l.StartsWith("stderr: ", StringComparison.Ordinal)).ToArray();
        errors.Should().ContainSingle(broker.Describe());
        errors[0].Should().Contain($"state database {env.StatePath}").And.Contain(problem);
        broker.Output.Should().NotContain(l => l.Contains("[6000]", StringComparison.Ordinal), "nothing listens");
        (await File.ReadAllBytesAsync(env.StatePath)).Should().Equal(expectedBytes, "the file is left as it was");
    }
}
