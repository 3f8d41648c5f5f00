using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Diagnostics;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

/// <summary>CONNECT (a refusal, or the session attached and CONNACK sent) and DISCONNECT.</summary>
internal sealed partial class MqttConnection
{
    // ------------------------------------------------------------------ CONNECT (§3.1)

    /// <summary>Set when the client's session could not be looked for in the cluster: the CONNECT is refused.</summary>
    private string? _sessionUnavailable;

    /// <summary>Cluster, before a CONNECT with Clean Start 0 is handled: the client's persistent session moves here if
    /// another node holds it (awaited by the reader: nothing else of this connection happens meanwhile).</summary>
    private async Task PrepareSessionMoveAsync(ConnectPacket connect)
    {
        try
        {
            await _broker.PrepareMovedSessionAsync(new MqttClientInfo(connect.ClientId, connect.ProtocolVersion,
                _context.Features.Get<IClientIdentityFeature>()?.Certificate, RemoteEndPoint, connect.UserName),
                _context.ConnectionClosed).ConfigureAwait(false);
        }
        catch (StoreUnavailableException ex)
        {
            _sessionUnavailable = ex.Message;
        }
    }

    private bool HandleConnect(ConnectPacket connect)
    {
        _version = connect.ProtocolVersion;
        var v5 = _version == MqttProtocolVersion.V500;
        _identity = _context.Features.Get<IClientIdentityFeature>();
        var identity = _identity is null
            ? ConnectIdentityState.None
            : new ConnectIdentityState(true, _identity.IdentityRevoked.IsCancellationRequested, _identity.RevocationReason);
        var negotiation = ConnectNegotiation.Negotiate(connect, _options, identity, static () => "omni-" + Guid.NewGuid().ToString("N"));
        if (negotiation.Refused)
        {
            return Refuse(negotiation.ClientId, negotiation.RefusalCode!.Value, negotiation.RefusalReason);
        }

        var clientId = negotiation.ClientId;
        ClientId = clientId;
        ClientInfo = new MqttClientInfo(clientId, _version.Value, _identity?.Certificate, RemoteEndPoint, connect.UserName);
        var decision = _broker.Authorizer.AuthorizeConnect(ClientInfo);
        var allowed = decision.Allowed && decision.Grants is not null;
        _broker.Metrics.AuthorizationDecision(MqttMetrics.Actions.Connect, allowed);
        if (!allowed)
        {
            return Refuse(clientId, MqttReasonCode.NotAuthorized, decision.Reason);
        }
        _grants = decision.Grants!;
        if (_sessionUnavailable is { } unavailable)
        {
            return Refuse(clientId, MqttReasonCode.ServerUnavailable, unavailable);
        }
        if (!_broker.Limits.TryOpenConnection(clientId))
        {
            return Refuse(clientId, MqttReasonCode.QuotaExceeded, "the broker holds Mqtt:MaxConnections connections");
        }
        _countedConnection = true;

        var keepAlive = negotiation.KeepAlive;
        var expiry = negotiation.SessionExpiry;
        _sessionExpiryAtConnect = expiry;
        _topicAliases = negotiation.TopicAliasMaximum > 0 ? new string?[negotiation.TopicAliasMaximum + 1] : null;
        var outboundAliases = v5 ? OutboundTopicAliases.Create(negotiation.ClientTopicAliasMaximum, _options.OutboundTopicAliasMaximum) : null;
        if (connect.Will is { } will)
        {
            _will = new WillState(clientId, will.Topic, will.Payload.ToArray(), will.Qos, will.Retain, v5 ? will.Properties : null,
                negotiation.WillDelaySeconds, _grants);
        }

        ConnectedAt = _time.GetUtcNow();
        var (session, sessionPresent) = _broker.AttachSession(this, clientId, connect.CleanStart, expiry, _grants);
        if (_will is { } clusterWill && _broker.Cluster is { } cluster && _grants.CanPublish(clusterWill.Topic, clusterWill.Qos, clusterWill.Retain))
        {
            // Published by another node should this one die while the client is connected.
            _willRegistration = cluster.RegisterWill(clientId, MqttApplicationMessage.Create(clusterWill.Topic, clusterWill.Payload,
                clusterWill.Qos, clusterWill.Retain, clusterWill.Properties, clientId, ConnectedAt).ToStored());
        }
        // A later connection with this client id on another node takes over, as one on this node would.
        _ownership = _broker.Cluster?.ClientAttached(clientId, () => RequestClose(MqttReasonCode.SessionTakenOver));
        _session = session;
        _delivery = new DeliveryContext(session);

        // First packet written: the writer starts below, and writes control packets before session messages.
        _writer.Send(negotiation.BuildConnAck(_version.Value, _options, sessionPresent, decision.ConnAckUserProperties));
        lock (_stateLock)
        {
            _connected = true;
        }
        _keepAlive = keepAlive;
        _timer!.Change(keepAlive == 0 ? Timeout.InfiniteTimeSpan : KeepAliveLimit, Timeout.InfiniteTimeSpan);
        if (_identity is not null)
        {
            _revokedRegistration = _identity.IdentityRevoked.UnsafeRegister(static state => ((MqttConnection)state!).OnIdentityRevoked(), this);
        }

        _broker.Metrics.ConnectionOpened(_version.Value);
        _logger.ConnectAccepted(clientId, RemoteEndPoint, _version.Value, connect.CleanStart, sessionPresent, keepAlive);
        _writer.Start(_version.Value, session, negotiation.OutboundWindow, negotiation.ClientMaximumPacketSize, outboundAliases);
        return true;
    }

    private bool Refuse(string? clientId, MqttReasonCode reasonCode, string reason)
    {
        _logger.ConnectRefused(RemoteEndPoint, clientId, reasonCode, reason);
        _refusal = new ConnAckPacket { ReasonCode = reasonCode };
        _refusalVersion = _version ?? MqttProtocolVersion.V311;
        return false;
    }

    private TimeSpan KeepAliveLimit => TimeSpan.FromSeconds(_keepAlive * 1.5);

    // ------------------------------------------------------------------ DISCONNECT (§3.14)

    private void HandleDisconnect(DisconnectPacket disconnect)
    {
        _clientDisconnected = true;
        if (_version == MqttProtocolVersion.V500)
        {
            if (disconnect.Properties?.SessionExpiryInterval is { } expiry)
            {
                if (_sessionExpiryAtConnect == 0 && expiry != 0)
                {
                    // [MQTT-3.14.2-2]
                    MqttThrow.ProtocolError("Session Expiry Interval set on DISCONNECT after 0 on CONNECT");
                }
                _broker.SetSessionExpiry(_session!, Math.Min(expiry, _options.MaximumSessionExpiryInterval));
            }
            // 0x00 discards the will [MQTT-3.14.4-3]; 0x04 (Disconnect with Will Message) and error codes keep it.
            _willDiscarded = disconnect.ReasonCode == MqttReasonCode.Success;
        }
        else
        {
            // [MQTT-3.14.4-3] (3.1.1): DISCONNECT discards the will.
            _willDiscarded = true;
        }
    }
}
