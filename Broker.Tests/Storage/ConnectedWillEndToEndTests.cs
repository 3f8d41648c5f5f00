using System.Diagnostics;
using FluentAssertions;
using Xunit;
using static OmniBroker.Tests.EndToEnd.EndToEndBroker;

namespace OmniBroker.Tests.Storage;

/// <summary>
/// The will of a client still connected when the broker is killed (SIGKILL) is published after the restart: at
/// start-up for a will without delay (3.1.1, Clean Session 1: its session does not survive, its will does), and its
/// Will Delay Interval after the restart for a 5.0 persistent session that does not come back. Real host process,
/// paho-mqtt clients over mutual TLS.
/// </summary>
public sealed class ConnectedWillEndToEndTests
{
    [Fact]
    public async Task WillOfConnectedClient_BrokerKilledAndRestarted_PublishedAfterRestart()
    {
        await using var env = await DurableBrokerEnvironment.StartAsync();
        // The subscriber's client id sorts after gw-berlin's: sessions are restored in client id order, and a will due at
        // start-up must still reach a subscriber restored after its publisher.
        await env.SubscribeOfflineAsync("sensor-001", "durable/will/#", 1);

        var berlin = env.PahoSpec("3.1.1");
        berlin["client"] = env.Client("gw-berlin", clean: true, expiry: null);
        berlin["mode"] = "will-hold";
        berlin["timeout"] = 60;
        berlin["will"] = new Dictionary<string, object?> { ["topic"] = "durable/will/berlin", ["payload"] = "gw-berlin gone", ["qos"] = 1, ["delay"] = 0 };
        var munich = env.PahoSpec();
        munich["client"] = env.Client("sensor-002");
        munich["mode"] = "will-hold";
        munich["timeout"] = 60;
        munich["will"] = new Dictionary<string, object?> { ["topic"] = "durable/will/munich", ["payload"] = "sensor-002 gone", ["qos"] = 1, ["delay"] = 8 };
        using var berlinClient = StartPaho("durable.py", berlin);
        using var munichClient = StartPaho("durable.py", munich);
        await berlinClient.WaitForLineAsync(l => l.Contains("\"connack\": 0", StringComparison.Ordinal), ClientTimeout);
        await munichClient.WaitForLineAsync(l => l.Contains("\"connack\": 0", StringComparison.Ordinal), ClientTimeout);
        // CONNACK does not wait for the commit of the will row; the writer commits within milliseconds.
        await Task.Delay(1000);

        await env.KillAsync();
        berlinClient.Kill();
        munichClient.Kill();
        env.Query("SELECT client_id, coalesce(due_at, 'open') FROM wills ORDER BY client_id").Should()
            .Equal(["gw-berlin|open", "sensor-002|open"], "both wills were stored at CONNECT, without a due time\n" + env.Describe());
        env.History.Should().NotContain(l => l.Contains("[1301]", StringComparison.Ordinal), "no will was published before the kill");

        var clock = Stopwatch.StartNew();
        await env.RestartAsync();
        if (clock.Elapsed < TimeSpan.FromSeconds(6))
        {
            // Checked only while the delay certainly runs: the 5.0 will waits its 8 s from the restart.
            env.Query("SELECT client_id FROM wills").Should().Equal(["sensor-002"], "the 3.1.1 will went out at start-up; the 5.0 one waits\n" + env.Describe());
        }

        var watcher = env.PahoSpec();
        watcher["client"] = env.Client("sensor-001");
        watcher["mode"] = "resume";
        watcher["expect"] = 2;
        watcher["timeout"] = 40;
        var (result, _) = await RunPahoAsync("session.py", watcher);
        result["messages"]!.AsArray().Select(m => (string)m!["payload"]!).Should()
            .BeEquivalentTo(["gw-berlin gone", "sensor-002 gone"], env.Describe());
        clock.Elapsed.Should().BeGreaterThan(TimeSpan.FromSeconds(8), "the 5.0 will waited its Will Delay Interval from the restart");
        env.Query("SELECT count(*) FROM wills").Should().Equal(["0"], "published wills leave the store");
    }
}
