using System.Diagnostics;
using System.Text;
using FluentAssertions;
using MQTTnet;
using MQTTnet.Protocol;
using Xunit;
using static OmniBroker.Tests.EndToEnd.EndToEndBroker;

namespace OmniBroker.Tests.EndToEnd;

/// <summary>
/// MQTTnet 5.2 as an independent .NET peer (beside mosquitto-clients, Eclipse Paho and MQTT.js) against the real host
/// over mutual TLS with device certificates, MQTT 3.1.1 and 5.0. The test policy lets OU=tests use e2e/#, nothing else.
/// </summary>
public sealed class MqttNetEndToEndTests(TestPkiBroker broker) : IClassFixture<TestPkiBroker>
{
    private static string Id(string role) => "mqttnet-" + role + "-" + Guid.NewGuid().ToString("N")[..8];

    private async Task<MqttNetClient> ConnectAsync(string version, string role, Action<MqttClientOptionsBuilder>? configure = null)
    {
        try
        {
            return await MqttNetClient.ConnectAsync(MqttNetClient.Options(broker, broker.Good, version, Id(role), configure));
        }
        catch (MQTTnet.Exceptions.MqttCommunicationException e)
        {
            throw new InvalidOperationException("MQTTnet could not connect\n" + broker.BrokerWarnings(), e);
        }
    }

    private static string Text(MqttApplicationMessage m) => Encoding.UTF8.GetString(m.Payload);

    [Theory]
    [InlineData("3.1.1")]
    [InlineData("5")]
    public async Task MqttNet_DeviceCertificate_ConnectsOverMutualTls(string version)
    {
        await using var client = await ConnectAsync(version, "connect");

        client.Client.IsConnected.Should().BeTrue();
        client.ConnectResult!.ResultCode.Should().Be(MqttClientConnectResultCode.Success);
    }

    [Fact]
    public async Task MqttNet_NoClientCertificate_IsRefused()
    {
        var options = MqttNetClient.Options(broker, device: null, "5", Id("anonymous"));

        var connect = async () => await MqttNetClient.ConnectAsync(options);

        await connect.Should().ThrowAsync<Exception>("the broker admits only clients with a valid certificate");
    }

    [Theory]
    [InlineData("3.1.1")]
    [InlineData("5")]
    public async Task MqttNet_Qos2_PublishedAndReceivedExactlyOnceAtQos2(string version)
    {
        var topic = NewTopicPrefix("mqttnet-qos2") + "/exactly-once";
        await using var subscriber = await ConnectAsync(version, "sub");
        await using var publisher = await ConnectAsync(version, "pub");
        var suback = await subscriber.SubscribeAsync(topic, MqttQualityOfServiceLevel.ExactlyOnce);

        var results = new List<MqttClientPublishResult>();
        foreach (var payload in new[] { "one", "two", "three" })
        {
            results.Add(await publisher.PublishAsync(topic, payload, MqttQualityOfServiceLevel.ExactlyOnce));
        }

        suback.Items.Single().ResultCode.Should().Be(MqttClientSubscribeResultCode.GrantedQoS2);
        results.Should().OnlyContain(r => r.IsSuccess, "PUBREC/PUBCOMP report success (0x00, or 0x10 before the subscription counts)");
        (await subscriber.WaitForMessagesAsync(3, ClientTimeout)).Should().BeTrue();
        await Task.Delay(300); // a duplicate would arrive now
        subscriber.Received.Select(m => $"{Text(m)} {m.QualityOfServiceLevel}").Should().Equal("one ExactlyOnce", "two ExactlyOnce", "three ExactlyOnce");
    }

    [Theory]
    [InlineData("3.1.1")]
    [InlineData("5")]
    public async Task MqttNet_RetainedMessage_DeliveredToLateSubscriberWithRetainFlag(string version)
    {
        var topic = NewTopicPrefix("mqttnet-retained") + "/state";
        await using (var publisher = await ConnectAsync(version, "retain-pub"))
        {
            (await publisher.PublishAsync(topic, "online", MqttQualityOfServiceLevel.AtLeastOnce, retain: true))
                .IsSuccess.Should().BeTrue("a retained message is stored even with no subscriber (5.0 says so with 0x10)");
        }

        await using var late = await ConnectAsync(version, "retain-sub");
        await late.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);

        (await late.WaitForMessagesAsync(1, ClientTimeout)).Should().BeTrue("the retained message is sent on subscribe");
        var message = late.Received.Single();
        Text(message).Should().Be("online");
        message.Retain.Should().BeTrue();

        // Clear it: an empty retained message deletes the retained state.
        await using var cleaner = await ConnectAsync(version, "retain-clear");
        await cleaner.PublishAsync(topic, "", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
    }

