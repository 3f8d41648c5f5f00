using FluentAssertions;
using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Net;
using OmniBroker.Cluster.Replica;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Storage;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Cluster;

/// <summary>
/// The JetStream copy of persistent sessions (<see cref="SessionReplica"/>) over a real SQLite store and a real
/// nats-server: what is written is read back as the same session, a node whose client was taken over by another node is
/// fenced and writes nothing more, and a session's history is rolled up once its queue is empty.
/// </summary>
public sealed class SessionReplicaTests : IAsyncLifetime
{
    private NatsServerCluster _nats = null!;
    private NatsConnection _connection = null!;
    private INatsJSContext _js = null!;
    private readonly string _directory = TempDirectory.Create("omnibroker-replica");
    private readonly CancellationTokenSource _stop = new();
    private readonly List<(SessionReplica Replica, SqliteSessionStore Store, Task Run)> _nodes = [];

    public async Task InitializeAsync()
    {
        _nats = await NatsServerCluster.StartAsync(1);
        _connection = new NatsConnection(NatsOpts.Default with { Url = _nats.Url(0) });
        await _connection.ConnectAsync();
        _js = _connection.CreateJetStreamContext();
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        foreach (var (_, store, run) in _nodes)
        {
            await run.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await store.DisposeAsync();
        }
        await _connection.DisposeAsync();
        _nats.Dispose();
        TempDirectory.Delete(_directory);
        _stop.Dispose();
    }

    private SessionReplica Node(string nodeId)
    {
        var store = SqliteSessionStore.Open(new StorageOptions { Durability = StoreDurability.Strict }, Path.Combine(_directory, nodeId + ".db"), NullLogger.Instance);
        var replica = new SessionReplica(store, nodeId, TimeSpan.FromSeconds(20), NullLogger.Instance);
        var run = Task.Run(() => replica.RunAsync(_js, 1, _stop.Token));
        _nodes.Add((replica, store, run));
        return replica;
    }

    private static StoredMessage Message(string text) => new("devices/x/telemetry", System.Text.Encoding.UTF8.GetBytes(text), 1, false, "sensor-001", null);

    private static StoredSession Session(string clientId) => new(clientId, 3600, null, 5, null, null, 7);

    [Fact]
    public async Task Replica_OperationsOfOneSession_ReadBackAsTheSameSessionOnAnyNode()
    {
        var a = Node("A");
        await a.LoadAsync(CancellationToken.None);
        const string client = "replica-read";
        a.Append(new SessionSaved(Session(client)));
        a.Append(new SubscriptionSaved(client, new StoredSubscription("devices/+/telemetry", 1, false, true, 0, 42)));
        a.Append(new SubscriptionSaved(client, new StoredSubscription("devices/+/status", 1, false, false, 0, 0)));
        a.Append(new SubscriptionDeleted(client, "devices/+/status"));
        a.Append(new MessageQueued(client, 1, Message("one"), 1, false, [42]));
        a.Append(new MessageQueued(client, 2, Message("two"), 1, false, null));
        a.Append(new MessageQueued(client, 3, Message("three"), 1, false, null));
        a.Append(new MessageStateChanged(client, 1, StoredMessageState.AwaitingPubAck, 9));
        a.Append(new MessageDeleted(client, 2));
        a.Append(new InboundQos2Saved(client, 11));
        var last = a.Append(new WillSaved(client, new StoredWill(Message("gone"), 30, null)));
        await a.WaitCommittedAsync(last).AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        var (session, owner) = await SessionReplica.ReadAsync(_js, client, CancellationToken.None);

        owner.Should().Be("A");
        session.Should().NotBeNull();
        session!.Session.LastPacketId.Should().Be(7);
        session.Subscriptions.Select(s => (s.Filter, s.SubscriptionId, s.RetainAsPublished)).Should().Equal(("devices/+/telemetry", 42u, true));
        session.Messages.Select(m => (m.Sequence, m.State, m.PacketId, System.Text.Encoding.UTF8.GetString(m.Message!.Payload)))
            .Should().Equal((1L, StoredMessageState.AwaitingPubAck, (ushort)9, "one"), (3L, StoredMessageState.Queued, (ushort)0, "three"));
        session.Messages[0].SubscriptionIds.Should().Equal(42u);
        session.InboundQos2.Should().Equal((ushort)11);
        session.Will!.DelaySeconds.Should().Be(30);
    }

