using Microsoft.Extensions.Logging;

namespace OmniBroker.Cluster;

/// <summary>The cluster's log events (7000-7099). Nothing per message at Information or above.</summary>
internal static partial class ClusterLog
{
    [LoggerMessage(EventId = 7000, Level = LogLevel.Information, Message = "cluster node {NodeId} joined through {Urls} (replicas {Replicas}, node timeout {NodeTimeout})")]
    public static partial void Joined(this ILogger logger, string nodeId, string urls, int replicas, TimeSpan nodeTimeout);

    [LoggerMessage(EventId = 7001, Level = LogLevel.Warning, Message = "cluster: NATS connection lost ({Reason})")]
    public static partial void Disconnected(this ILogger logger, string reason);

    [LoggerMessage(EventId = 7002, Level = LogLevel.Information, Message = "cluster: NATS connection (re)established; resynchronising retained messages")]
    public static partial void Reconnected(this ILogger logger);

    [LoggerMessage(EventId = 7003, Level = LogLevel.Warning, Message = "cluster: node {NodeId} not heard of for {Timeout}: declared dead, its routes removed")]
    public static partial void NodeDead(this ILogger logger, string nodeId, TimeSpan timeout);

    [LoggerMessage(EventId = 7004, Level = LogLevel.Information, Message = "cluster: node {NodeId} is alive")]
    public static partial void NodeAlive(this ILogger logger, string nodeId);

    [LoggerMessage(EventId = 7005, Level = LogLevel.Information, Message = "cluster: published the will of client {ClientId} of node {NodeId} on {Topic}")]
    public static partial void WillTakenOver(this ILogger logger, string clientId, string nodeId, string topic);

    [LoggerMessage(EventId = 7006, Level = LogLevel.Warning, Message = "cluster: {Operation} failed, retrying: {Error}")]
    public static partial void OperationFailed(this ILogger logger, string operation, string error);

    [LoggerMessage(EventId = 7007, Level = LogLevel.Warning, Message = "cluster: {Count} forwarded messages were not confirmed by their target inboxes in time (aggregated)")]
    public static partial void ForwardsFailed(this ILogger logger, long count);

    [LoggerMessage(EventId = 7008, Level = LogLevel.Warning, Message = "cluster: an undecodable entry in {Source} was dropped")]
    public static partial void Undecodable(this ILogger logger, string source);

    [LoggerMessage(EventId = 7009, Level = LogLevel.Warning, Message = "cluster: {Pending} messages wait in this node's inbox and no pull request is held for them: consumption restarted")]
    public static partial void InboxStalled(this ILogger logger, long pending);

    [LoggerMessage(EventId = 7010, Level = LogLevel.Information, Message = "cluster: client {ClientId} connected on another node with a later claim: its connection here is taken over (0x8E)")]
    public static partial void ClientTakenOver(this ILogger logger, string clientId);

    [LoggerMessage(EventId = 7011, Level = LogLevel.Information, Message = "cluster: client {ClientId} disconnected at the request of another node's admin API")]
    public static partial void AdminDisconnected(this ILogger logger, string clientId);

    [LoggerMessage(EventId = 7012, Level = LogLevel.Warning, Message = "cluster: node {NodeId}, which holds client {ClientId}, did not answer the admin disconnect request")]
    public static partial void AdminNoAnswer(this ILogger logger, string nodeId, string clientId);

    [LoggerMessage(EventId = 7020, Level = LogLevel.Warning, Message = "cluster: the session of client {ClientId} was taken over by {Owner}: this node writes nothing more to it (fenced)")]
    public static partial void ReplicaFenced(this ILogger logger, string clientId, string owner);

    [LoggerMessage(EventId = 7021, Level = LogLevel.Information, Message = "cluster: the persistent session of client {ClientId} moved here from node {Owner} (which {Answer}) in {Milliseconds} ms with {Messages} queued or in-flight messages")]
    public static partial void SessionMoved(this ILogger logger, string clientId, string owner, string answer, long milliseconds, int messages);

    [LoggerMessage(EventId = 7022, Level = LogLevel.Information, Message = "cluster: the persistent session of client {ClientId} moved to another node: let go here")]
    public static partial void SessionReleased(this ILogger logger, string clientId);

    [LoggerMessage(EventId = 7023, Level = LogLevel.Warning, Message = "cluster: node {Owner} holding the session of client {ClientId} did not let it go ({Error}): taken from the replica")]
    public static partial void SessionOwnerSilent(this ILogger logger, string clientId, string owner, string error);

    [LoggerMessage(EventId = 7024, Level = LogLevel.Information, Message = "cluster: the delayed will of client {ClientId} of dead node {NodeId} is not published: the client connected again or its session moved")]
    public static partial void DelayedWillCancelled(this ILogger logger, string clientId, string nodeId);
}
