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

/// <summary>
/// One MQTT network connection (MQTT 3.1.1 and 5.0 §3, §4). A reader loop decodes packets from the transport's
/// <see cref="PipeReader"/> and handles them synchronously (payloads are copied before the reader advances); the
/// outbound side is <see cref="MqttConnectionWriter"/>, which owns the <see cref="PipeWriter"/>; CONNECT rules are
/// <see cref="ConnectNegotiation"/>.
/// Protocol violations surface as one <see cref="MqttProtocolException"/> caught in <see cref="RunAsync"/>.
/// </summary>
internal sealed class MqttConnection
{
    private readonly MqttBroker _broker;
    private readonly ConnectionContext _context;
    private readonly MqttBrokerOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly MqttConnectionWriter _writer;
    // Completed by RequestClose: a publisher held back for a subscriber stops waiting.
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Guarded by _stateLock.
    private readonly Lock _stateLock = new();
    private bool _discardSession;
    private bool _finished;
    private volatile bool _closeRequested;

    private volatile bool _connected;
    private MqttProtocolVersion? _version;
    private MqttSession? _session;
    private volatile IClientGrants _grants = AllowAllAuthorizer.Instance;
    private WillState? _will;
    private bool _willDiscarded;
    private IDisposable? _willRegistration;
    private IDisposable? _ownership;
    private bool _clientDisconnected;
    private string?[]? _topicAliases;
    private uint _sessionExpiryAtConnect;
    private ushort _keepAlive;
    private long _lastPacketTimestamp;
    private ITimer? _timer;
    private IncompletePacketDeadline? _incompletePacket;
    private bool _countedConnection;
    private ConnAckPacket? _refusal;
    private MqttProtocolVersion _refusalVersion;
    private CancellationTokenRegistration _revokedRegistration;
    private IClientIdentityFeature? _identity;
    // PUBACK/PUBREC waiting for the store commit of their message (strict durability).
    private readonly DurableAckQueue _acks;
    private DeliveryContext? _delivery;
    private PendingAck _pendingAck;
    private Task? _hold;
    private long _readAhead;

    /// <summary>How many bytes of PUBLISH packets a held-back connection reads past (leaving them in its input) to reach
    /// the acknowledgements behind them; beyond that it stops reading until there is room.</summary>
    private const int MaxReadAheadBytes = 64 * 1024;

    public MqttConnection(MqttBroker broker, ConnectionContext context)
    {
        _broker = broker;
        _context = context;
        _options = broker.Options;
        _logger = broker.Logger;
        _time = broker.TimeProvider;
        RemoteEndPoint = context.Features.Get<IRemoteAddressFeature>()?.RemoteEndPoint ?? context.RemoteEndPoint;
        _acks = new DurableAckQueue(broker, this);
        _writer = new MqttConnectionWriter(this, broker, context.Transport.Output);
    }

    public string? ClientId { get; private set; }
    public EndPoint? RemoteEndPoint { get; }
    public X509Certificate2? Certificate => _identity?.Certificate;
    public IReadOnlyList<X509Certificate2>? CertificateChain => _identity?.Chain;
    public MqttProtocolVersion ProtocolVersion => _version ?? MqttProtocolVersion.V311;
    public DateTimeOffset ConnectedAt { get; private set; }
    public bool IsConnected => _connected && !_closeRequested;
    public MqttSession? Session => _session;
    public MqttClientInfo? ClientInfo { get; private set; }
    public IClientGrants Grants => _grants;

