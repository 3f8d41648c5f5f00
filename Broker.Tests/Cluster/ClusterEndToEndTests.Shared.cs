using FluentAssertions;
using MQTTnet.Protocol;
using Xunit;
using static OmniBroker.Tests.Cluster.ClusterProbes;

namespace OmniBroker.Tests.Cluster;

/// <summary>Share groups spread over nodes: one member per message cluster-wide (5.0 §4.8.2), not one per node.</summary>
public sealed partial class ClusterEndToEndTests
{
    [Fact]
    public async Task SharedGroup_MembersOnAllThreeNodes_EachMessageFromCToExactlyOneMember()
    {
        const string group = "$share/workers/cluster/shared/#";
        await using var memberA = await cluster.ConnectAsync(cluster.A, "share-a");
        await using var memberB = await cluster.ConnectAsync(cluster.B, "share-b");
        await using var memberC = await cluster.ConnectAsync(cluster.C, "share-c");
        await using var plain = await cluster.ConnectAsync(cluster.B, "share-plain-b");
        foreach (var member in new[] { memberA, memberB, memberC })
        {
            await member.SubscribeAsync(group, MqttQualityOfServiceLevel.AtLeastOnce);
        }
        await plain.SubscribeAsync("cluster/shared/#", MqttQualityOfServiceLevel.AtLeastOnce);
        await using var publisher = await cluster.ConnectAsync(cluster.C, "share-pub-c", "sensor-002");

        // Probes until every member got one: C then knows the group's members on A and B.
        var deadline = DateTime.UtcNow + Spread;
        while (new[] { memberA, memberB, memberC }.Any(m => !m.Received.Any(r => r.Topic == "cluster/shared/probe")))
        {
            DateTime.UtcNow.Should().BeBefore(deadline, "the group's members on A and B should become known to C\n" + cluster.Describe());
            await publisher.PublishAsync("cluster/shared/probe", "probe", MqttQualityOfServiceLevel.AtLeastOnce);
            await Task.Delay(100);
        }

        const int count = 90;
        for (var i = 0; i < count; i++)
        {
            (await publisher.PublishAsync($"cluster/shared/m{i}", "x", MqttQualityOfServiceLevel.AtLeastOnce)).IsSuccess.Should().BeTrue();
        }
        (await WaitForAsync(plain, m => m.Topic.StartsWith("cluster/shared/m", StringComparison.Ordinal), count)).Should().BeTrue(cluster.Describe());
        var members = new[] { memberA, memberB, memberC };
        deadline = DateTime.UtcNow + Spread;
        while (members.Sum(m => m.Received.Count(r => r.Topic.StartsWith("cluster/shared/m", StringComparison.Ordinal))) < count && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }
        await Task.Delay(1000); // a second copy, if any, would arrive meanwhile

        var perMember = members.Select(m => m.Received.Where(r => r.Topic.StartsWith("cluster/shared/m", StringComparison.Ordinal)).Select(r => r.Topic).ToList()).ToArray();
        var all = perMember.SelectMany(t => t).ToList();
        output.WriteLine($"share group over 3 nodes, {count} messages from C: A {perMember[0].Count}, B {perMember[1].Count}, C {perMember[2].Count}");
        all.Should().HaveCount(count, "each message goes to exactly one member of the group, cluster-wide");
        all.Should().OnlyHaveUniqueItems();
        perMember.Should().OnlyContain(t => t.Count > 0, "the nodes take turns");
        plain.Received.Count(r => r.Topic.StartsWith("cluster/shared/m", StringComparison.Ordinal)).Should().Be(count, "a plain subscriber on a node with a member gets every message");
    }
}
