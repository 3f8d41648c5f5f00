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
internal sealed partial class MqttConnection
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
                        if (!_connected && packet is ConnectPacket { CleanStart: false, ClientId.Length: > 0 } moving && _broker.Cluster is not null)
                        {
                            // Cluster: the client's persistent session may be on another node; it moves here first.
                            await PrepareSessionMoveAsync(moving).ConfigureAwait(false);
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
