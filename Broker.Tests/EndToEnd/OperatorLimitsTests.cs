using System.Security.Cryptography.X509Certificates;
using FluentAssertions;
using Microsoft.Extensions.DependencyInjection;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.Metrics;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.EndToEnd;

/// <summary>
/// Operator limits on the real host through mutual-TLS clients: subscriptions per client, retained messages (total and
/// per client, count and bytes) and connections in total; each hit counted in omnibroker_limit_hits_total and logged
/// once per client and limit per interval (event 1400).
/// </summary>
public sealed class OperatorLimitsTests : IAsyncLifetime
{
    private const int LimitHitEventId = 1400;
    private string _directory = null!;
    private TestPki _pki = null!;
    private TestPkiFiles _files = null!;

    public Task InitializeAsync()
    {
        _directory = TempDirectory.Create("omnibroker-limits");
        _pki = TestPki.Create();
        _files = _pki.WriteFiles(Path.Combine(_directory, "tls"));
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        _pki.Dispose();
        TempDirectory.Delete(_directory);
        return Task.CompletedTask;
    }

    private Task<TestBroker> StartAsync(params (string Key, string Value)[] settings)
    {
        var values = new Dictionary<string, string?> { ["Revocation:Mode"] = "none" };
        foreach (var (key, value) in settings)
        {
            values[key] = value;
        }
        // The policy is not under test here: every certificate may do everything.
        return TestBroker.StartAsync(_files, Path.Combine(_directory, "data-" + Guid.NewGuid().ToString("N")[..6]), values,
            services => services.AddSingleton<OmniBroker.Mqtt.Abstractions.IMqttAuthorizer>(OmniBroker.Mqtt.Abstractions.AllowAllAuthorizer.Instance));
    }

    private async Task<(RawMqttClient Client, ConnAckPacket ConnAck)> ConnectAsync(TestBroker broker, string clientId, MqttProtocolVersion version = MqttProtocolVersion.V500)
    {
        var leaf = _pki.IssueLeaf(clientId);
        var client = await RawMqttClient.OpenTlsAsync(broker.MqttPort, _pki.Root, leaf, [_pki.Intermediate], version);
        await client.SendAsync(RawMqttClient.Connect(clientId, version));
        return (client, await client.ExpectAsync<ConnAckPacket>(TimeSpan.FromSeconds(15)));
    }

    private static async Task<Exposition> ScrapeAsync(TestBroker broker)
    {
        using var http = new HttpClient { BaseAddress = broker.HttpBaseUrl, Timeout = TimeSpan.FromSeconds(30) };
        return Exposition.Parse(await http.GetStringAsync("/metrics"));
    }

