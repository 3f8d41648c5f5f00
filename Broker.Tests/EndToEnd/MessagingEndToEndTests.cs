using System.Globalization;
using System.Text.Json.Nodes;
using FluentAssertions;
using Xunit;
using static OmniBroker.Tests.EndToEnd.EndToEndBroker;

namespace OmniBroker.Tests.EndToEnd;

/// <summary>
/// MQTT behaviour end to end: real clients (mosquitto-clients, Eclipse Paho for Python) over real mutual TLS on
/// 127.0.0.1 against the real host, in MQTT 3.1.1 and 5.0.
/// </summary>
public sealed class MessagingEndToEndTests(TestPkiBroker broker) : IClassFixture<TestPkiBroker>
{
    [Theory]
    [InlineData("3.1.1", 0)]
    [InlineData("3.1.1", 1)]
    [InlineData("3.1.1", 2)]
    [InlineData("5", 0)]
    [InlineData("5", 1)]
    [InlineData("5", 2)]
    public async Task MosquittoPubSub_Qos_SubscriberReceivesEveryMessageInOrder(string version, int qos)
    {
        var topic = NewTopicPrefix("qos") + "/reading";
        var q = qos.ToString(CultureInfo.InvariantCulture);
        using var subscriber = await broker.StartMosquittoSubAsync(broker.Good, version, Id("sub"), topic, qos, count: 3);

        var publisher = await broker.MosquittoPubAsync(broker.Good, version, Id("pub"), ["-t", topic, "-q", q, "-l"], "one\ntwo\nthree\n");
        var received = await subscriber.WaitForExitAsync(ClientTimeout);

        publisher.ExitCode.Should().Be(0, publisher.ToString());
        received.ExitCode.Should().Be(0, received.ToString());
        Messages(received).Should().Equal($"{topic}|{q}|0|one", $"{topic}|{q}|0|two", $"{topic}|{q}|0|three");
    }

    [Theory]
    [InlineData("3.1.1")]
    [InlineData("5")]
    public async Task PahoQos2Publish_Qos2AndQos1Subscribers_ReceivedOnceAtGrantedQos(string version)
    {
        var topic = NewTopicPrefix("paho-qos2") + "/exactly-once";
        var spec = broker.PahoSpec(version);
        spec["subscribers"] = new object[]
        {
            Subscriber(Id("q2"), [[topic, 2]]),
            Subscriber(Id("q1"), [[topic, 1]]),
        };
        spec["publisher"] = PahoClient(Id("pub"), broker.Good);
        spec["messages"] = Enumerable.Range(1, 3).Select(i => Message(topic, $"m{i}", qos: 2)).ToArray();
        spec["expect"] = 6;

        var (result, process) = await RunPahoAsync("pubsub.py", spec);

        process.ExitCode.Should().Be(0, process.ToString());
        result["publisher"]!["acks"]!.AsArray().Select(a => (int?)a).Should().Equal([0, 0, 0], "every PUBCOMP reports success");
        var subscribers = result["subscribers"]!.AsObject().Select(kv => kv.Value!).ToArray();
        subscribers[0]["suback"]!.AsArray().Select(c => (int)c!).Should().Equal(2);
        subscribers[1]["suback"]!.AsArray().Select(c => (int)c!).Should().Equal(1);
        Received(subscribers[0]).Should().Equal("m1 qos=2 retain=False dup=False", "m2 qos=2 retain=False dup=False", "m3 qos=2 retain=False dup=False");
        Received(subscribers[1]).Should().Equal("m1 qos=1 retain=False dup=False", "m2 qos=1 retain=False dup=False", "m3 qos=1 retain=False dup=False");
    }

    [Theory]
    [InlineData("3.1.1")]
    [InlineData("5")]
    public async Task RetainedMessage_SetReplacedAndCleared_NewSubscriberGetsLatestThenNothing(string version)
    {
        var topic = NewTopicPrefix("retained") + "/state";
        (await broker.MosquittoPubAsync(broker.Good, version, Id("set"), ["-t", topic, "-q", "1", "-r", "-m", "first"])).ExitCode.Should().Be(0);
        (await broker.MosquittoPubAsync(broker.Good, version, Id("replace"), ["-t", topic, "-q", "1", "-r", "-m", "second"])).ExitCode.Should().Be(0);

        // The live message is published after the SUBACK: a retained message, if any, was queued before it.
        var afterReplace = await SubscribeThenPublishLiveAsync(version, topic, "live-1", count: 2);
        (await broker.MosquittoPubAsync(broker.Good, version, Id("clear"), ["-t", topic, "-q", "1", "-r", "-n"])).ExitCode.Should().Be(0);
        var afterClear = await SubscribeThenPublishLiveAsync(version, topic, "live-2", count: 1);

        afterReplace.Should().Equal($"{topic}|1|1|second", $"{topic}|1|0|live-1");
        afterClear.Should().Equal($"{topic}|1|0|live-2");
    }

