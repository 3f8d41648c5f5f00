using System.Diagnostics;
using FluentAssertions;
using Microsoft.Extensions.Logging.Abstractions;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Engine;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Storage;
using OmniBroker.Tests.Support;
using Xunit;
using static OmniBroker.Tests.Engine.EngineTestHelpers;

namespace OmniBroker.Tests.Engine;

/// <summary>Flow control (held acknowledgements) together with strict durability (acknowledgements after the commit),
/// against the real SQLite store.</summary>
public sealed class DurableFlowControlTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("omnibroker-durable-flow-").FullName;

    [Fact]
    public async Task StrictStore_SubscriberQueueFull_PublisherAckHeldThenSentAndEveryMessagePersisted()
    {
        var path = Path.Combine(_directory, StorageOptions.FileName);
        var store = SqliteSessionStore.Open(new StorageOptions { Durability = StoreDurability.Strict }, path, NullLogger.Instance);
        await using (var server = await EngineServer.StartAsync(o =>
        {
            o.MaxQueuedMessagesPerSession = 4;
            o.SlowSubscriberTimeout = TimeSpan.FromSeconds(1);
            o.SlowSubscriberPolicy = SlowSubscriberPolicy.DropQos0;
        }, store: store))
        {
            // A persistent subscriber that never acknowledges: 2 in flight, then its queue of 4 fills.
            await using var stalled = await server.ConnectAsync("stalled", sessionExpiry: 3600, properties: new MqttProperties { ReceiveMaximum = 2 });
            await stalled.SubscribeAsync("d/#", MqttQos.AtLeastOnce);
            await using var publisher = await server.ConnectAsync("pub");

            var clock = Stopwatch.StartNew();
            for (var i = 0; i < 6; i++)
            {
                var ack = await publisher.PublishAsync($"d/{i}", $"m{i}", MqttQos.AtLeastOnce);
                ack!.ReasonCode.Should().Be(MqttReasonCode.Success, $"message {i} fits (held, not refused)");
            }
            clock.Elapsed.Should().BeGreaterThan(TimeSpan.FromMilliseconds(800),
                "the PUBACK of the message that filled the queue waits for room (here: until the subscriber is declared slow)");
            server.Logs.WithEventId(1208).Should().ContainSingle().Which.Value("ClientId").Should().Be("stalled");
            await WaitUntilAsync(() => server.Broker.QueuedMessageCount >= 4, "the queue holds the messages not in flight");
        }
        await store.DisposeAsync();

        // Every acknowledged message is in the store for the persistent subscriber: in flight or queued.
        await using var reopened = SqliteSessionStore.Open(new StorageOptions(), path, NullLogger.Instance);
        var state = await reopened.LoadAsync(CancellationToken.None);
        var session = state.Sessions.Should().ContainSingle(s => s.Session.ClientId == "stalled").Which;
        session.Messages.Should().HaveCount(6);
        session.Messages.Count(m => m.State == StoredMessageState.AwaitingPubAck).Should().Be(2);
        session.Messages.Count(m => m.State == StoredMessageState.Queued).Should().Be(4);
    }

    [Fact]
    public async Task StrictStore_DeniedPublishAfterHeldAck_AcknowledgementsStayInOrder()
    {
        // [MQTT-4.6.0-2]: PUBACKs in the order the PUBLISHes came. The first waits for its commit (made slow here);
        // the denial behind it needs no commit but must not overtake it.
        var path = Path.Combine(_directory, StorageOptions.FileName);
        var store = SqliteSessionStore.Open(new StorageOptions { Durability = StoreDurability.Strict, CommitDelay = TimeSpan.FromMilliseconds(300) },
            path, NullLogger.Instance);
        var authorizer = new TestAuthorizer { Current = new TestAuthorizer.Rules { PublishPrefixes = ["ok/"] } };
        await using (var server = await EngineServer.StartAsync(authorizer: authorizer, store: store))
        {
            await using (var keeper = await server.ConnectAsync("keeper", sessionExpiry: 3600))
            {
                await keeper.SubscribeAsync("ok/#", MqttQos.AtLeastOnce);
            }
            await using var publisher = await server.ConnectAsync("pub");

            await publisher.SendAsync(RawMqttClient.Publish("ok/1", "stored", MqttQos.AtLeastOnce, false, 1, null));
            await publisher.SendAsync(RawMqttClient.Publish("denied/1", "refused", MqttQos.AtLeastOnce, false, 2, null));

            var first = await publisher.ExpectAsync<PubAckPacket>();
            var second = await publisher.ExpectAsync<PubAckPacket>();
            (first.PacketId, first.ReasonCode).Should().Be(((ushort)1, MqttReasonCode.Success));
            (second.PacketId, second.ReasonCode).Should().Be(((ushort)2, MqttReasonCode.NotAuthorized));
        }
        await store.DisposeAsync();
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
