using System.Globalization;
using System.Text.Json.Nodes;
using FluentAssertions;
using OmniBroker.Tests.EndToEnd;
using Xunit;
using static OmniBroker.Tests.EndToEnd.EndToEndBroker;

namespace OmniBroker.Tests.Storage;

/// <summary>
/// Durable state end to end: the real host as a child process with the default SQLite store (strict durability),
/// real clients (paho-mqtt, mosquitto_sub -c) over mutual TLS with the development PKI, the broker killed with SIGKILL
/// and started again on the same data directory.
/// </summary>
public sealed class DurableStateEndToEndTests
{
    private static readonly TimeSpan s_long = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Qos1Flow_BrokerKilledMidFlow_EveryAcknowledgedMessageReachesPersistentSubscriber()
    {
        // The offline session has room for the whole flow, so the kill lands while messages are still accepted.
        await using var env = await DurableBrokerEnvironment.StartAsync("--Mqtt:MaxQueuedMessagesPerSession=10000");
        await env.SubscribeOfflineAsync("backend-telemetry", "durable/q1", 1);

        var spec = env.PahoSpec();
        spec["client"] = env.Client("sensor-001");
        spec["mode"] = "publish";
        spec["topic"] = "durable/q1";
        spec["qos"] = 1;
        spec["count"] = 5000;
        spec["prefix"] = "m";
        spec["window"] = 20;
        spec["timeout"] = 60;
        using var publisher = StartPaho("durable.py", spec);
        // Kill in the middle of the flow: after some acknowledgements, with more publishes in flight.
        await WaitForCountAsync(publisher, l => l.Contains("\"acked\": \"", StringComparison.Ordinal), 200);
        await env.KillAsync();
        var published = await publisher.WaitForExitAsync(s_long);
        // Only a successful PUBACK is a promise; 0x97 (Quota exceeded) says the message was not taken.
        var acked = published.Output.Where(l => l.Contains("\"acked\": \"", StringComparison.Ordinal))
            .Select(l => JsonNode.Parse(l)!).Where(n => n["reason"]!.GetValue<int>() < 0x80)
            .Select(n => n["acked"]!.GetValue<string>()).ToHashSet();
        acked.Count.Should().BeGreaterThanOrEqualTo(200).And.BeLessThan(5000, "the broker was killed during the flow");

        await env.RestartAsync();
        using var subscriber = ClientProcess.Start("stdbuf", ["-oL", "mosquitto_sub", .. env.MosquittoArgs("backend-telemetry"), "-c", "-x", "3600",
            "-q", "1", "-t", "durable/q1", "-F", "%p", "-W", "40"]);
        var received = await WaitForAllAsync(subscriber, acked, s_long);

        acked.Except(received).Should().BeEmpty($"every PUBACKed message survives the SIGKILL\n{env.Describe()}");
    }

    [Fact]
    public async Task Qos2_KillBetweenPubRecAndPubComp_DeliveredExactlyOnce()
    {
        await using var env = await DurableBrokerEnvironment.StartAsync();
        await env.SubscribeOfflineAsync("backend-telemetry", "durable/q2", 2);

        var spec = env.PahoSpec();
        spec["client"] = env.Client("sensor-001");
        spec["mode"] = "qos2-split";
        spec["topic"] = "durable/q2";
        spec["payload"] = "exactly-once";
        spec["timeout"] = 80;
        using var publisher = StartPaho("durable.py", spec);
        await publisher.WaitForLineAsync(l => l.Contains("\"pubrec\"", StringComparison.Ordinal), ClientTimeout);
        await env.KillAsync();
        await env.RestartAsync();
        var result = LastJson(await publisher.WaitForExitAsync(s_long));

        result["sessionPresent"]!.GetValue<bool>().Should().BeTrue(result.ToJsonString());
        // 0x00, not 0x92 (Packet Identifier not found): the broker still knew the packet identifier after the crash.
        result["pubcomp"]!.GetValue<int>().Should().Be(0, env.Describe());
        var resume = env.PahoSpec();
        resume["client"] = env.Client("backend-telemetry");
        resume["mode"] = "resume";
        resume["expect"] = 2;
        resume["timeout"] = 8;
        var (messages, _) = await RunPahoAsync("session.py", resume);
        messages["messages"]!.AsArray().Select(m => (string)m!["payload"]!).Should().Equal(["exactly-once"], env.Describe());
    }

