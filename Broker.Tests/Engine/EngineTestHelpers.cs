using System.Buffers;
using System.Text;
using FluentAssertions;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Packets;
using OmniBroker.Tests.Support;

namespace OmniBroker.Tests.Engine;

internal static class EngineTestHelpers
{
    /// <summary>
    /// Proves that <paramref name="receiver"/> got nothing else first: publishes a marker (QoS 1) on
    /// <paramref name="markerTopic"/>, which the receiver must be subscribed to, and expects it as the very next
    /// PUBLISH. A session delivers in order, so anything queued earlier would arrive before the marker.
    /// </summary>
    public static async Task ExpectMarkerNextAsync(RawMqttClient receiver, RawMqttClient sender, string markerTopic, string because)
    {
        var marker = "marker-" + Guid.NewGuid().ToString("N")[..8];
        await sender.PublishAsync(markerTopic, marker, MqttQos.AtLeastOnce);
        var next = await receiver.ExpectPublishAsync();
        RawMqttClient.PayloadText(next).Should().Be(marker, because);
        if (next.Qos != MqttQos.AtMostOnce)
        {
            await receiver.SendAsync(new PubAckPacket(next.Qos == MqttQos.AtLeastOnce ? MqttPacketType.PubAck : MqttPacketType.PubRec)
            {
                PacketId = next.PacketId,
            });
        }
    }

    /// <summary>Polls (bounded) until <paramref name="condition"/> holds.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(5));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("timed out waiting until " + what);
            }
            await Task.Delay(10);
        }
    }

    public static WillMessage Will(string topic, string payload, MqttQos qos = MqttQos.AtLeastOnce, uint? delay = null) => new()
    {
        Topic = topic,
        Payload = Encoding.UTF8.GetBytes(payload),
        Qos = qos,
        Properties = delay is null ? null : new MqttProperties { WillDelayInterval = delay },
    };

    public static async Task AckAsync(RawMqttClient client, PublishPacket publish)
    {
        switch (publish.Qos)
        {
            case MqttQos.AtLeastOnce:
                await client.SendAsync(new PubAckPacket(MqttPacketType.PubAck) { PacketId = publish.PacketId });
                break;
            case MqttQos.ExactlyOnce:
                await client.SendAsync(new PubAckPacket(MqttPacketType.PubRec) { PacketId = publish.PacketId });
                await client.ExpectAckAsync(MqttPacketType.PubRel, publish.PacketId);
                await client.SendAsync(new PubAckPacket(MqttPacketType.PubComp) { PacketId = publish.PacketId });
                break;
        }
    }

    public static byte[] Bytes(params byte[] bytes) => bytes;

    public static ReadOnlySequence<byte> Payload(string text) => new(Encoding.UTF8.GetBytes(text));
}

/// <summary>A policy for engine tests: topic prefixes per action, switchable at run time.</summary>
internal sealed class TestAuthorizer : IMqttAuthorizer
{
    private volatile Rules _rules = new();

    public event Action? PolicyChanged;

    public Rules Current
    {
        get => _rules;
        set => _rules = value;
    }

    public void Change(Rules rules)
    {
        _rules = rules;
        PolicyChanged?.Invoke();
    }

    public ConnectDecision AuthorizeConnect(MqttClientInfo client)
    {
        var rules = _rules;
        return rules.DeniedClients.Contains(client.ClientId)
            ? ConnectDecision.Deny("client denied by test policy")
            : new ConnectDecision(true, new Grants(rules), "test policy");
    }

    public sealed record Rules
    {
        public string[] PublishPrefixes { get; init; } = [""];
        public string[] SubscribePrefixes { get; init; } = [""];
        public string[] ReceiveDenied { get; init; } = [];
        public string[] DeniedClients { get; init; } = [];
    }

    private sealed class Grants(Rules rules) : IClientGrants
    {
        public bool CanPublish(string topic, MqttQos qos, bool retain) => rules.PublishPrefixes.Any(p => topic.StartsWith(p, StringComparison.Ordinal));

        public bool CanSubscribe(string filter) => rules.SubscribePrefixes.Any(p => filter.StartsWith(p, StringComparison.Ordinal));

        public bool CanReceive(string topic) => !rules.ReceiveDenied.Contains(topic);
    }
}