    public async Task RunAsync()
    {
        var input = _context.Transport.Input;
        _timer = _time.CreateTimer(static state => ((MqttConnection)state!).OnTimer(), this, _options.ConnectTimeout, Timeout.InfiniteTimeSpan);
        var shutdown = _context.Features.Get<IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested ?? CancellationToken.None;
        using var shutdownRegistration = shutdown.UnsafeRegister(
            static state => ((MqttConnection)state!).RequestClose(MqttReasonCode.ServerShuttingDown), this);
        var outcome = "closed by peer";

        try
        {
            while (!_closeRequested)
            {
                var read = input.ReadAsync();
                var result = _hold is null || read.IsCompleted
                    ? await read.ConfigureAwait(false)
                    : await ReadOrRoomAsync(input, read, _hold).ConfigureAwait(false);
                if (_hold is { IsCompleted: true })
                {
                    await _hold.ConfigureAwait(false);
                    _hold = null;
                }
                var buffer = result.Buffer;
                var consumed = buffer.Start;
                var examined = buffer.End;
                var stop = false;
                var completedAny = false;
                var partial = false;
                var readAheadBlocked = false;
                long offset = 0;
                long consumedOffset = 0;
                if (_hold is not null && _readAhead > 0)
                {
                    // Still held: what was read ahead before is not parsed again, only what arrived since.
                    buffer = buffer.Slice(_readAhead);
                    offset = _readAhead;
                }
                try
                {
                    while (!_closeRequested)
                    {
                        if (!MqttPacketReader.TryRead(buffer, _version, _options.MaximumPacketSize, out var packet, out var end, out var seen))
                        {
                            partial = !buffer.IsEmpty;
                            if (_hold is null)
                            {
                                consumed = end;
                                examined = seen;
                            }
                            break;
                        }

                        offset += buffer.Slice(buffer.Start, end).Length;
                        buffer = buffer.Slice(end);
                        completedAny = true;
                        Volatile.Write(ref _lastPacketTimestamp, _time.GetTimestamp());
                        var handledAhead = offset <= _readAhead;
                        if (_hold is not null)
                        {
                            // Held back (a subscriber's queue is full): read on for the acknowledgements of this client's
                            // own deliveries, so its queue drains and a client that is itself a held publisher's
                            // subscriber does not wait for the slow-subscriber timeout. PUBLISH packets stay in the
                            // input, unconsumed, up to MaxReadAheadBytes; anything else waits for the room.
                            if (handledAhead)
                            {
                                continue;
                            }
                            if (packet is PublishPacket && offset - consumedOffset <= MaxReadAheadBytes
                                || packet is PubAckPacket or PingReqPacket && HandlePacket(packet))
                            {
                                _readAhead = offset;
                                continue;
                            }
                            readAheadBlocked = true;
                            break;
                        }

                        consumed = end;
                        examined = end;
                        consumedOffset = offset;
                        if (handledAhead && packet is not PublishPacket)
                        {
                            continue;
                        }
                        if (!HandlePacket(packet))
                        {
                            stop = true;
                            break;
                        }
                        if (_delivery is { Held.Count: > 0 })
                        {
                            _hold = HoldAsync();
                            if (_hold.IsCompleted)
                            {
                                _hold.GetAwaiter().GetResult();
                                _hold = null;
                            }
                        }
                    }
                }
                finally
                {
                    input.AdvanceTo(consumed, readAheadBlocked ? consumed : examined);
                    _readAhead = Math.Max(0, _readAhead - consumedOffset);
                }
                if (partial || _incompletePacket is not null)
                {
                    // A packet was started and not finished: it must be finished within IncompletePacketTimeout.
                    (_incompletePacket ??= new IncompletePacketDeadline(_time, _options.IncompletePacketTimeout, OnIncompletePacketTimeout))
                        .Update(partial, completedAny);
                }

                if (stop)
                {
                    outcome = _clientDisconnected ? "DISCONNECT" : "refused";
                    break;
                }
                if (_hold is not null && (readAheadBlocked || result.IsCompleted))
                {
                    // Nothing more to read ahead: wait for the room, then handle what is buffered.
                    await _hold.ConfigureAwait(false);
                    _hold = null;
                    continue;
                }
                if (result.IsCompleted && _hold is null)
                {
                    outcome = buffer.IsEmpty ? "closed by peer" : "closed by peer inside a packet";
                    break;
                }
                await _writer.WaitForControlBacklogAsync().ConfigureAwait(false);
            }
            if (_closeRequested && !_clientDisconnected && _refusal is null)
            {
                outcome = "closed by server";
            }
        }
        catch (MqttProtocolException ex)
        {
            outcome = "protocol violation";
            OnProtocolViolation(ex);
        }
        catch (IOException ex)
        {
            // Connection reset and friends: an abnormal close, the will is published.
            outcome = "transport error";
            _logger.TransportError(RemoteEndPoint, ClientId, ex.Message);
        }
        catch (OperationCanceledException)
        {
            // ConnectionAbortedException: the transport was aborted under us.
            outcome = "aborted";
        }
        finally
        {
            await CloseAsync(outcome).ConfigureAwait(false);
        }
    }

