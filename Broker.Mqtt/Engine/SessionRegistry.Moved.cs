namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// In a cluster a session can be taken over by another node (the device reconnected there and that node's claim is the
/// later one). The copy an offline session left here is then stale: it goes without a trace of its own — no will
/// published, no messages counted as dropped — because its will and messages live on in the other node's copy.
/// </summary>
internal sealed partial class SessionRegistry
{
    /// <summary>Removes the offline session of <paramref name="clientId"/>; false when there is none (or it is
    /// connected: a connection is closed through the cluster's claim instead).</summary>
    public bool DiscardMoved(string clientId)
    {
        lock (_sessionsLock)
        {
            if (!_sessions.TryGetValue(clientId, out var session))
            {
                return false;
            }
            lock (session.Sync)
            {
                if (session.Connection is not null || session.Ended)
                {
                    return false;
                }
            }
            List<WillState>? none = null;
            EndSessionLocked(session, ref none, moved: true);
            return true;
        }
    }
}