    private static async Task<SubAckPacket> SubscribeManyAsync(RawMqttClient client, params string[] filters)
    {
        var subscribe = new SubscribePacket { PacketId = client.NextPacketId() };
        foreach (var filter in filters)
        {
            subscribe.Subscriptions.Add(new TopicSubscription(filter, new SubscriptionOptions(MqttQos.AtMostOnce, false, false, MqttRetainHandling.SendAtSubscribe)));
        }
        await client.SendAsync(subscribe);
        return await client.ExpectAsync<SubAckPacket>();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V500, MqttReasonCode.QuotaExceeded)]
    [InlineData(MqttProtocolVersion.V311, MqttReasonCode.UnspecifiedError)]
    public async Task Subscribe_BeyondMaxSubscriptionsPerClient_RefusedWithQuotaExceeded(MqttProtocolVersion version, MqttReasonCode refused)
    {
        await using var broker = await StartAsync(("Mqtt:MaxSubscriptionsPerClient", "2"));
        var before = (await ScrapeAsync(broker)).ValueOrZero("omnibroker_limit_hits_total", "limit=subscriptions_per_client");
        var (client, connAck) = await ConnectAsync(broker, "subs-" + version, version);
        await using var _ = client;
        connAck.ReasonCode.Should().Be(MqttReasonCode.Success);

        var first = await SubscribeManyAsync(client, "a/1", "a/2", "a/3");
        var replace = await SubscribeManyAsync(client, "a/1");
        var more = await SubscribeManyAsync(client, "a/4");

        first.ReasonCodes.Should().Equal(MqttReasonCode.Success, MqttReasonCode.Success, refused);
        replace.ReasonCodes.Should().Equal([MqttReasonCode.Success], "replacing an existing filter does not add one");
        more.ReasonCodes.Should().Equal(refused);
        var hits = broker.Logs.WithEventId(LimitHitEventId).Where(e => e.Value("Limit") == "subscriptions_per_client").ToList();
        hits.Should().ContainSingle("one line per client and limit per interval").Which.Value("ClientId").Should().Be("subs-" + version);
        (await ScrapeAsync(broker)).Value("omnibroker_limit_hits_total", "limit=subscriptions_per_client").Should().BeGreaterThanOrEqualTo(before + 2);
    }

    [Fact]
    public async Task RetainedPublish_BeyondPerClientCount_DeliveredNotRetainedPubAckQuotaExceeded()
    {
        await using var broker = await StartAsync(("Mqtt:MaxRetainedMessagesPerClient", "2"));
        var (subscriber, _) = await ConnectAsync(broker, "retain-sub");
        await using var s = subscriber;
        await subscriber.SubscribeAsync("r/#");
        var (publisher, _) = await ConnectAsync(broker, "retain-pub");
        await using var p = publisher;

        (await publisher.PublishAsync("r/1", "one", MqttQos.AtLeastOnce, retain: true))!.ReasonCode.Should().Be(MqttReasonCode.Success);
        (await publisher.PublishAsync("r/2", "two", MqttQos.AtLeastOnce, retain: true))!.ReasonCode.Should().Be(MqttReasonCode.Success);
        (await publisher.PublishAsync("r/1", "one again", MqttQos.AtLeastOnce, retain: true))!.ReasonCode.Should().Be(MqttReasonCode.Success, "replacing its own message adds none");
        var third = await publisher.PublishAsync("r/3", "three", MqttQos.AtLeastOnce, retain: true);

        third!.ReasonCode.Should().Be(MqttReasonCode.QuotaExceeded);
        var delivered = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            delivered.Add(RawMqttClient.PayloadText(await subscriber.ExpectPublishAsync()));
        }
        delivered.Should().Equal(["one", "two", "one again", "three"], "the refused message is still routed");

        var (late, _) = await ConnectAsync(broker, "retain-late");
        await using var l = late;
        await late.SubscribeAsync("r/#");
        var retained = new List<string> { RawMqttClient.PayloadText(await late.ExpectPublishAsync()), RawMqttClient.PayloadText(await late.ExpectPublishAsync()) };
        retained.Should().BeEquivalentTo(["one again", "two"]);
        (await late.PingAsync()).Should().BeEmpty("r/3 was not retained");
        (await broker.Logs.WaitForAsync(e => e.EventId.Id == LimitHitEventId)).Value("Limit").Should().Be("retained_messages_per_client");
    }

    [Fact]
    public async Task RetainedPublish_BeyondTotalBytes_RefusedButClearingStillWorks()
    {
        await using var broker = await StartAsync(("Mqtt:MaxRetainedBytes", "10"));
        var (publisher, _) = await ConnectAsync(broker, "bytes-pub");
        await using var p = publisher;

        (await publisher.PublishAsync("b/1", "12345678", MqttQos.AtLeastOnce, retain: true))!.ReasonCode.Should().Be(MqttReasonCode.NoMatchingSubscribers);
        (await publisher.PublishAsync("b/2", "123", MqttQos.AtLeastOnce, retain: true))!.ReasonCode.Should().Be(MqttReasonCode.QuotaExceeded);
        (await publisher.PublishAsync("b/1", "", MqttQos.AtLeastOnce, retain: true))!.ReasonCode.Should().Be(MqttReasonCode.NoMatchingSubscribers, "a clear is always allowed");
        (await publisher.PublishAsync("b/2", "123", MqttQos.AtLeastOnce, retain: true))!.ReasonCode.Should().Be(MqttReasonCode.NoMatchingSubscribers, "the clear freed the bytes");
        (await ScrapeAsync(broker)).Value("omnibroker_limit_hits_total", "limit=retained_bytes").Should().BeGreaterThanOrEqualTo(1);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V500, MqttReasonCode.QuotaExceeded)]
    [InlineData(MqttProtocolVersion.V311, MqttReasonCode.ServerUnavailable)]
    public async Task Connect_BeyondMaxConnections_RefusedUntilOneLeaves(MqttProtocolVersion version, MqttReasonCode refused)
    {
        await using var broker = await StartAsync(("Mqtt:MaxConnections", "2"));
        var (first, a) = await ConnectAsync(broker, "conn-1", version);
        var (second, b) = await ConnectAsync(broker, "conn-2", version);
        await using var s = second;

        var (third, c) = await ConnectAsync(broker, "conn-3", version);
        await third.DisposeAsync();
        await first.DisconnectAsync();
        await first.WaitForCloseAsync();
        await first.DisposeAsync();
        (RawMqttClient Client, ConnAckPacket ConnAck) fourth = default;
        for (var attempt = 0; attempt < 50; attempt++)
        {
            fourth = await ConnectAsync(broker, "conn-4", version);
            if (fourth.ConnAck.ReasonCode == MqttReasonCode.Success)
            {
                break;
            }
            await fourth.Client.DisposeAsync();
            await Task.Delay(100);
        }
        await using var f = fourth.Client!;

        (a.ReasonCode, b.ReasonCode).Should().Be((MqttReasonCode.Success, MqttReasonCode.Success));
        c.ReasonCode.Should().Be(refused);
        fourth.ConnAck!.ReasonCode.Should().Be(MqttReasonCode.Success, "a slot was freed");
        (await broker.Logs.WaitForAsync(e => e.EventId.Id == LimitHitEventId)).Value("Limit").Should().Be("connections");
    }
}