    /// <summary>Queues a packet for the writer (acknowledgements, SUBACK, PINGRESP, ...).</summary>
    public void Send(MqttPacket packet) => _writer.Send(packet);

    /// <summary>Wakes the writer: new work is queued in the session or the control queue.</summary>
    public void Signal() => _writer.Signal();

    /// <summary>Asks the connection to close from any thread. A 5.0 client that has been sent a successful CONNACK
    /// gets DISCONNECT with <paramref name="reasonCode"/> first (never before CONNACK [MQTT-3.14.0-1]).</summary>
    public void RequestClose(MqttReasonCode? reasonCode, bool discardSession = false)
    {
        DisconnectPacket? disconnect = null;
        lock (_stateLock)
        {
            _discardSession |= discardSession;
            if (_closeRequested || _finished)
            {
                return;
            }
            _closeRequested = true;
            if (reasonCode is { } code && _connected && _version == MqttProtocolVersion.V500)
            {
                disconnect = new DisconnectPacket { ReasonCode = code };
            }
        }
        _writer.Close(disconnect);
        _closed.TrySetResult();
        _context.Transport.Input.CancelPendingRead();
    }

    /// <summary>The will of CONNECT, while not yet taken (persisted at attach).</summary>
    public WillState? Will => Volatile.Read(ref _will);

    /// <summary>Detaches the will for publication by the broker (once): on takeover or close.</summary>
    public WillState? TakeWill()
    {
        var will = Interlocked.Exchange(ref _will, null);
        return will is null ? null : will with { Grants = _grants };
    }

    /// <summary>After a policy change: installs the re-resolved grants.</summary>
    public void UpdateGrants(IClientGrants grants)
    {
        _grants = grants;
        if (_session is { } session)
        {
            session.Grants = grants;
        }
    }

    private bool HandlePacket(MqttPacket packet)
    {
        if (!_connected)
        {
            // The codec accepts only CONNECT while the version is unknown [MQTT-3.1.0-1].
            return packet is ConnectPacket connect
                ? HandleConnect(connect)
                : throw new MqttProtocolException(MqttReasonCode.ProtocolError, $"{packet.Type} before CONNECT");
        }

        switch (packet)
        {
            case PublishPacket publish:
                HandlePublish(publish);
                return true;
            case PubAckPacket ack:
                HandleAck(ack);
                return true;
            case SubscribePacket subscribe:
                HandleSubscribe(subscribe);
                return true;
            case UnsubscribePacket unsubscribe:
                HandleUnsubscribe(unsubscribe);
                return true;
            case PingReqPacket:
                Send(PingRespPacket.Instance);
                return true;
            case DisconnectPacket disconnect:
                HandleDisconnect(disconnect);
                return false;
            case ConnectPacket:
                // [MQTT-3.1.0-2]: a second CONNECT is a protocol violation.
                MqttThrow.ProtocolError("second CONNECT on the same connection");
                return false;
            case AuthPacket:
                // Enhanced authentication (5.0 §4.12) is not offered, so no AUTH can be part of a valid exchange.
                MqttThrow.ProtocolError("AUTH without an authentication method");
                return false;
            default:
                MqttThrow.ProtocolError($"{packet.Type} is not sent by clients");
                return false;
        }
    }

    // ------------------------------------------------------------------ CONNECT (§3.1)

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

    // ------------------------------------------------------------------ PUBLISH (§3.3, §4.3)

