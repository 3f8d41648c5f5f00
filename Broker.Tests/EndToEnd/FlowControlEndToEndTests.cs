using System.Globalization;
using FluentAssertions;
using Microsoft.Extensions.DependencyInjection;
using OmniBroker.Mqtt.Engine;
using Xunit;
using static OmniBroker.Tests.EndToEnd.EndToEndBroker;

namespace OmniBroker.Tests.EndToEnd;

/// <summary>Small queues (50 messages) and a long slow-subscriber timeout: a subscriber that pauses holds publishers back.</summary>
public sealed class SmallQueueBroker : TestPkiBroker
{
    protected override IReadOnlyDictionary<string, string?> ExtraSettings { get; } = new Dictionary<string, string?>
    {
        ["Mqtt:MaxQueuedMessagesPerSession"] = "50",
        ["Mqtt:SlowSubscriberTimeout"] = "00:02:00",
        ["Mqtt:LogAggregationInterval"] = "00:01:00",
        // RetainedMessages_TenThousand_AllArrive retains 10 000 messages from one client: above the default per-client
        // retained limit (1000, issue 9), which is tested on its own in OperatorLimitsTests.
        ["Mqtt:MaxRetainedMessagesPerClient"] = "0",
    };
}

/// <summary>Small queues and a 2 s slow-subscriber timeout with the Disconnect policy.</summary>
public sealed class SlowSubscriberBroker : TestPkiBroker
{
    protected override IReadOnlyDictionary<string, string?> ExtraSettings { get; } = new Dictionary<string, string?>
    {
        ["Mqtt:MaxQueuedMessagesPerSession"] = "50",
        ["Mqtt:SlowSubscriberTimeout"] = "00:00:02",
        ["Mqtt:SlowSubscriberPolicy"] = "Disconnect",
    };
}

/// <summary>
/// Backpressure instead of loss, end to end: real mosquitto clients over mutual TLS against the real host. A paused
/// subscriber is a real mosquitto_sub stopped with SIGSTOP: it neither reads nor acknowledges.
/// </summary>
public sealed class FlowControlEndToEndTests(SmallQueueBroker broker) : IClassFixture<SmallQueueBroker>
{
    private MqttBroker Engine => broker.Broker.App.Services.GetRequiredService<MqttBroker>();

    [Theory]
    [InlineData("3.1.1")]
    [InlineData("5")]
    public async Task Qos1PublisherFasterThanSubscriber_SubscriberPaused_NothingLostInOrder(string version)
    {
        const int count = 2000;
        var topic = NewTopicPrefix("backpressure") + "/data";
        var droppedBefore = Engine.MessagesDropped;
        using var subscriber = await StartSubscriberAsync(broker, version, Id("sub"), topic, count);
        subscriber.Signal(stop: true);

        var lines = string.Join("\n", Enumerable.Range(0, count).Select(i => i.ToString(CultureInfo.InvariantCulture))) + "\n";
        var publishing = broker.MosquittoPubAsync(broker.Good, version, Id("pub"), ["-t", topic, "-q", "1", "-l"], lines);
        // The paused subscriber's window and queue (50) fill; then the publisher is held back, not dropped: the
        // broker stops reading it and withholds its PUBACKs until the queue has drained to half.
        await WaitUntilAsync(() => Engine.QueuedMessageCount >= 25,
            () => $"the paused subscriber's queue filled (queued {Engine.QueuedMessageCount}, received {Engine.MessagesReceived})\n{broker.BrokerWarnings()}");
        await Task.Delay(500);
        var received = Engine.MessagesReceived;
        await Task.Delay(1000);
        Engine.MessagesReceived.Should().Be(received, "the publisher is held back while the subscriber does not read");
        publishing.IsCompleted.Should().BeFalse();
        Engine.QueuedMessageCount.Should().BeLessThanOrEqualTo(50, "held back, the publisher cannot grow the queue");

        subscriber.Signal(stop: false);
        var published = await publishing;
        var delivered = await subscriber.WaitForExitAsync(ClientTimeout);

        published.ExitCode.Should().Be(0, published.ToString());
        Messages(delivered).Select(m => m.Split('|')[3]).Should().Equal(Enumerable.Range(0, count).Select(i => i.ToString(CultureInfo.InvariantCulture)));
        Engine.MessagesDropped.Should().Be(droppedBefore);
    }

    [Fact]
    public async Task RetainedMessages_TenThousand_AllArrive()
    {
        const int count = 10_000;
        var prefix = NewTopicPrefix("retained-many");
        var spec = broker.PahoSpec("5");
        spec["timeout"] = 120;
        spec["publisher"] = PahoClient(Id("pub"), broker.Good);
        spec["prefix"] = prefix;
        spec["count"] = count;
        using (var paho = StartPaho("retain_many.py", spec))
        {
            var result = await paho.WaitForExitAsync(TimeSpan.FromSeconds(120));
            result.ExitCode.Should().Be(0, result.ToString());
            var summary = LastJson(result);
            ((int)summary["acked"]!).Should().Be(count);
            ((int)summary["failed"]!).Should().Be(0);
        }

        using var subscriber = await StartSubscriberAsync(broker, "5", Id("sub"), prefix + "/#", count);
        var received = await subscriber.WaitForExitAsync(TimeSpan.FromSeconds(120));

        var messages = Messages(received);
        messages.Should().HaveCount(count, "[MQTT-3.3.1-6]: every matching retained message is sent");
        messages.Select(m => m.Split('|')[0]).Distinct().Should().HaveCount(count);
        messages.Should().OnlyContain(m => m.Split('|')[2] == "1", "sent with RETAIN=1");
    }

