using System.Diagnostics;
using System.Globalization;
using FluentAssertions;
using MQTTnet;
using MQTTnet.Protocol;
using Xunit;
using static OmniBroker.Tests.EndToEnd.EndToEndBroker;

namespace OmniBroker.Tests.EndToEnd;

/// <summary>
/// Two devices, each subscribed to the topic the other publishes to, both publishing QoS 1 faster than the small queues
/// (50) absorb. While a publisher is held back (the other's queue is full) its connection must still read the
/// PUBACKs of its own deliveries: otherwise its own queue never drains, the other is held back too, and both wait for
/// the slow-subscriber timeout (2 min here). Real MQTTnet clients over mutual TLS against the real host.
/// </summary>
public sealed class MutualPublishersEndToEndTests(SmallQueueBroker broker) : IClassFixture<SmallQueueBroker>
{
    private const int Count = 1500;

    [Theory]
    [InlineData("3.1.1")]
    [InlineData("5")]
    public async Task MutualQos1Publishers_QueuesFull_BothFinishWithoutSlowTimeout(string version)
    {
        var prefix = NewTopicPrefix("mutual");
        await using var a = await MqttNetClient.ConnectAsync(MqttNetClient.Options(broker, broker.Good, version, FlowControlEndToEndTests.Id("a")));
        await using var b = await MqttNetClient.ConnectAsync(MqttNetClient.Options(broker, broker.Good, version, FlowControlEndToEndTests.Id("b")));
        await a.SubscribeAsync(prefix + "/to-a", MqttQualityOfServiceLevel.AtLeastOnce);
        await b.SubscribeAsync(prefix + "/to-b", MqttQualityOfServiceLevel.AtLeastOnce);

        var clock = Stopwatch.StartNew();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var aPublishing = PublishManyAsync(a.Client, prefix + "/to-b", timeout.Token);
        var bPublishing = PublishManyAsync(b.Client, prefix + "/to-a", timeout.Token);
        var finished = await Task.WhenAll(aPublishing, bPublishing);
        var aReceived = await a.WaitForMessagesAsync(Count, TimeSpan.FromSeconds(30));
        var bReceived = await b.WaitForMessagesAsync(Count, TimeSpan.FromSeconds(30));

        finished.Should().AllSatisfy(f => f.Should().Be(Count, "every QoS 1 publish is acknowledged with success"));
        aReceived.Should().BeTrue($"a received {a.Received.Count} of {Count}");
        bReceived.Should().BeTrue($"b received {b.Received.Count} of {Count}");
        Payloads(a).Should().Equal(Enumerable.Range(0, Count).Select(i => i.ToString(CultureInfo.InvariantCulture)), "in order, once each");
        Payloads(b).Should().Equal(Enumerable.Range(0, Count).Select(i => i.ToString(CultureInfo.InvariantCulture)), "in order, once each");
        clock.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(60),
            "neither publisher waits for the 2 min slow-subscriber timeout while the other is held back");
    }

    private static IEnumerable<string> Payloads(MqttNetClient client) => client.Received.Select(m => m.ConvertPayloadToString());

    /// <summary>Publishes <see cref="Count"/> numbered QoS 1 messages with up to 100 in flight; returns how many were
    /// acknowledged with success.</summary>
    private static async Task<int> PublishManyAsync(IMqttClient client, string topic, CancellationToken cancellationToken)
    {
        using var window = new SemaphoreSlim(100);
        var succeeded = 0;
        var inFlight = new List<Task>();
        for (var i = 0; i < Count; i++)
        {
            await window.WaitAsync(cancellationToken);
            var message = new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(i.ToString(CultureInfo.InvariantCulture))
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build();
            inFlight.Add(PublishOneAsync(message));
        }
        await Task.WhenAll(inFlight);
        return succeeded;

        async Task PublishOneAsync(MqttApplicationMessage message)
        {
            try
            {
                var result = await client.PublishAsync(message, cancellationToken);
                if (result.IsSuccess)
                {
                    Interlocked.Increment(ref succeeded);
                }
            }
            finally
            {
                window.Release();
            }
        }
    }
}