    private void HandlePublish(PublishPacket publish)
    {
        var v5 = _version == MqttProtocolVersion.V500;
        var session = _session!;
        var topic = publish.Topic;

        if (v5 && publish.Properties?.SubscriptionIdentifiers is not null)
        {
            // [MQTT-3.3.4-6]: a PUBLISH sent by a client MUST NOT contain a Subscription Identifier.
            MqttThrow.ProtocolError("Subscription Identifier in a PUBLISH from a client [MQTT-3.3.4-6]");
        }
        if (v5 && publish.Properties?.TopicAlias is { } alias)
        {
            if (alias == 0 || alias > _options.TopicAliasMaximum)
            {
                // [MQTT-3.3.2-8], [MQTT-3.3.2-9]
                MqttThrow.Violation(MqttReasonCode.TopicAliasInvalid, $"topic alias {alias} outside 1..{_options.TopicAliasMaximum}");
            }
            if (topic.Length == 0)
            {
                topic = _topicAliases![alias] ?? throw new MqttProtocolException(MqttReasonCode.ProtocolError, $"topic alias {alias} is not mapped");
            }
            else
            {
                _topicAliases![alias] = topic;
            }
        }

        if (!MqttTopic.IsValidTopicName(topic))
        {
            // [MQTT-3.3.2-2]: no wildcards in a topic name.
            MqttThrow.Violation(MqttReasonCode.TopicNameInvalid, "invalid topic name in PUBLISH");
        }
        var retain = publish.Retain;
        if (retain && !_options.RetainAvailable)
        {
            if (v5)
            {
                // 5.0 §3.2.2.3.5: RETAIN=1 while Retain Available is 0 is a protocol violation (0x9A).
                MqttThrow.Violation(MqttReasonCode.RetainNotSupported, "RETAIN while retain is not available");
            }
            retain = false;
        }

        var qos = publish.Qos;
        var packetId = publish.PacketId;
        _broker.Metrics.MessageIn(qos, (int)publish.Payload.Length);

        if (qos == MqttQos.ExactlyOnce && session.IsInboundQos2Pending(packetId))
        {
            // A retransmission of a QoS 2 PUBLISH we already delivered (method B below): acknowledge again, do not
            // deliver again (5.0 §4.3.3, 3.1.1 §4.3.3).
            SendAck(new PubAckPacket(MqttPacketType.PubRec) { PacketId = packetId }, 0);
            return;
        }
        if (v5 && qos != MqttQos.AtMostOnce && session.InboundQos2Count >= _options.ReceiveMaximum)
        {
            // 5.0 §3.3.4, §4.9: more unacknowledged QoS 1/2 PUBLISH than the Receive Maximum we announced.
            MqttThrow.Violation(MqttReasonCode.ReceiveMaximumExceeded, $"more than {_options.ReceiveMaximum} QoS 1/2 PUBLISH in flight");
        }

        if (topic[0] == '$' && _broker.ReservedTopicHandler is { } reserved && reserved.Handles(topic))
        {
            HandleReserved(reserved, publish, topic, session);
            return;
        }

        var allowed = _grants.CanPublish(topic, qos, retain);
        _broker.Metrics.AuthorizationDecision(MqttMetrics.Actions.Publish, allowed);
        if (!allowed)
        {
            _broker.DropLog.Record(ClientId!, "publish_denied", denial: true, topic);
            _broker.Metrics.MessageDropped(MqttMetrics.DropReasons.Denied);
            _broker.CountDropped();
            if (v5)
            {
                // 5.0 tells the client: PUBACK/PUBREC with 0x87, which also ends a QoS 2 flow (no PUBREL expected).
                // Through the ack queue: it must not overtake acknowledgements still waiting for their commit [MQTT-4.6.0-2].
                if (qos != MqttQos.AtMostOnce)
                {
                    SendAck(new PubAckPacket(qos == MqttQos.AtLeastOnce ? MqttPacketType.PubAck : MqttPacketType.PubRec)
                    {
                        PacketId = packetId,
                        ReasonCode = MqttReasonCode.NotAuthorized,
                    }, 0);
                }
                return;
            }

            // 3.1.1 has no negative acknowledgement: acknowledge so the client does not retry forever, and drop.
            Acknowledge(session, qos, packetId, MqttReasonCode.Success);
            if (_options.DisconnectOnDeniedPublishV311)
            {
                RequestClose(null);
            }
            return;
        }

        if (qos != MqttQos.AtMostOnce && !_broker.CanStoreDurably)
        {
            // The store cannot write (disk full): refuse instead of acknowledging what cannot be kept.
            RefuseUnstorable(topic, qos, packetId);
            return;
        }

        // Inbound QoS 2 uses method B of the spec's QoS 2 flow (3.1.1 Figure 4.3, 5.0 Figure 4.3): store the Packet
        // Identifier and deliver onwards now; PUBREL only releases the identifier. While the identifier is held a
        // retransmitted PUBLISH is acknowledged but not delivered again, which gives exactly-once delivery without
        // keeping the message itself.
        var delivery = _delivery!;
        delivery.Reset();
        var delivered = _broker.Publish(topic, publish.Payload, qos, retain, v5 ? publish.Properties : null, ClientId, delivery, out var retainRefused,
            out var position);
        var reasonCode = !v5 ? MqttReasonCode.Success
            : retainRefused ? MqttReasonCode.QuotaExceeded // delivered, but over a retained-message limit: not retained
            : delivered == 0 ? MqttReasonCode.NoMatchingSubscribers : MqttReasonCode.Success;
        if (delivery.Overflow && v5)
        {
            // Some session could not absorb its copy: the publisher learns it before any acknowledgement (0x97 also
            // ends a QoS 2 flow, so no identifier is held).
            reasonCode = MqttReasonCode.QuotaExceeded;
        }
        if (delivery.Held.Count > 0)
        {
            // Acknowledged once every held subscriber has room (HoldAsync) and, in strict durability, once the store
            // has committed the message; a QoS 2 identifier is recorded now so a retransmission after a reconnect is
            // not delivered twice.
            if (qos == MqttQos.ExactlyOnce && (byte)reasonCode < 0x80)
            {
                session.TryBeginInboundQos2(packetId, out var qos2Position);
                position = Math.Max(position, qos2Position);
            }
            _pendingAck = new PendingAck(qos, packetId, reasonCode, position, delivery.Remote);
            return;
        }
        Acknowledge(session, qos, packetId, reasonCode, position, delivery.Remote);
    }

