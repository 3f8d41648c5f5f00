using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using FluentAssertions;
using MQTTnet;
using NATS.Client.Core;
using NATS.Net;
using OmniBroker.Tests.EndToEnd;
using Xunit;
using static OmniBroker.Tests.Cluster.ClusterProbes;

namespace OmniBroker.Tests.Cluster;

/// <summary>
/// The cluster-wide admin API on three real nodes (<see cref="ClusterFixture"/>): GET /api/clients on any node lists
/// the clients of every node with the node holding each; DELETE /api/clients/{id} on any node disconnects the client
/// where it is connected (a NATS request to the holding node).
/// </summary>
[Collection(ClusterFixture.Collection)]
public sealed partial class ClusterAdminTests(ClusterFixture cluster) : IClassFixture<ClusterFixture>
{
    [Fact]
    public async Task ListClients_ClientOnA_ListedOnBWithNodeA()
    {
        await using var onA = await cluster.ConnectAsync(cluster.A, "admin-list-a");
        await using var onB = await cluster.ConnectAsync(cluster.B, "admin-list-b", "sensor-002");
        using var http = await HttpAsync(cluster.B);

        var deadline = DateTime.UtcNow + Spread;
        Dictionary<string, string?> nodes;
        while (true)
        {
            using var list = JsonDocument.Parse(await http.GetStringAsync("api/clients"));
            nodes = list.RootElement.EnumerateArray().ToDictionary(e => e.GetProperty("id").GetString()!, e => e.GetProperty("node").GetString());
            if (nodes.ContainsKey("admin-list-a") || DateTime.UtcNow > deadline)
            {
                break;
            }
            await Task.Delay(100);
        }

        nodes.Should().Contain("admin-list-a", "A", "the client connected on A is listed on B with its node");
        nodes.Should().Contain("admin-list-b", "B", "B's own client carries B");
    }

    [Fact]
    public async Task DeleteClient_OnCForClientOnA_ClientDisconnectedByA()
    {
        await using var onA = await cluster.ConnectAsync(cluster.A, "admin-kick-a");
        var gone = new TaskCompletionSource<MqttClientDisconnectReason>(TaskCreationOptions.RunContinuationsAsynchronously);
        onA.Client.DisconnectedAsync += e =>
        {
            gone.TrySetResult(e.Reason);
            return Task.CompletedTask;
        };
        using var http = await HttpAsync(cluster.C);

        // Until A's claim reached the bucket C reads (404 before that).
        var deadline = DateTime.UtcNow + Spread;
        HttpStatusCode status;
        while ((status = (await http.DeleteAsync("api/clients/admin-kick-a")).StatusCode) == HttpStatusCode.NotFound && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        status.Should().Be(HttpStatusCode.NoContent, cluster.Describe());
        (await gone.Task.WaitAsync(TimeSpan.FromSeconds(30))).Should().Be(MqttClientDisconnectReason.AdministrativeAction);
        cluster.A.Process.Output.Should().Contain(l => l.Contains("[7011]", StringComparison.Ordinal), "A closed it at C's request");
    }

    [Fact]
    public async Task DeleteClient_UnknownId_404OnEveryNode()
    {
        foreach (var node in new[] { cluster.A, cluster.B, cluster.C })
        {
            using var http = await HttpAsync(node);
            (await http.DeleteAsync("api/clients/nobody-has-this-id")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        }
    }

    [Fact]
    public async Task DeleteClient_ClaimOfSilentNode_504()
    {
        // A claim naming a node that no longer answers (died without withdrawing it).
        await using var nats = new NatsConnection(NatsOpts.Default with { Url = cluster.Nats.Url(0) });
        var clients = await nats.CreateKeyValueStoreContext().GetStoreAsync("omni_clients");
        await clients.PutAsync(Key("admin-ghost"), Encoding.UTF8.GetBytes("Z\nadmin-ghost"));
        using var http = await HttpAsync(cluster.B);

        var response = await http.DeleteAsync("api/clients/admin-ghost");

        response.StatusCode.Should().Be(HttpStatusCode.GatewayTimeout, await response.Content.ReadAsStringAsync());
        await clients.DeleteAsync(Key("admin-ghost"));
    }

    private static string Key(string clientId) =>
        Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(clientId))).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static async Task<HttpClient> HttpAsync(ClusterHost node)
    {
        var line = await node.Process.WaitForLineAsync(l => l.Contains("[6001]", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        var endPoint = HttpPattern().Match(line).Groups[1].Value.TrimEnd('/');
        return new HttpClient { BaseAddress = new Uri($"http://{endPoint}/"), Timeout = TimeSpan.FromSeconds(30) };
    }

    [GeneratedRegex(@"listening on (?:https?://)?(\S+)")]
    private static partial Regex HttpPattern();
}
