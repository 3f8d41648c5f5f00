using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using FluentAssertions;
using MQTTnet;
using MQTTnet.Protocol;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;
using Xunit;
using Xunit.Abstractions;
using static OmniBroker.Tests.Cluster.ClusterProbes;

namespace OmniBroker.Tests.Cluster;

/// <summary>
/// Fencing on a cluster of its own: a node paused (SIGSTOP) past its lease while one of its persistent sessions is taken
/// over on another node, then resumed, must write nothing more to that session. The session's replica in JetStream
/// (stream OMNI_SESSIONS, one subject per client) records which node wrote each entry.
/// </summary>
[Collection(ClusterFixture.Collection)]
public sealed class ClusterFencingTests(ClusterFixture cluster, ITestOutputHelper output) : IClassFixture<ClusterFixture>
{
    private static readonly Action<MqttClientOptionsBuilder> s_persistent = o => o.WithCleanStart(false).WithSessionExpiryInterval(600);

    [Fact]
    public async Task PausedNode_SessionTakenOverMeanwhile_ResumedNodeWritesNothingToIt()
    {
        const string client = "fence-x";
        await using var nats = new NatsConnection(NatsOpts.Default with { Url = cluster.Nats.Url(1) });
        var js = nats.CreateJetStreamContext();
        await using var publisher = await cluster.ConnectAsync(cluster.C, "fence-pub-c", "sensor-002");

        // The device subscribes on A with a persistent session and goes offline: A holds the session (and its replica).
        await using (var onA = await cluster.ConnectAsync(cluster.A, client, configure: s_persistent))
        {
            await onA.SubscribeAsync("cluster/fence/#", MqttQualityOfServiceLevel.AtLeastOnce);
            await WaitForRouteAsync(publisher, "cluster/fence/probe");
            (await WaitForAsync(onA, m => m.Topic == "cluster/fence/probe", 1)).Should().BeTrue(cluster.Describe());
        }
        (await WaitForOwnerAsync(js, client, "A")).Should().BeTrue("A wrote the session's replica\n" + cluster.Describe());

        // A is paused; a message for the session reaches A's inbox before A is declared dead (it is stored there).
        Signal("STOP", cluster.A.Process.ProcessId);
        try
        {
            (await PublishUntilAcknowledgedAsync(publisher, "cluster/fence/while-paused", "m0")).Should().Be(MqttClientPublishReasonCode.Success);
            await Task.Delay(TimeSpan.FromSeconds(int.Parse(ClusterFixture.NodeTimeoutSeconds, CultureInfo.InvariantCulture) + 2));

            // The device comes back on B: B's later claim takes the session's replica over.
            await using var onB = await cluster.ConnectAsync(cluster.B, client, configure: s_persistent);
            await onB.SubscribeAsync("cluster/fence/#", MqttQualityOfServiceLevel.AtLeastOnce);
            (await WaitForOwnerAsync(js, client, "B")).Should().BeTrue("B took the replica over\n" + cluster.Describe());
            for (var i = 1; i <= 3; i++)
            {
                (await PublishUntilAcknowledgedAsync(publisher, "cluster/fence/after", "m" + i)).Should().Be(MqttClientPublishReasonCode.Success);
            }
            (await WaitForAsync(onB, m => m.Topic == "cluster/fence/after", 3)).Should().BeTrue(cluster.Describe());

            // A resumes: it finds m0 in its inbox for its stale copy of the session, and must not write it anywhere.
            var resumed = Stopwatch.StartNew();
            Signal("CONT", cluster.A.Process.ProcessId);
            var fenced = await cluster.A.Process.WaitForLineAsync(l => l.Contains("[7020]", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
            output.WriteLine($"A fenced {resumed.ElapsedMilliseconds} ms after SIGCONT: {fenced}");
            await Task.Delay(TimeSpan.FromSeconds(3));

            var writers = await WritersAsync(js, client);
            output.WriteLine($"replica entries of {client} by node: {string.Join(", ", writers)}");
            writers.Should().NotBeEmpty().And.OnlyContain(w => w == "B", "nothing written by the resumed node A after B took the session over");
            onB.Received.Count(m => m.Topic == "cluster/fence/after").Should().Be(3);
        }
        finally
        {
            Signal("CONT", cluster.A.Process.ProcessId);
        }
    }

    private static void Signal(string signal, int pid)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-" + signal, pid.ToString(CultureInfo.InvariantCulture)]) { UseShellExecute = false })!;
        kill.WaitForExit(10_000);
    }

    /// <summary>The subject of a client in the replica stream (as Broker.Cluster names it: URL-safe base64 of SHA-256).</summary>
    private static string Subject(string clientId) => "omni.sessions." +
        Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(clientId))).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static async Task<bool> WaitForOwnerAsync(INatsJSContext js, string clientId, string node)
    {
        var deadline = DateTime.UtcNow + Spread;
        while (DateTime.UtcNow < deadline)
        {
            var writers = await WritersAsync(js, clientId);
            if (writers.Count > 0 && writers[^1] == node)
            {
                return true;
            }
            await Task.Delay(200);
        }
        return false;
    }

    /// <summary>The node that wrote each entry still on the client's subject, in order.</summary>
    private static async Task<List<string>> WritersAsync(INatsJSContext js, string clientId)
    {
        var writers = new List<string>();
        try
        {
            var consumer = await js.CreateOrderedConsumerAsync("OMNI_SESSIONS", new NatsJSOrderedConsumerOpts { FilterSubjects = [Subject(clientId)] });
            await foreach (var message in consumer.FetchNoWaitAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = 10_000 }))
            {
                writers.Add(message.Headers?["Omni-Owner"].ToString() ?? "?");
            }
        }
        catch (NatsJSApiException)
        {
            // No stream yet.
        }
        return writers;
    }
}