    [Theory]
    [InlineData("3.1.1")]
    [InlineData("5")]
    public async Task Will_ConnectionEndsWithoutDisconnect_SubscriberGetsTheWill(string version)
    {
        var topic = NewTopicPrefix("will") + "/status";
        var clientId = Id("will");
        using var subscriber = await broker.StartMosquittoSubAsync(broker.Good, version, Id("watch"), topic, qos: 1, count: 1);
        using var client = StartPaho("will.py", WillSpec(version, clientId, topic, "offline", "hold"));
        var connected = JsonNode.Parse(await client.WaitForLineAsync(l => l.StartsWith('{'), ClientTimeout))!;
        ((int?)connected["connack"]).Should().Be(0, client.Errors);

        // SIGKILL: the kernel closes the TCP connection; no DISCONNECT, no TLS close_notify.
        client.Kill();
        var received = await subscriber.WaitForExitAsync(ClientTimeout);

        received.ExitCode.Should().Be(0, received.ToString());
        Messages(received).Should().Equal($"{topic}|1|0|offline");
        await broker.Broker.Logs.WaitForAsync(e => e.EventId.Id == 1301 && e.Value("ClientId") == clientId);
    }

    [Theory]
    [InlineData("3.1.1")]
    [InlineData("5")]
    public async Task Will_CleanDisconnect_WillNotPublished(string version)
    {
        var topic = NewTopicPrefix("will-clean") + "/status";
        var clientId = Id("will");
        using var subscriber = await broker.StartMosquittoSubAsync(broker.Good, version, Id("watch"), topic, qos: 1, count: 1);

        var (result, process) = await RunPahoAsync("will.py", WillSpec(version, clientId, topic, "offline", "disconnect"));
        process.ExitCode.Should().Be(0, process.ToString());
        ((int?)result["connack"]).Should().Be(0);
        // The broker publishes a will before it logs the end of the connection (1004): a message published after
        // that log entry arrives after the will, had there been one.
        await broker.Broker.Logs.WaitForAsync(e => e.EventId.Id == 1004 && e.Value("ClientId") == clientId);
        var marker = await broker.MosquittoPubAsync(broker.Good, version, Id("marker"), ["-t", topic, "-q", "1", "-m", "marker"]);
        var received = await subscriber.WaitForExitAsync(ClientTimeout);

        marker.ExitCode.Should().Be(0, marker.ToString());
        Messages(received).Should().Equal($"{topic}|1|0|marker");
        broker.Broker.Logs.WithEventId(1301).Should().NotContain(e => e.Value("ClientId") == clientId);
    }

    [Theory]
    [InlineData("3.1.1")]
    [InlineData("5")]
    public async Task PersistentSession_MessagesPublishedWhileOffline_DeliveredOnReconnect(string version)
    {
        var topic = NewTopicPrefix("session") + "/commands";
        var clientId = Id("sess");
        var client = PahoClient(clientId, broker.Good);
        client["clean"] = false;
        client["expiry"] = 300;
        var subscribe = broker.PahoSpec(version);
        subscribe["client"] = client;
        subscribe["mode"] = "subscribe";
        subscribe["filters"] = new object[] { new object[] { topic, 1 } };

        var (first, firstProcess) = await RunPahoAsync("session.py", subscribe);
        firstProcess.ExitCode.Should().Be(0, firstProcess.ToString());
        ((int?)first["connack"]).Should().Be(0);
        first["suback"]!.AsArray().Select(c => (int)c!).Should().Equal(1);
        await broker.Broker.Logs.WaitForAsync(e => e.EventId.Id == 1004 && e.Value("ClientId") == clientId);

        var publisher = await broker.MosquittoPubAsync(broker.Good, version, Id("pub"), ["-t", topic, "-q", "1", "-l"], "while\nyou\nwere\naway\n");
        publisher.ExitCode.Should().Be(0, publisher.ToString());

        var resume = broker.PahoSpec(version);
        resume["client"] = client;
        resume["mode"] = "resume";
        resume["expect"] = 4;
        var (second, secondProcess) = await RunPahoAsync("session.py", resume);

        secondProcess.ExitCode.Should().Be(0, secondProcess.ToString());
        ((int?)second["connack"]).Should().Be(0);
        ((bool?)second["sessionPresent"]).Should().BeTrue("the broker kept the session");
        Received(second).Should().Equal("while qos=1 retain=False dup=False", "you qos=1 retain=False dup=False",
            "were qos=1 retain=False dup=False", "away qos=1 retain=False dup=False");
    }

