using Microsoft.AspNetCore.Http;
using OmniBroker.Cluster;
using OmniBroker.Mqtt.Engine;

namespace OmniBroker.Host.Admin;

/// <summary>
/// /api/clients in cluster mode (docs/cluster.md): this node's clients with their full details, plus the clients whose
/// claim in <c>omni_clients</c> names another node (id and node only: their connections are elsewhere).
/// </summary>
internal static class AdminClusterView
{
    public static async Task<List<AdminClient>> ListAsync(MqttBroker broker, ClusterNode? cluster, CancellationToken cancellationToken)
    {
        var local = broker.GetConnectedClients().Select(c => AdminClient.From(c) with { Node = cluster?.NodeId }).ToList();
        if (cluster is not null)
        {
            var here = local.Select(c => c.Id).ToHashSet(StringComparer.Ordinal);
            foreach (var claim in await cluster.ListClientsAsync(cancellationToken))
            {
                // A claim naming this node without a local connection is a stale one (withdrawal pending or failed).
                if (claim.NodeId != cluster.NodeId && here.Add(claim.ClientId))
                {
                    local.Add(AdminClient.Remote(claim.ClientId, claim.NodeId));
                }
            }
        }
        return local.OrderBy(c => c.Id, StringComparer.Ordinal).ToList();
    }

    /// <summary>The status of a cluster-wide disconnect: as a local one (204, 404), or 504 when the holding node did
    /// not answer.</summary>
    public static IResult Status(ClusterDisconnectResult result, string id) => result switch
    {
        ClusterDisconnectResult.Disconnected => Results.NoContent(),
        ClusterDisconnectResult.NoAnswer => Results.Problem(statusCode: StatusCodes.Status504GatewayTimeout, title: "Holding node did not answer",
            detail: $"the node holding client '{id}' did not answer (no responder on NATS, or no answer within {ClusterAdminTimeout.TotalSeconds:0} s)"),
        _ => Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "No such client",
            detail: $"no connected client has the id '{id}'"),
    };

    private static TimeSpan ClusterAdminTimeout => ClusterNode.AdminRequestTimeout;
}