    /// <summary>The next input; while held back, also returns (cancelled, with the unread input) once there is room.</summary>
    private static async Task<ReadResult> ReadOrRoomAsync(PipeReader input, ValueTask<ReadResult> read, Task hold)
    {
        var reading = read.AsTask();
        if (await Task.WhenAny(reading, hold).ConfigureAwait(false) == hold && !reading.IsCompleted)
        {
            input.CancelPendingRead();
        }
        return await reading.ConfigureAwait(false);
    }

    /// <summary>Waits until every subscriber whose queue the last PUBLISH filled has room again, declaring slow (and
    /// handling by policy) those full for longer than the slow-subscriber timeout; then sends the held acknowledgement.</summary>
    private async Task HoldAsync()
    {
        var started = _time.GetTimestamp();
        var held = _delivery!.Held;
        foreach (var subscriber in held)
        {
            while (!_closeRequested)
            {
                var room = subscriber.WaitForRoomAsync();
                if (room.IsCompleted)
                {
                    break;
                }
                var remaining = _options.SlowSubscriberTimeout - subscriber.FullFor();
                if (remaining > TimeSpan.Zero)
                {
                    using var timeout = new CancellationTokenSource();
                    var delay = Task.Delay(remaining, _time, timeout.Token);
                    var first = await Task.WhenAny(room, _closed.Task, delay).ConfigureAwait(false);
                    timeout.Cancel();
                    if (first != delay)
                    {
                        continue;
                    }
                }
                _broker.DeclareSlow(subscriber);
            }
        }
        held.Clear();
        _broker.Metrics.PublisherHeldBack(_time.GetElapsedTime(started).TotalSeconds);
        if (_closeRequested)
        {
            return;
        }
        var ack = _pendingAck;
        _pendingAck = default;
        if (ack.Qos == MqttQos.AtMostOnce)
        {
            return;
        }
        // Room is there; the acknowledgement still waits for the store commit of its message (strict durability),
        // in order behind acknowledgements already waiting for theirs.
        var type = ack.Qos == MqttQos.ExactlyOnce ? MqttPacketType.PubRec : MqttPacketType.PubAck;
        SendAck(new PubAckPacket(type) { PacketId = ack.PacketId, ReasonCode = ack.ReasonCode }, ack.Position, ack.Remote);
    }

    /// <summary>An acknowledgement held for subscriber room; <see cref="Position"/> is the store position it must also
    /// wait for (0 when none), <see cref="Remote"/> the other nodes of a cluster (null when none).</summary>
    private readonly record struct PendingAck(MqttQos Qos, ushort PacketId, MqttReasonCode ReasonCode, long Position, Task<bool>? Remote);