    [Fact]
    public async Task DeniedPublishFlood_ThousandsDenied_BoundedLogLines()
    {
        const int count = 3000;
        var clientId = Id("flood");
        var deniedBefore = Engine.MessagesDropped;
        var lines = string.Concat(Enumerable.Repeat("x\n", count));

        var published = await broker.MosquittoPubAsync(broker.Good, "5", clientId, ["-t", "not-allowed/" + new string('t', 300), "-q", "0", "-l"], lines);

        published.ExitCode.Should().Be(0, published.ToString());
        await WaitUntilAsync(() => Engine.MessagesDropped - deniedBefore >= count, "every denial counted");
        Engine.MessagesDropped.Should().Be(deniedBefore + count, "counters keep exact numbers");
        var denialLines = broker.Broker.Logs.WithEventId(1106).Where(l => l.Value("ClientId") == clientId).ToArray();
        denialLines.Should().ContainSingle("at most one line per client and reason per interval (1 min here)");
        denialLines[0].Value("Topic")!.Length.Should().BeLessThan(120, "long topics are truncated in logs");
    }

    internal static async Task<ClientProcess> StartSubscriberAsync(EndToEndBroker broker, string version, string clientId, string filter, int count)
    {
        var process = ClientProcess.Start("stdbuf", ["-oL", "mosquitto_sub", .. broker.MosquittoArgs(((TestPkiBroker)broker).Good, version, clientId),
            "-t", filter, "-q", "1", "-C", count.ToString(CultureInfo.InvariantCulture), "-W", "120", "-d", "-F", "MSG|%t|%q|%r|%p"]);
        try
        {
            await process.WaitForLineAsync(line => line.Contains("received SUBACK", StringComparison.Ordinal), ClientTimeout);
        }
        catch
        {
            process.Dispose();
            throw;
        }
        return process;
    }

    internal static Task WaitUntilAsync(Func<bool> condition, string what) => WaitUntilAsync(condition, () => what);

    internal static async Task WaitUntilAsync(Func<bool> condition, Func<string> what)
    {
        var deadline = DateTime.UtcNow + ClientTimeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("timed out waiting until " + what());
            }
            await Task.Delay(20);
        }
    }

    internal static string Id(string role) => $"e2e-{role}-{Guid.NewGuid().ToString("N")[..12]}";
}

/// <summary>A subscriber that stops reading is declared slow and disconnected; the others get everything.</summary>
public sealed class SlowSubscriberEndToEndTests(SlowSubscriberBroker broker) : IClassFixture<SlowSubscriberBroker>
{
    [Fact]
    public async Task StalledSubscriber_DisconnectPolicy_OthersReceiveEverything()
    {
        const int count = 1500;
        var topic = NewTopicPrefix("stalled") + "/data";
        var stalledId = FlowControlEndToEndTests.Id("stalled");
        using var reader1 = await FlowControlEndToEndTests.StartSubscriberAsync(broker, "5", FlowControlEndToEndTests.Id("r1"), topic, count);
        using var reader2 = await FlowControlEndToEndTests.StartSubscriberAsync(broker, "3.1.1", FlowControlEndToEndTests.Id("r2"), topic, count);
        using var stalled = await FlowControlEndToEndTests.StartSubscriberAsync(broker, "5", stalledId, topic, count);
        stalled.Signal(stop: true);

        var lines = string.Join("\n", Enumerable.Range(0, count).Select(i => i.ToString(CultureInfo.InvariantCulture))) + "\n";
        ClientResult published;
        try
        {
            published = await broker.MosquittoPubAsync(broker.Good, "5", FlowControlEndToEndTests.Id("pub"), ["-t", topic, "-q", "1", "-l"], lines);
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException(ex.Message + "\n" + string.Join("\n", broker.Broker.Logs.Entries.Where(e => e.EventId.Id >= 1000).Select(e => e.EventId.Id + " " + e.Message)), ex);
        }
        var first = await reader1.WaitForExitAsync(ClientTimeout);
        var second = await reader2.WaitForExitAsync(ClientTimeout);

        published.ExitCode.Should().Be(0, published.ToString());
        var expected = Enumerable.Range(0, count).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
        Messages(first).Select(m => m.Split('|')[3]).Should().Equal(expected);
        Messages(second).Select(m => m.Split('|')[3]).Should().Equal(expected);
        var slow = broker.Broker.Logs.WithEventId(1208).Should().ContainSingle().Which;
        slow.Value("ClientId").Should().Be(stalledId);
        slow.Value("Policy").Should().Be("Disconnect");
        stalled.Signal(stop: false);
    }
}