    [Theory]
    [InlineData("3.1.1")]
    [InlineData("5")]
    public async Task PersistentSession_MosquittoSubWithoutCleanSession_QueuedMessagesDeliveredOnReconnect(string version)
    {
        var topic = NewTopicPrefix("session-mosquitto") + "/commands";
        var clientId = Id("msess");
        // -c: clean session off (5.0: clean start off, session expiry unlimited, capped by the broker); -E: exit after the SUBACK.
        using (var subscribe = ClientProcess.Start("mosquitto_sub", [.. broker.MosquittoArgs(broker.Good, version, clientId), "-c", "-t", topic, "-q", "1", "-E"]))
        {
            var subscribed = await subscribe.WaitForExitAsync(ClientTimeout);
            subscribed.ExitCode.Should().Be(0, subscribed.ToString());
        }
        await broker.Broker.Logs.WaitForAsync(e => e.EventId.Id == 1004 && e.Value("ClientId") == clientId);

        var publisher = await broker.MosquittoPubAsync(broker.Good, version, Id("pub"), ["-t", topic, "-q", "1", "-l"], "queued-1\nqueued-2\nqueued-3\n");
        using var resume = ClientProcess.Start("mosquitto_sub", [.. broker.MosquittoArgs(broker.Good, version, clientId), "-c", "-t", topic, "-q", "1",
            "-C", "3", "-W", "15", "-F", "MSG|%t|%q|%r|%p"]);
        var received = await resume.WaitForExitAsync(ClientTimeout);

        publisher.ExitCode.Should().Be(0, publisher.ToString());
        received.ExitCode.Should().Be(0, received.ToString());
        Messages(received).Should().Equal($"{topic}|1|0|queued-1", $"{topic}|1|0|queued-2", $"{topic}|1|0|queued-3");
        broker.Broker.Logs.WithEventId(1000).Where(e => e.Value("ClientId") == clientId).Select(e => e.Value("SessionPresent"))
            .Should().Equal(["False", "True"], "the second connection resumed the session");
    }

    [Theory]
    [InlineData("3.1.1")]
    [InlineData("5")]
    public async Task SharedSubscription_TwoMembers_EachMessageDeliveredToExactlyOneOfThem(string version)
    {
        var prefix = NewTopicPrefix("shared");
        var filter = $"$share/g{Guid.NewGuid():N}/{prefix}/+";
        const int Count = 20;
        var spec = broker.PahoSpec(version);
        spec["subscribers"] = new object[] { Subscriber(Id("a"), [[filter, 1]]), Subscriber(Id("b"), [[filter, 1]]) };
        spec["publisher"] = PahoClient(Id("pub"), broker.Good);
        spec["messages"] = Enumerable.Range(0, Count).Select(i => Message($"{prefix}/{i % 4}", $"s{i}", qos: 1)).ToArray();
        spec["expect"] = Count;
        spec["grace"] = 0.5;

        var (result, process) = await RunPahoAsync("pubsub.py", spec);

        process.ExitCode.Should().Be(0, process.ToString());
        var members = result["subscribers"]!.AsObject().Select(kv => kv.Value!).ToArray();
        foreach (var member in members)
        {
            member["suback"]!.AsArray().Select(c => (int)c!).Should().Equal(1);
        }
        var a = Payloads(members[0]);
        var b = Payloads(members[1]);
        a.Should().NotBeEmpty("the group spreads messages over its members").And.OnlyHaveUniqueItems();
        b.Should().NotBeEmpty("the group spreads messages over its members").And.OnlyHaveUniqueItems();
        a.Concat(b).Should().BeEquivalentTo(Enumerable.Range(0, Count).Select(i => $"s{i}"), "each message goes to exactly one member");
    }

    private async Task<string[]> SubscribeThenPublishLiveAsync(string version, string topic, string live, int count)
    {
        using var subscriber = await broker.StartMosquittoSubAsync(broker.Good, version, Id("sub"), topic, qos: 1, count);
        var publisher = await broker.MosquittoPubAsync(broker.Good, version, Id("live"), ["-t", topic, "-q", "1", "-m", live]);
        publisher.ExitCode.Should().Be(0, publisher.ToString());
        var received = await subscriber.WaitForExitAsync(ClientTimeout);
        received.ExitCode.Should().Be(0, received.ToString());
        return Messages(received);
    }

    private Dictionary<string, object?> WillSpec(string version, string clientId, string topic, string payload, string mode)
    {
        var client = PahoClient(clientId, broker.Good);
        client["will"] = new Dictionary<string, object?> { ["topic"] = topic, ["payload"] = payload, ["qos"] = 1, ["retain"] = false };
        var spec = broker.PahoSpec(version);
        spec["client"] = client;
        spec["mode"] = mode;
        return spec;
    }

    private Dictionary<string, object?> Subscriber(string clientId, object[][] filters)
    {
        var subscriber = PahoClient(clientId, broker.Good);
        subscriber["filters"] = filters;
        return subscriber;
    }

    private static Dictionary<string, object?> Message(string topic, string payload, int qos, bool retain = false) =>
        new() { ["topic"] = topic, ["payload"] = payload, ["qos"] = qos, ["retain"] = retain };

    private static string[] Received(JsonNode client) =>
        client["messages"]!.AsArray()
            .Select(m => $"{(string?)m!["payload"]} qos={(int)m["qos"]!} retain={(bool)m["retain"]!} dup={(bool)m["dup"]!}")
            .ToArray();

    private static string[] Payloads(JsonNode client) => client["messages"]!.AsArray().Select(m => (string)m!["payload"]!).ToArray();

    private static string Id(string role) => $"e2e-{role}-{Guid.NewGuid().ToString("N")[..12]}";
}
