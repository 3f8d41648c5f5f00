using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using OmniBroker.Cluster.Replica;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Engine;

namespace OmniBroker.Cluster;

/// <summary>
/// Persistent sessions that follow their device from node to node. The node a device reconnects to (Clean Start 0, no
/// session there) finds the session in the replica (<see cref="SessionReplica"/>) written by another node, installs its
/// subscriptions, waits briefly so that every node routes matching messages here too, then asks the holding node to
/// let go (NATS request on <c>omni.session.{node}</c>): that node writes what it still had for the session to the
/// replica, closes the device's old connection (0x8E) and removes its copy without publishing its will. This node
/// then reads the session as it was left and takes the replica over (its later client-id claim fences the other node).
/// A holding node that is dead, or does not answer within the move timeout, is not waited for: the replica holds every
/// acknowledged message (strict durability waits for it), and should that node come back it is fenced.
/// </summary>
internal sealed class SessionMoves(string nodeId, MqttBroker broker, SessionReplica replica, Func<string, bool> isAlive, TimeSpan timeout,
    ILogger logger)
{
    /// <summary>How long subscriptions installed here take to reach the other nodes' routes (a key/value write and
    /// watch on loopback or a LAN: milliseconds); waited once per move.</summary>
    private static readonly TimeSpan s_routesSettle = TimeSpan.FromMilliseconds(300);

    private readonly ConcurrentDictionary<string, (StoredSessionState State, string Owner)> _previews = new(StringComparer.Ordinal);
    private INatsConnection? _nats;
    private INatsJSContext? _js;
    private long _moved;
    private long _released;

    public long Moved => Interlocked.Read(ref _moved);

    public long Released => Interlocked.Read(ref _released);

    public static string Subject(string node) => "omni.session." + node;

    /// <summary>Answers the other nodes' requests to let a session go, until the node stops.</summary>
    public async Task RunAsync(INatsConnection nats, INatsJSContext js, CancellationToken cancellationToken)
    {
        _nats = nats;
        _js = js;
        await foreach (var request in nats.SubscribeAsync<string>(Subject(nodeId), cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            if (request.Data is { Length: > 0 } clientId)
            {
                _ = ReleaseAsync(request, clientId, cancellationToken);
            }
        }
    }

    private async Task ReleaseAsync(NatsMsg<string> request, string clientId, CancellationToken cancellationToken)
    {
        // In this order: what other nodes forwarded here before the request is delivered to the session (the inbox is
        // acknowledged after the replica holds it), nothing the session still had is missing from the replica, nothing
        // is written after.
        await DrainInboxAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await replica.ReleaseAsync(clientId).WaitAsync(timeout, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        broker.DiscardMovedSession(clientId);
        Interlocked.Increment(ref _released);
        logger.SessionReleased(clientId);
        try
        {
            await request.ReplyAsync("released", cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (NatsException ex)
        {
            logger.OperationFailed("session release answer", ex.Message);
        }
    }

    /// <summary>Waits (up to the move timeout) until every message stored in this node's inbox so far is handled: the
    /// inbox is a work queue, so handled messages leave it.</summary>
    private async Task DrainInboxAsync(CancellationToken cancellationToken)
    {
        var stream = await _js!.GetStreamAsync(ClusterNames.InboxStream(nodeId), cancellationToken: cancellationToken).ConfigureAwait(false);
        var last = stream.Info.State.LastSeq;
        var clock = Stopwatch.StartNew();
        while (stream.Info.State.Messages > 0 && stream.Info.State.FirstSeq <= last && clock.Elapsed < timeout)
        {
            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
            await stream.RefreshAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The session of <paramref name="clientId"/> when another node wrote it last.</summary>
    /// <exception cref="StoreUnavailableException">the replica cannot be read (NATS unreachable).</exception>
    public async Task<StoredSessionState?> FindAsync(string clientId, CancellationToken cancellationToken)
    {
        if (_js is null)
        {
            return null;
        }
        try
        {
            var (state, owner) = await SessionReplica.ReadAsync(_js, clientId, cancellationToken).ConfigureAwait(false);
            if (state is null || owner is null || owner == nodeId)
            {
                return null;
            }
            _previews[clientId] = (state, owner);
            return state;
        }
        catch (Exception ex) when (ex is NatsException or InvalidDataException)
        {
            // A new session here now would later fence the device's real one elsewhere and lose what it holds: the
            // device is refused (Server unavailable) and tries again.
            logger.OperationFailed("session replica read", ex.Message);
            throw new StoreUnavailableException("the cluster's session replica cannot be read: " + ex.Message, ex);
        }
    }

    /// <summary>Has the holding node let go and returns the session as it was left (the earlier read when the replica
    /// cannot be read now); this node's writes then take the replica over.</summary>
    public async Task<StoredSessionState?> TakeAsync(string clientId, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        _previews.TryRemove(clientId, out var preview);
        await Task.Delay(s_routesSettle, cancellationToken).ConfigureAwait(false);
        var owner = preview.Owner;
        var answered = false;
        if (owner is not null && _nats is not null && isAlive(owner))
        {
            try
            {
                await _nats.RequestAsync<string, string>(Subject(owner), clientId, replyOpts: new NatsSubOpts { Timeout = timeout },
                    cancellationToken: cancellationToken).ConfigureAwait(false);
                answered = true;
            }
            catch (Exception ex) when (ex is NatsException or TimeoutException)
            {
                logger.SessionOwnerSilent(clientId, owner, ex.Message);
            }
        }
        StoredSessionState? state = preview.State;
        try
        {
            (state, _) = await SessionReplica.ReadAsync(_js!, clientId, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is NatsException or InvalidDataException)
        {
            logger.OperationFailed("session replica read", ex.Message);
        }
        replica.TakeOver(clientId);
        Interlocked.Increment(ref _moved);
        logger.SessionMoved(clientId, owner ?? "?", answered ? "released it" : "did not answer", clock.ElapsedMilliseconds, state?.Messages.Count ?? 0);
        return state;
    }
}
