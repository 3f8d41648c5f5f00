using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// The will of a connected client is persisted at CONNECT, so that a broker crash (SIGKILL, power loss) does not
/// forget it: after the restart the connection is gone without a DISCONNECT, which is exactly when the will is due
/// [MQTT-3.1.2-8]. The Will Delay Interval then counts from the restart (the client could not reconnect while the
/// broker was down), so a device that reconnects within its delay is not announced gone; a will without a delay
/// (every 3.1.1 will) is published at start-up, before the listeners open. A client whose session is not persistent
/// (expiry 0, 3.1.1 Clean Session 1) gets a session row with expiry 0 that carries only its will: at start-up that
/// session is ended and its will published. Rows are removed when the will is published or discarded (normal
/// DISCONNECT), or the session ends.
/// </summary>
internal sealed partial class SessionRegistry
{
    /// <summary>Writes (or clears) the will row of the connection just attached. Caller holds the session's Sync,
    /// after <see cref="Persist"/>.</summary>
    private void PersistConnectedWill(MqttSession session, WillState? will)
    {
        if (_store is null)
        {
            return;
        }
        if (session.Store is { } store)
        {
            // Persistent: the will sits beside the session's other rows (a WillDeleted that finds no row costs nothing).
            store.Append(will is null ? new WillDeleted(session.ClientId) : new WillSaved(session.ClientId, WillStates.ToStoredConnected(will)));
            session.TransientWillStored = false;
            return;
        }
        if (will is not null)
        {
            _store.Append(new SessionSaved(session.ToStoredLocked() with { ExpiryInterval = 0, ExpiresAt = null }));
            _store.Append(new WillSaved(session.ClientId, WillStates.ToStoredConnected(will)));
            session.TransientWillStored = true;
        }
        else
        {
            ForgetConnectedWillLocked(session);
        }
    }

    /// <summary>Removes the will-only session row of a non-persistent session. Caller holds the session's Sync.</summary>
    private void ForgetConnectedWillLocked(MqttSession session)
    {
        if (session.TransientWillStored)
        {
            session.TransientWillStored = false;
            _store?.Append(new SessionDeleted(session.ClientId));
        }
    }
}