    // MQTT 5.0 §4.10 request/response with the broker itself as responder: the reply is queued for this session only.
    private void HandleReserved(IReservedTopicHandler handler, PublishPacket publish, string topic, MqttSession session)
    {
        var properties = _version == MqttProtocolVersion.V500 ? publish.Properties : null;
        var responseTopic = properties?.ResponseTopic;
        var correlation = properties?.CorrelationData?.ToArray();
        var replyQos = publish.Qos == MqttQos.AtMostOnce ? MqttQos.AtMostOnce : MqttQos.AtLeastOnce;
        var request = new ReservedTopicRequest(ClientId!, _identity?.Certificate, _identity?.Chain ?? [], topic, publish.Payload.ToArray(),
            responseTopic, correlation, properties?.ContentType, reply =>
            {
                if (responseTopic is null)
                {
                    return;
                }
                var message = new MqttApplicationMessage(responseTopic, reply.Payload, replyQos, retain: false)
                {
                    IsDirectReply = true,
                    ContentType = reply.ContentType,
                    CorrelationData = correlation,
                    UserProperties = reply.UserProperties is { Count: > 0 } user ? [.. user] : null,
                };
                session.Enqueue(message, replyQos, retain: false, subscriptionIds: null);
            });
        handler.Handle(request);
        Acknowledge(session, publish.Qos, publish.PacketId, MqttReasonCode.Success);
    }

    private void Acknowledge(MqttSession session, MqttQos qos, ushort packetId, MqttReasonCode reasonCode, long position = 0,
        Task<bool>? remote = null)
    {
        switch (qos)
        {
            case MqttQos.AtLeastOnce:
                SendAck(new PubAckPacket(MqttPacketType.PubAck) { PacketId = packetId, ReasonCode = reasonCode }, position, remote);
                break;
            case MqttQos.ExactlyOnce:
                var held = 0L;
                if ((byte)reasonCode < 0x80)
                {
                    // A PUBREC with an error code ends the flow (5.0 §4.3.3): no PUBREL follows, nothing to hold.
                    session.TryBeginInboundQos2(packetId, out held);
                }
                SendAck(new PubAckPacket(MqttPacketType.PubRec) { PacketId = packetId, ReasonCode = reasonCode }, Math.Max(position, held), remote);
                break;
        }
    }

    /// <summary>Sends a PUBACK/PUBREC now, or once the store has committed <paramref name="position"/> (strict
    /// durability) and the other nodes of a cluster hold its message (<paramref name="remote"/>), in order with the others.</summary>
    private void SendAck(PubAckPacket ack, long position, Task<bool>? remote = null) => _acks.Send(ack, position, remote);

    private void RefuseUnstorable(string topic, MqttQos qos, ushort packetId)
    {
        _logger.PublishRefusedStoreUnavailable(ClientId!, qos, topic);
        _broker.Metrics.MessageDropped("store_unavailable");
        _broker.CountDropped();
        if (_version != MqttProtocolVersion.V500)
        {
            RequestClose(null);
            return;
        }
        SendAck(new PubAckPacket(qos == MqttQos.AtLeastOnce ? MqttPacketType.PubAck : MqttPacketType.PubRec)
        {
            PacketId = packetId,
            ReasonCode = MqttReasonCode.QuotaExceeded,
        }, 0);
    }