    [Fact]
    public async Task OfflineSessions_BrokerKilledAndRestarted_QueuedKeptExpiryZeroAndExpiredGone()
    {
        await using var env = await DurableBrokerEnvironment.StartAsync();
        await env.SubscribeOfflineAsync("gw-berlin", "durable/offline", 1);
        var shortLived = env.PahoSpec();
        shortLived["client"] = env.Client("sensor-002", expiry: 8);
        shortLived["mode"] = "subscribe";
        shortLived["filters"] = new object[] { new object[] { "durable/offline", 1 } };
        (await RunPahoAsync("session.py", shortLived)).Result["connack"]!.GetValue<int>().Should().Be(0);
        // Connected at the kill with Session Expiry Interval 0 (and Clean Start 0): ends with its connection.
        using var transient = ClientProcess.Start("stdbuf", ["-oL", "mosquitto_sub", .. env.MosquittoArgs("backend-telemetry"), "-c", "-x", "0",
            "-q", "1", "-t", "durable/offline", "-d", "-W", "60"]);
        await transient.WaitForLineAsync(l => l.Contains("received SUBACK", StringComparison.Ordinal), ClientTimeout);

        using (var pub = ClientProcess.Start("mosquitto_pub", [.. env.MosquittoArgs("sensor-001"), "-t", "durable/offline", "-q", "1", "-l"], "a\nb\nc\n"))
        {
            (await pub.WaitForExitAsync(ClientTimeout)).ExitCode.Should().Be(0);
        }
        await env.KillAsync();
        env.History.Should().NotContain(l => l.Contains("[1300]", StringComparison.Ordinal), "sensor-002 must expire while the broker is down");
        await Task.Delay(TimeSpan.FromSeconds(9));
        await env.RestartAsync();
        transient.Kill();

        var restored = await env.Broker!.WaitForLineAsync(l => l.Contains("[1470]", StringComparison.Ordinal), ClientTimeout);
        restored.Should().Contain("1 sessions expired while the broker was down");
        var kept = env.PahoSpec();
        kept["client"] = env.Client("gw-berlin");
        kept["mode"] = "resume";
        kept["expect"] = 3;
        var (keptResult, _) = await RunPahoAsync("session.py", kept);
        keptResult["sessionPresent"]!.GetValue<bool>().Should().BeTrue();
        keptResult["messages"]!.AsArray().Select(m => (string)m!["payload"]!).Should().Equal("a", "b", "c");
        foreach (var gone in new[] { "backend-telemetry", "sensor-002" })
        {
            var resume = env.PahoSpec();
            resume["client"] = env.Client(gone);
            resume["mode"] = "resume";
            resume["expect"] = 0;
            var (result, _) = await RunPahoAsync("session.py", resume);
            result["sessionPresent"]!.GetValue<bool>().Should().BeFalse($"{gone}'s session did not survive\n{env.Describe()}");
        }
    }

    [Fact]
    public async Task RetainedAndDelayedWill_BrokerKilledAndRestarted_BothSurvive()
    {
        await using var env = await DurableBrokerEnvironment.StartAsync();
        using (var pub = ClientProcess.Start("mosquitto_pub", [.. env.MosquittoArgs("sensor-001"), "-t", "durable/retained", "-q", "1", "-r", "-m", "state-1"]))
        {
            (await pub.WaitForExitAsync(ClientTimeout)).ExitCode.Should().Be(0);
        }
        await env.SubscribeOfflineAsync("backend-telemetry", "durable/will", 1);
        var holder = env.PahoSpec();
        holder["client"] = env.Client("gw-berlin");
        holder["mode"] = "will-hold";
        holder["will"] = new Dictionary<string, object?> { ["topic"] = "durable/will", ["payload"] = "gw-berlin gone", ["qos"] = 1, ["delay"] = 4 };
        using (var client = StartPaho("durable.py", holder))
        {
            await client.WaitForLineAsync(l => l.Contains("\"connack\": 0", StringComparison.Ordinal), ClientTimeout);
            client.Kill();
        }
        // SIGKILL closes the client's socket at once; give the broker a moment to see it and store the delayed will.
        await Task.Delay(1500);
        await env.KillAsync();
        env.History.Should().NotContain(l => l.Contains("[1301]", StringComparison.Ordinal), "the will was still waiting for its delay at the kill");
        await env.RestartAsync();

        using var retained = ClientProcess.Start("mosquitto_sub", [.. env.MosquittoArgs("sensor-002"), "-t", "durable/retained", "-C", "1", "-W", "15", "-F", "%r|%p"]);
        (await retained.WaitForExitAsync(ClientTimeout)).Output.Should().Equal(["1|state-1"], env.Describe());
        var watcher = env.PahoSpec();
        watcher["client"] = env.Client("backend-telemetry");
        watcher["mode"] = "resume";
        watcher["expect"] = 2;
        watcher["timeout"] = 15;
        var (result, _) = await RunPahoAsync("session.py", watcher);
        result["messages"]!.AsArray().Select(m => (string)m!["payload"]!).Should().Equal(["gw-berlin gone"], env.Describe());
    }

