using FluentAssertions;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Engine;

/// <summary>
/// The engine's side of a cluster when the cluster cannot say where a client's session is (NATS unreachable): a device
/// resuming its session (Clean Start 0) is refused with Server unavailable rather than given a new session that would
/// later displace its real one; a device starting clean is not affected. The link here is the failure itself, raw
/// bytes on the wire are the real engine's.
/// </summary>
public sealed class EngineClusterLinkTests
{
    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Connect_CleanStart0WhileClusterSessionsUnreachable_RefusedServerUnavailable(MqttProtocolVersion version)
    {
        await using var server = await EngineServer.StartAsync();
        server.Broker.Cluster = new UnreachableSessions();

        var (client, connAck) = await RawMqttClient.ConnectAsync(server.Port,
            RawMqttClient.Connect("resuming", version, cleanStart: false, sessionExpiry: version == MqttProtocolVersion.V500 ? 300u : null));
        await using var _ = client;

        // 3.1.1 return code 0x03 decodes to ServerUnavailable as well.
        connAck.ReasonCode.Should().Be(MqttReasonCode.ServerUnavailable);
        connAck.SessionPresent.Should().BeFalse();
        (await client.WaitForCloseAsync()).Should().BeEmpty();
        server.Broker.SessionCount.Should().Be(0);

        var (fresh, freshAck) = await RawMqttClient.ConnectAsync(server.Port, RawMqttClient.Connect("fresh", version, cleanStart: true));
        await using var __ = fresh;
        freshAck.ReasonCode.Should().Be(MqttReasonCode.Success, "a clean start does not look for a session elsewhere");
    }

    /// <summary>A cluster whose session lookup fails as NATS unreachable makes it fail.</summary>
    private sealed class UnreachableSessions : IClusterLink
    {
        public int Forward(StoredMessage message, bool retainedChanged, List<SharedGroupKey> localGroups, out Task<bool>? durable)
        {
            durable = null;
            return 0;
        }

        public void FilterAdded(string topicFilter, string? shareGroup)
        {
        }

        public void FilterRemoved(string topicFilter, string? shareGroup)
        {
        }

        public IDisposable RegisterWill(string clientId, StoredMessage will) => new Nothing();

        public IDisposable ClientAttached(string clientId, Action takenOver) => new Nothing();

        public Task<StoredSessionState?> FindMovedSessionAsync(string clientId, CancellationToken cancellationToken) =>
            throw new StoreUnavailableException("the cluster's session replica cannot be read: no NATS server reachable");

        private sealed class Nothing : IDisposable
        {
            public void Dispose()
            {
            }
        }
    }
}
