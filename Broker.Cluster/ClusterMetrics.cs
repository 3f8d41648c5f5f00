using System.Diagnostics.Metrics;

namespace OmniBroker.Cluster;

/// <summary>The cluster's instruments (meter <see cref="MeterName"/>, exported with the host's OmniBroker.* meters):
/// hand-overs to other nodes, messages from them, the NATS connection and the nodes seen alive.</summary>
internal sealed class ClusterMetrics : IDisposable
{
    public const string MeterName = "OmniBroker.Cluster";

    private readonly Meter _meter;

    public ClusterMetrics(IMeterFactory? meterFactory, ClusterNode node)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        // omnibroker_cluster_forwarded_total, omnibroker_cluster_forward_failures_total
        _meter.CreateObservableCounter("omnibroker.cluster.forwarded", () => node.Forwarded, "{message}",
            "Messages handed to the inboxes of other nodes (one per message, whatever the number of target nodes).");
        _meter.CreateObservableCounter("omnibroker.cluster.forward_failures", () => node.ForwardsFailed, "{message}",
            "Hand-overs not confirmed by a target inbox within the forward timeout (the publisher was not acknowledged).");
        // omnibroker_cluster_received_total
        _meter.CreateObservableCounter("omnibroker.cluster.received", () => node.Received, "{message}",
            "Messages received from other nodes through this node's inbox.");
        // omnibroker_cluster_inbox_lag, omnibroker_cluster_inbox_restarts_total
        _meter.CreateObservableGauge("omnibroker.cluster.inbox_lag", () => node.InboxLag, "{message}",
            "Messages in this node's inbox not yet acknowledged by it (stored, not yet delivered or acknowledged); -1 while JetStream does not answer.");
        _meter.CreateObservableCounter("omnibroker.cluster.inbox_restarts", () => node.InboxRestarts, "{restart}",
            "Consumptions of the inbox restarted because messages waited and no pull request was held for them.");
        // omnibroker_cluster_clients_taken_over_total
        _meter.CreateObservableCounter("omnibroker.cluster.clients_taken_over", () => node.ClientsTakenOver, "{connection}",
            "Connections of this node closed (0x8E) because the same client id connected later on another node.");
        // omnibroker_cluster_nats_connected, omnibroker_cluster_nodes_alive
        _meter.CreateObservableGauge("omnibroker.cluster.nats_connected", () => node.IsConnected ? 1 : 0, null,
            "1 while the node's NATS connection is open.");
        _meter.CreateObservableGauge("omnibroker.cluster.nodes_alive", () => node.OtherNodesAlive, "{node}",
            "Other nodes whose heartbeats this node currently sees.");
        // omnibroker_cluster_sessions_moved_in_total, omnibroker_cluster_sessions_moved_out_total
        _meter.CreateObservableCounter("omnibroker.cluster.sessions_moved_in", () => node.SessionsMovedIn, "{session}",
            "Persistent sessions that moved here from another node (their device reconnected here with Clean Start 0).");
        _meter.CreateObservableCounter("omnibroker.cluster.sessions_moved_out", () => node.SessionsMovedOut, "{session}",
            "Persistent sessions this node let go to another node.");
        // omnibroker_cluster_session_replica_lag, omnibroker_cluster_sessions_fenced_total
        _meter.CreateObservableGauge("omnibroker.cluster.session_replica_lag", () => node.ReplicaLag, "{operation}",
            "Session store operations of this node not yet confirmed by the JetStream session replica.");
        _meter.CreateObservableCounter("omnibroker.cluster.sessions_fenced", () => node.SessionsFenced, "{session}",
            "Sessions of this node that another node took over meanwhile: this node wrote nothing more to them and discarded them.");
    }

    public void Dispose() => _meter.Dispose();
}