    [Fact]
    public async Task Replica_SessionTakenOverByAnotherNode_OldNodeFencedWritesNothingAndAcknowledgesNothing()
    {
        var a = Node("A");
        var b = Node("B");
        await a.LoadAsync(CancellationToken.None);
        await b.LoadAsync(CancellationToken.None);
        var fenced = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        a.Fenced = id => fenced.TrySetResult(id);
        const string client = "replica-fenced";
        a.Append(new SessionSaved(Session(client)));
        await a.WaitCommittedAsync(a.Append(new MessageQueued(client, 1, Message("before"), 1, false, null))).AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        // B imports the session (as read from the replica) and takes the client's replica over.
        var (taken, _) = await SessionReplica.ReadAsync(_js, client, CancellationToken.None);
        b.TakeOver(client);
        b.Append(new SessionSaved(taken!.Session));
        var position = b.Append(new MessageQueued(client, 1, taken.Messages[0].Message!, 1, false, null));
        await b.WaitCommittedAsync(position).AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        // A, paused meanwhile, goes on writing: refused by the fencing token, and told so.
        var stale = a.Append(new MessageQueued(client, 2, Message("stale write from A"), 1, false, null));
        (await fenced.Task.WaitAsync(TimeSpan.FromSeconds(30))).Should().Be(client);
        var staleAcknowledgement = () => a.WaitCommittedAsync(stale).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        await staleAcknowledgement.Should().ThrowAsync<StoreUnavailableException>("a message queued for a session taken over elsewhere is not acknowledged");
        a.Append(new MessageQueued(client, 3, Message("another stale write"), 1, false, null));
        await Task.Delay(500);

        var (session, owner) = await SessionReplica.ReadAsync(_js, client, CancellationToken.None);
        owner.Should().Be("B");
        session!.Messages.Select(m => System.Text.Encoding.UTF8.GetString(m.Message!.Payload)).Should().Equal("before");
        a.FencedCount.Should().Be(1);
        b.FencedCount.Should().Be(0);
    }

    [Fact]
    public async Task Replica_ManyMessagesDeliveredAndAcknowledged_HistoryRolledUpToTheSession()
    {
        var a = Node("A");
        await a.LoadAsync(CancellationToken.None);
        const string client = "replica-rollup";
        a.Append(new SessionSaved(Session(client)));
        a.Append(new SubscriptionSaved(client, new StoredSubscription("devices/#", 1, false, false, 0, 0)));
        long last = 0;
        for (var i = 1; i <= 300; i++)
        {
            a.Append(new MessageQueued(client, i, Message("m" + i), 1, false, null));
            a.Append(new MessageStateChanged(client, i, StoredMessageState.AwaitingPubAck, (ushort)i));
            last = a.Append(new MessageDeleted(client, i));
            if (i % 10 == 0)
            {
                // Batches of ten, as acknowledgements arrive.
                await a.WaitCommittedAsync(last).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            }
        }
        await a.WaitCommittedAsync(last).AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        var stream = await _js.GetStreamAsync(ReplicaStreamName, cancellationToken: CancellationToken.None);
        var kept = (long)stream.Info.State.Messages;
        var (session, _) = await SessionReplica.ReadAsync(_js, client, CancellationToken.None);

        kept.Should().BeLessThan(30, "900 operations in 30 entries, rolled up whenever the queue is empty and the history grew");
        session!.Subscriptions.Should().ContainSingle(s => s.Filter == "devices/#");
        session.Messages.Should().BeEmpty();
    }

    private const string ReplicaStreamName = "OMNI_SESSIONS";
}