    [Fact]
    public async Task MqttNet_WillWithDelay_PublishedOnlyAfterTheDelay()
    {
        var topic = NewTopicPrefix("mqttnet-will") + "/status";
        const uint delaySeconds = 3;
        await using var watcher = await ConnectAsync("5", "will-watcher");
        await watcher.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
        var device = await ConnectAsync("5", "will-device", options => options
            .WithWillTopic(topic).WithWillPayload("offline").WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .WithWillDelayInterval(delaySeconds)
            // The will is delayed only while the session outlives the connection [MQTT-3.1.3-9].
            .WithSessionExpiryInterval(60));

        // DISCONNECT 0x04 (Disconnect with Will Message): the broker publishes the will, after its delay.
        var stopwatch = Stopwatch.StartNew();
        await device.Client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder()
            .WithReason(MqttClientDisconnectOptionsReason.DisconnectWithWillMessage).Build());
        device.Client.Dispose();

        (await watcher.WaitForMessagesAsync(1, TimeSpan.FromSeconds(1))).Should().BeFalse("the will waits for its delay");
        (await watcher.WaitForMessagesAsync(1, ClientTimeout)).Should().BeTrue("the will is published after its delay");
        stopwatch.Elapsed.Should().BeGreaterThanOrEqualTo(TimeSpan.FromSeconds(delaySeconds - 0.5));
        Text(watcher.Received.Single()).Should().Be("offline");
    }

    [Fact]
    public async Task MqttNet_SharedSubscription_EachMessageGoesToOneMemberOfTheGroup()
    {
        var topic = NewTopicPrefix("mqttnet-shared") + "/work";
        var filter = "$share/workers/" + topic;
        await using var first = await ConnectAsync("5", "worker-1");
        await using var second = await ConnectAsync("5", "worker-2");
        await using var publisher = await ConnectAsync("5", "producer");
        (await first.SubscribeAsync(filter, MqttQualityOfServiceLevel.AtLeastOnce)).Items.Single().ResultCode
            .Should().Be(MqttClientSubscribeResultCode.GrantedQoS1);
        await second.SubscribeAsync(filter, MqttQualityOfServiceLevel.AtLeastOnce);

        for (int i = 0; i < 10; i++)
        {
            await publisher.PublishAsync(topic, "job-" + i, MqttQualityOfServiceLevel.AtLeastOnce);
        }

        var deadline = DateTime.UtcNow + ClientTimeout;
        while (first.Received.Count + second.Received.Count < 10 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        await Task.Delay(300); // a message delivered to both members would arrive now
        var all = first.Received.Concat(second.Received).Select(Text).ToList();
        all.Should().BeEquivalentTo(Enumerable.Range(0, 10).Select(i => "job-" + i), "every message reaches exactly one member");
        first.Received.Should().NotBeEmpty("the group shares the load");
        second.Received.Should().NotBeEmpty("the group shares the load");
    }

    [Fact]
    public async Task MqttNet_Qos1PublishOutsideItsGrant_PubAckReasonCode0x87NotAuthorized()
    {
        var denied = "forbidden/" + Guid.NewGuid().ToString("N");
        await using var client = await ConnectAsync("5", "denied-q1");

        var refused = await client.PublishAsync(denied, "nope", MqttQualityOfServiceLevel.AtLeastOnce);
        var accepted = await client.PublishAsync(NewTopicPrefix("mqttnet-denied") + "/ok", "fine", MqttQualityOfServiceLevel.AtLeastOnce);

        ((int)refused.ReasonCode).Should().Be(0x87);
        refused.ReasonCode.Should().Be(MqttClientPublishReasonCode.NotAuthorized);
        accepted.IsSuccess.Should().BeTrue("the connection stays usable after a refusal");
        client.Client.IsConnected.Should().BeTrue();
    }

    [Fact]
    public async Task MqttNet_Qos2PublishOutsideItsGrant_PubRecReasonCode0x87NotAuthorized()
    {
        var denied = "forbidden/" + Guid.NewGuid().ToString("N");
        await using var client = await ConnectAsync("5", "denied-q2");

        var refused = await client.PublishAsync(denied, "nope", MqttQualityOfServiceLevel.ExactlyOnce);
        var accepted = await client.PublishAsync(NewTopicPrefix("mqttnet-denied") + "/ok", "fine", MqttQualityOfServiceLevel.ExactlyOnce);

        // PUBREC (0x50), remaining length, packet id, reason code 0x87. A PUBREC >= 0x80 ends the QoS 2 flow
        // [MQTT-4.3.3]; MQTTnet sends PUBREL anyway and reports the outcome of the broker's PUBCOMP 0x92 (Packet
        // Identifier not found) as UnspecifiedError, so the 0x87 is read from the wire.
        client.InboundPackets.Should().Contain(p => p.Length >= 5 && p[0] == 0x50 && p[4] == 0x87, "the broker refuses with PUBREC 0x87");
        refused.IsSuccess.Should().BeFalse();
        accepted.IsSuccess.Should().BeTrue("the connection stays usable after a refusal");
        client.Client.IsConnected.Should().BeTrue();
    }
}