    [Fact]
    public async Task PolicyChangeAndRevocation_WhileBrokerDown_AppliedToRestoredSessions()
    {
        await using var env = await DurableBrokerEnvironment.StartAsync();
        await env.SubscribeOfflineAsync("backend-telemetry", "durable/kept", 1);
        await env.SubscribeOfflineAsync("backend-telemetry", "extra/lost", 1);
        await env.SubscribeOfflineAsync("sensor-002", "durable/revoked", 1);
        await env.KillAsync();

        File.Delete(Path.Combine(env.PolicyDirectory, DurableBrokerEnvironment.ExtraPolicyFile));
        var output = new StringWriter();
        (await OmniBroker.Host.Cli.CliCommands.InvokeAsync(["pki", "revoke", "--cn", "sensor-002", "--data-dir", env.DataDirectory], output, output))
            .Should().Be(0, output.ToString());
        await env.RestartAsync();

        await env.Broker!.WaitForLineAsync(l => l.Contains("[1471]", StringComparison.Ordinal) && l.Contains("sensor-002", StringComparison.Ordinal)
            && l.Contains("revoked", StringComparison.Ordinal), ClientTimeout);
        await env.Broker.WaitForLineAsync(l => l.Contains("[1102]", StringComparison.Ordinal) && l.Contains("extra/lost", StringComparison.Ordinal), ClientTimeout);
        await WaitUntilAsync(() => env.Query("SELECT client_id FROM sessions WHERE client_id = 'sensor-002'").Count == 0);
        await WaitUntilAsync(() => env.Query("SELECT filter FROM subscriptions WHERE client_id = 'backend-telemetry'").SequenceEqual(["durable/kept"]));

        using (var pub = ClientProcess.Start("mosquitto_pub", [.. env.MosquittoArgs("sensor-001"), "-t", "durable/kept", "-q", "1", "-m", "still here"]))
        {
            (await pub.WaitForExitAsync(ClientTimeout)).ExitCode.Should().Be(0);
        }
        var resume = env.PahoSpec();
        resume["client"] = env.Client("backend-telemetry");
        resume["mode"] = "resume";
        resume["expect"] = 1;
        var (result, _) = await RunPahoAsync("session.py", resume);
        result["sessionPresent"]!.GetValue<bool>().Should().BeTrue();
        result["messages"]!.AsArray().Select(m => (string)m!["payload"]!).Should().Equal("still here");
    }

    internal static async Task WaitForCountAsync(ClientProcess process, Func<string, bool> predicate, int count)
    {
        var deadline = DateTime.UtcNow + s_long;
        while (process.Output.Count(predicate) < count)
        {
            if (process.HasExited || DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException($"{process.Name}: fewer than {count} matching lines\n{string.Join("\n", process.Output.TakeLast(10))}\n{process.Errors}");
            }
            await Task.Delay(10);
        }
    }

    private static async Task<HashSet<string>> WaitForAllAsync(ClientProcess subscriber, HashSet<string> expected, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var received = subscriber.Output.ToHashSet();
            if (expected.IsSubsetOf(received) || subscriber.HasExited || DateTime.UtcNow > deadline)
            {
                return received;
            }
            await Task.Delay(100);
        }
    }

    internal static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("condition not met within 20 s");
            }
            await Task.Delay(100);
        }
    }
}