    private void HandleAck(PubAckPacket ack)
    {
        var session = _session!;
        var v5 = _version == MqttProtocolVersion.V500;
        switch (ack.PacketType)
        {
            case MqttPacketType.PubAck:
                if (session.OnPubAck(ack.PacketId))
                {
                    Signal();
                }
                else
                {
                    _logger.UnknownPacketId(ClientId!, ack.PacketId, ack.PacketType);
                }
                break;

            case MqttPacketType.PubRec:
                switch (session.OnPubRec(ack.PacketId, ack.ReasonCode))
                {
                    case PubRecOutcome.SendPubRel:
                        Send(new PubAckPacket(MqttPacketType.PubRel) { PacketId = ack.PacketId });
                        break;
                    case PubRecOutcome.Refused:
                        Signal();
                        break;
                    default:
                        // 5.0 §3.6.2.1 answers an unknown identifier with PUBREL 0x92; 3.1.1 completes the flow anyway.
                        _logger.UnknownPacketId(ClientId!, ack.PacketId, ack.PacketType);
                        Send(new PubAckPacket(MqttPacketType.PubRel)
                        {
                            PacketId = ack.PacketId,
                            ReasonCode = v5 ? MqttReasonCode.PacketIdentifierNotFound : MqttReasonCode.Success,
                        });
                        break;
                }
                break;

            case MqttPacketType.PubRel:
                var known = session.CompleteInboundQos2(ack.PacketId);
                Send(new PubAckPacket(MqttPacketType.PubComp)
                {
                    PacketId = ack.PacketId,
                    ReasonCode = known || !v5 ? MqttReasonCode.Success : MqttReasonCode.PacketIdentifierNotFound,
                });
                break;

            case MqttPacketType.PubComp:
                if (session.OnPubComp(ack.PacketId))
                {
                    Signal();
                }
                else
                {
                    _logger.UnknownPacketId(ClientId!, ack.PacketId, ack.PacketType);
                }
                break;
        }
    }

    // ------------------------------------------------------------------ SUBSCRIBE / UNSUBSCRIBE (§3.8, §3.10)

    private void HandleSubscribe(SubscribePacket subscribe)
    {
        var session = _session!;
        var v5 = _version == MqttProtocolVersion.V500;
        var subscriptionId = v5 && subscribe.Properties?.SubscriptionIdentifiers is [var id, ..] ? id : 0u;
        var codes = new List<MqttReasonCode>(subscribe.Subscriptions.Count);
        List<Subscription>? sendRetained = null;

        foreach (var request in subscribe.Subscriptions)
        {
            if (!TopicFilters.Validate(request.Filter, out var shared))
            {
                codes.Add(MqttReasonCode.TopicFilterInvalid);
                continue;
            }
            if (shared && request.Options.NoLocal)
            {
                // [MQTT-3.8.3-4]
                MqttThrow.ProtocolError("No Local on a shared subscription");
            }

            if (_broker.Limits.SubscriptionRefused(session, request.Filter))
            {
                // 3.1.1 SUBACK turns every failure into 0x80.
                codes.Add(MqttReasonCode.QuotaExceeded);
                continue;
            }
            var subscription = new Subscription(session, request.Filter, request.Options, subscriptionId);
            // The policy decides on the topic filter proper; the share group only spreads the load.
            var allowed = _grants.CanSubscribe(subscription.TopicFilter);
            _broker.Metrics.AuthorizationDecision(MqttMetrics.Actions.Subscribe, allowed);
            if (!allowed)
            {
                _broker.DropLog.Record(ClientId!, "subscribe_denied", denial: true, request.Filter);
                codes.Add(MqttReasonCode.NotAuthorized);
                continue;
            }

            var isNew = _broker.AddSubscription(session, subscription);
            codes.Add((MqttReasonCode)(byte)request.Options.MaximumQos);

            // Retained messages on subscribe per Retain Handling [MQTT-3.3.1-9], [MQTT-3.3.1-10], [MQTT-3.3.1-11];
            // never for shared subscriptions (5.0 §4.8.2: retained messages are not sent to a shared subscription).
            var handling = request.Options.RetainHandling;
            if (!shared && (handling == MqttRetainHandling.SendAtSubscribe || (handling == MqttRetainHandling.SendAtSubscribeIfNew && isNew)))
            {
                (sendRetained ??= []).Add(subscription);
            }
        }

        // SUBACK is queued before the retained messages; the writer takes session messages before control packets
        // and writes control packets first, so SUBACK always precedes them on the wire.
        Send(new SubAckPacket { PacketId = subscribe.PacketId, ReasonCodes = codes });
        if (sendRetained is not null)
        {
            foreach (var subscription in sendRetained)
            {
                _broker.DeliverRetained(subscription);
            }
        }
    }

    private void HandleUnsubscribe(UnsubscribePacket unsubscribe)
    {
        var codes = new List<MqttReasonCode>(unsubscribe.Filters.Count);
        foreach (var filter in unsubscribe.Filters)
        {
            // 0x11 when the filter did not exist (5.0 §3.11.3).
            codes.Add(_broker.RemoveSubscription(_session!, filter) ? MqttReasonCode.Success : MqttReasonCode.NoSubscriptionExisted);
        }
        Send(new UnsubAckPacket { PacketId = unsubscribe.PacketId, ReasonCodes = codes });
    }

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

