using System.Text;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.KeyValueStore;
using OmniBroker.Mqtt.Engine;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Cluster;

/// <summary>A client id and the node holding its connection (its last claim in <c>omni_clients</c>).</summary>
public sealed record ClusterClient(string ClientId, string NodeId);

/// <summary>What a cluster-wide disconnect found.</summary>
public enum ClusterDisconnectResult
{
    /// <summary>The holding node (this one or another) closed the connection.</summary>
    Disconnected,

    /// <summary>No node holds a connection with this client id.</summary>
    NotFound,

    /// <summary>The bucket names another node and that node did not answer within the admin timeout.</summary>
    NoAnswer,
}

/// <summary>
/// The admin API's view of the whole cluster (docs/cluster.md): the client directory is the <c>omni_clients</c> bucket,
/// and a disconnect asked on a node that does not hold the client is sent to the holder as a NATS request on
/// <c>omni.admin.{node}</c>, which every node answers by disconnecting the client locally (0x98 Administrative action,
/// as a local DELETE /api/clients/{id}).
/// </summary>
internal sealed class ClusterAdmin(string nodeId, MqttBroker broker, ILogger logger)
{
    /// <summary>Longest wait for the holding node's answer: it only closes a local connection.</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(5);

    private const string Done = "disconnected";
    private const string Unknown = "not-found";

    public static string Subject(string node) => "omni.admin." + node;

    /// <summary>Every claim in the bucket. A key deleted between the listing and its read is skipped.</summary>
    public static async Task<IReadOnlyList<ClusterClient>> ListAsync(INatsKVStore bucket, CancellationToken cancellationToken)
    {
        var result = new List<ClusterClient>();
        await foreach (var key in bucket.GetKeysAsync(cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            var entry = await bucket.TryGetEntryAsync<byte[]>(key, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (entry.Success && entry.Value.Value is { } value && Parse(value) is { } client)
            {
                result.Add(client);
            }
        }
        return result;
    }

    /// <summary>Disconnects the client wherever it is connected: here first (a claim may not be written yet), else the
    /// node its claim names.</summary>
    public async Task<ClusterDisconnectResult> DisconnectAsync(INatsConnection nats, INatsKVStore bucket, string clientId,
        CancellationToken cancellationToken)
    {
        if (broker.DisconnectClient(clientId, MqttReasonCode.AdministrativeAction))
        {
            return ClusterDisconnectResult.Disconnected;
        }
        var entry = await bucket.TryGetEntryAsync<byte[]>(ClusterNames.Hash(clientId), cancellationToken: cancellationToken).ConfigureAwait(false);
        if (!entry.Success || entry.Value.Value is not { } value || Parse(value) is not { } claim || claim.NodeId == nodeId
            || claim.ClientId != clientId)
        {
            return ClusterDisconnectResult.NotFound;
        }
        try
        {
            var reply = await nats.RequestAsync<string, string>(Subject(claim.NodeId), clientId,
                replyOpts: new NatsSubOpts { Timeout = RequestTimeout }, cancellationToken: cancellationToken).ConfigureAwait(false);
            return reply.Data == Done ? ClusterDisconnectResult.Disconnected : ClusterDisconnectResult.NotFound;
        }
        catch (Exception ex) when (ex is NatsNoReplyException or NatsNoRespondersException or NatsTimeoutException)
        {
            // The claim names a node that is dead or cut off (its claims stay until a later connect supersedes them).
            logger.AdminNoAnswer(claim.NodeId, clientId);
            return ClusterDisconnectResult.NoAnswer;
        }
    }

    /// <summary>Answers the other nodes' disconnect requests for clients of this node.</summary>
    public async Task RunResponderAsync(INatsConnection nats, CancellationToken cancellationToken)
    {
        await foreach (var request in nats.SubscribeAsync<string>(Subject(nodeId), cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            var found = request.Data is { } id && broker.DisconnectClient(id, MqttReasonCode.AdministrativeAction);
            if (found)
            {
                logger.AdminDisconnected(request.Data!);
            }
            await request.ReplyAsync(found ? Done : Unknown, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    private static ClusterClient? Parse(byte[] value)
    {
        var newline = Array.IndexOf(value, (byte)'\n');
        return newline <= 0 ? null
            : new ClusterClient(Encoding.UTF8.GetString(value, newline + 1, value.Length - newline - 1), Encoding.UTF8.GetString(value, 0, newline));
    }
}