    // ------------------------------------------------------------------ violations, timers, close

    private void OnProtocolViolation(MqttProtocolException ex)
    {
        _logger.ProtocolViolation(RemoteEndPoint, ClientId, ex.ReasonCode, ex.Message);
        if (_connected)
        {
            // 5.0: DISCONNECT with the reason code (§4.13.1); 3.1.1: close (§4.8).
            RequestClose(ex.ReasonCode);
        }
        else if (_version == MqttProtocolVersion.V500 && (byte)ex.ReasonCode >= 0x80)
        {
            // The CONNECT was decoded but is unacceptable: CONNACK with the reason code, then close (5.0 §3.2.2.2).
            _refusal = new ConnAckPacket { ReasonCode = ex.ReasonCode };
            _refusalVersion = MqttProtocolVersion.V500;
        }
        else if (ex.ReasonCode == MqttReasonCode.UnsupportedProtocolVersion)
        {
            // [MQTT-3.1.2-2]: CONNACK 0x01 (3.1.1) / 0x84, then close. The client's version is unknown, so use the
            // 3.1.1 layout, which every version can read.
            _refusal = new ConnAckPacket { ReasonCode = MqttReasonCode.UnsupportedProtocolVersion };
            _refusalVersion = MqttProtocolVersion.V311;
        }
    }

    private void OnTimer()
    {
        if (_closeRequested)
        {
            return;
        }
        if (!_connected)
        {
            _logger.ConnectTimeout(RemoteEndPoint, _options.ConnectTimeout);
            RequestClose(null);
            return;
        }
        if (_keepAlive == 0)
        {
            return;
        }

        var elapsed = _time.GetElapsedTime(Volatile.Read(ref _lastPacketTimestamp));
        var limit = KeepAliveLimit;
        if (elapsed >= limit)
        {
            // 1.5 x Keep Alive without a packet: 3.1.1 [MQTT-3.1.2-24], 5.0 [MQTT-3.1.2-22].
            _logger.KeepAliveTimeout(ClientId, Math.Round(elapsed.TotalSeconds, 1), _keepAlive);
            RequestClose(MqttReasonCode.KeepAliveTimeout);
            return;
        }
        _timer?.Change(limit - elapsed, Timeout.InfiniteTimeSpan);
    }

    private void OnIncompletePacketTimeout()
    {
        _logger.IncompletePacketTimeout(RemoteEndPoint, ClientId, _options.IncompletePacketTimeout);
        RequestClose(null);
    }

    private void OnIdentityRevoked()
    {
        _logger.IdentityRevoked(ClientId ?? "?", _identity?.RevocationReason);
        RequestClose(MqttReasonCode.AdministrativeAction, discardSession: true);
    }

    private async Task CloseAsync(string outcome)
    {
        _timer?.Dispose();
        _incompletePacket?.Dispose();
        _revokedRegistration.Dispose();
        RequestClose(null);

        if (_writer.Completion is { } writer)
        {
            await writer.ConfigureAwait(false);
        }
        else if (_refusal is not null)
        {
            await _writer.WriteRefusalAsync(_refusal, _refusalVersion).ConfigureAwait(false);
        }
        if (_writer.LastPacketWritten)
        {
            // Our DISCONNECT / refusal must reach the client rather than be lost to a reset.
            await GracefulClose.ShutdownAndDrainAsync(_context, GracefulClose.DrainLimit).ConfigureAwait(false);
        }

        bool discard;
        lock (_stateLock)
        {
            _finished = true;
            discard = _discardSession;
        }
        _writer.Dispose();

        if (_connected)
        {
            var will = TakeWill();
            if (_willDiscarded)
            {
                will = null;
            }
            _broker.OnConnectionClosed(this, will, discard);
            _willRegistration?.Dispose();
            _ownership?.Dispose();
            _broker.Metrics.ConnectionClosed(_version!.Value);
        }
        if (_countedConnection)
        {
            _broker.Limits.CloseConnection();
        }
        _logger.ConnectionClosed(ClientId, outcome);
    }
}
