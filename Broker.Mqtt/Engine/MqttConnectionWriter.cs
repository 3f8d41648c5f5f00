using System.Buffers;
using System.IO.Pipelines;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Diagnostics;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// The outbound side of one MQTT connection, in the manner of Kestrel's <c>Http2FrameWriter</c>: the only owner of
/// the transport's <see cref="PipeWriter"/>. Control packets (acknowledgements, SUBACK, PINGRESP) are queued here,
/// PUBLISH messages in the session; one loop takes everything queued, encodes it as one batch and flushes once per
/// batch. It enforces the client's Maximum Packet Size and throttles a peer that does not read its answers
/// (<see cref="WaitForControlBacklogAsync"/>).
/// </summary>
internal sealed class MqttConnectionWriter
{
    private const int MaxPublishesPerBatch = 256;

    /// <summary>Control packets queued but not yet written above which the reader stops reading: a peer that sends
    /// without reading our answers is throttled instead of growing memory.</summary>
    private const int MaxControlBacklog = 1024;

    /// <summary>How long a closing connection may take to flush its last packets (DISCONNECT) to a slow peer.</summary>
    private static readonly TimeSpan s_closeFlushTimeout = TimeSpan.FromSeconds(5);

    private readonly MqttConnection _connection;
    private readonly MqttBroker _broker;
    private readonly PipeWriter _output;
    private readonly TimeProvider _time;

    // Coalescing wake-up: producers set it after queueing, the loop drains everything queued.
    private readonly WriterSignal _signal = new();
    private readonly CancellationTokenSource _cts = new();

    // Guarded by _lock.
    private readonly Lock _lock = new();
    private List<MqttPacket> _control = new();
    private DisconnectPacket? _disconnect;
    private TaskCompletionSource? _backlogDrained;
    private bool _closing;

    private MqttProtocolVersion _version;
    private MqttSession? _session;
    private int _window = 1;
    private uint _clientMaximumPacketSize;
    private OutboundTopicAliases? _aliases;
    private Task? _loop;

    public MqttConnectionWriter(MqttConnection connection, MqttBroker broker, PipeWriter output)
    {
        _connection = connection;
        _broker = broker;
        _output = output;
        _time = broker.TimeProvider;
    }

    /// <summary>The writer loop, once <see cref="Start"/> was called; null before.</summary>
    public Task? Completion => _loop;

    /// <summary>The last packet (DISCONNECT or refusing CONNACK) was flushed to a peer that still reads: the close
    /// should be graceful so that the reason code reaches the client rather than a reset.</summary>
    public bool LastPacketWritten { get; private set; }

    /// <summary>Starts the loop after a successful CONNECT. The CONNACK must already be queued with <see cref="Send"/>:
    /// it is the first packet written.</summary>
    public void Start(MqttProtocolVersion version, MqttSession session, int outboundWindow, uint clientMaximumPacketSize,
        OutboundTopicAliases? aliases)
    {
        _aliases = aliases;
        _version = version;
        _session = session;
        _window = outboundWindow;
        _clientMaximumPacketSize = clientMaximumPacketSize;
        _loop = RunAsync();
    }

    /// <summary>Queues a control packet; ignored once closing.</summary>
    public void Send(MqttPacket packet)
    {
        lock (_lock)
        {
            if (_closing)
            {
                return;
            }
            _control.Add(packet);
        }
        Signal();
    }

    /// <summary>Wakes the loop: new work is queued in the session or the control queue.</summary>
    public void Signal() => _signal.Set();

    /// <summary>Resolves when the loop has taken the queued control packets, if there are too many; the reader then
    /// stops consuming input (TCP backpressure on the peer) until they are written.</summary>
    public Task WaitForControlBacklogAsync()
    {
        lock (_lock)
        {
            if (_control.Count <= MaxControlBacklog || _closing)
            {
                return Task.CompletedTask;
            }
            _backlogDrained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _backlogDrained.Task;
        }
    }

    /// <summary>Writes what is queued, then <paramref name="disconnect"/> if any, and ends; a peer that does not read
    /// gets <see cref="s_closeFlushTimeout"/>. Idempotent.</summary>
    public void Close(DisconnectPacket? disconnect)
    {
        TaskCompletionSource? drained;
        lock (_lock)
        {
            if (_closing)
            {
                return;
            }
            _closing = true;
            _disconnect = disconnect;
            drained = _backlogDrained;
            _backlogDrained = null;
        }
        try
        {
            _cts.CancelAfter(s_closeFlushTimeout);
        }
        catch (ObjectDisposedException)
        {
            // Already finished.
        }
        drained?.TrySetResult();
        Signal();
    }

    /// <summary>Writes a refusing CONNACK on a connection whose loop never started, bounded by the close timeout.</summary>
    public async Task WriteRefusalAsync(ConnAckPacket connAck, MqttProtocolVersion version)
    {
        MqttPacketWriter.Write(_output, connAck, version);
        try
        {
            var flush = await _output.FlushAsync(_cts.Token).ConfigureAwait(false);
            LastPacketWritten = !flush.IsCompleted && !flush.IsCanceled;
        }
        catch (OperationCanceledException)
        {
            // The peer does not read; it is being closed anyway.
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Releases the timer of the close timeout once the connection is done.</summary>
    public void Dispose() => _cts.Dispose();

    private async Task RunAsync()
    {
        await Task.Yield();
        // Grows to MaxPublishesPerBatch only when the connection is busy: an idle one holds no 8 KiB batch array.
        var items = new List<OutboundItem>();
        var control = new List<MqttPacket>();
        // Created by the first delivery: a device that only publishes (most of a fleet) never holds one.
        PublishEncoder? encoder = null;
        var token = _cts.Token;
        var session = _session!;

        try
        {
            while (true)
            {
                _signal.Reset();
                bool closing;
                lock (_lock)
                {
                    closing = _closing;
                }
                var drops = default(DropCounts);
                if (!closing)
                {
                    // Session first, control second, written control first: a SUBACK queued before its retained
                    // messages is always written before them.
                    session.TakeOutbound(items, MaxPublishesPerBatch, _window, _time.GetUtcNow(), _connection.Grants, ref drops);
                    await _broker.WaitForUnsentRowsAsync(session.TakeUnsentRowsPosition()).ConfigureAwait(false);
                }

                DisconnectPacket? disconnect;
                TaskCompletionSource? drained;
                lock (_lock)
                {
                    (control, _control) = (_control, control);
                    disconnect = _closing ? _disconnect : null;
                    closing = _closing;
                    drained = _backlogDrained;
                    _backlogDrained = null;
                }
                drained?.TrySetResult();
                ReportDrops(drops);

                if (control.Count == 0 && items.Count == 0 && disconnect is null)
                {
                    if (closing)
                    {
                        break;
                    }
                    await _signal.WaitAsync(token).ConfigureAwait(false);
                    continue;
                }

                foreach (var packet in control)
                {
                    MqttPacketWriter.Write(_output, packet, _version);
                }
                foreach (var item in items)
                {
                    WriteOutbound(item, encoder ??= new PublishEncoder());
                }
                if (disconnect is not null)
                {
                    MqttPacketWriter.Write(_output, disconnect, _version);
                }
                control.Clear();
                items.Clear();

                var flush = await _output.FlushAsync(token).ConfigureAwait(false);
                if (disconnect is not null || flush.IsCompleted || flush.IsCanceled)
                {
                    LastPacketWritten = disconnect is not null && !flush.IsCompleted && !flush.IsCanceled;
                    break;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Close timeout: the peer stopped reading.
        }
        catch (IOException)
        {
        }
        finally
        {
            // If the transport failed under the writer, the reader must stop as well.
            _connection.RequestClose(null);
        }
    }

    private void WriteOutbound(OutboundItem item, PublishEncoder encoder)
    {
        if (item.IsPubRel)
        {
            MqttPacketWriter.Write(_output, new PubAckPacket(MqttPacketType.PubRel) { PacketId = item.PacketId }, _version);
            return;
        }

        var message = item.Message!;
        // Outbound topic alias (5.0 §3.3.2.3.4): a topic the client already maps goes out as an empty name.
        ushort alias = 0;
        var aliasKnown = false;
        if (_aliases is { } aliases)
        {
            alias = aliases.Lookup(message.Topic, out aliasKnown);
        }
        var publish = encoder.Prepare(item, _version, _time.GetUtcNow(), alias, aliasKnown);
        if (_clientMaximumPacketSize > 0)
        {
            var size = MqttPacketWriter.GetEncodedSize(publish, _version);
            if (size > _clientMaximumPacketSize)
            {
                // [MQTT-3.1.2-24]: never send a packet above the client's Maximum Packet Size; the message is dropped
                // for this client as if delivered ([MQTT-3.1.2-25]) and counted.
                if (item.PacketId != 0)
                {
                    _session!.Abandon(item.PacketId);
                }
                _broker.RecordDrop(_connection.ClientId!, MqttMetrics.DropReasons.TooLarge, message.Topic);
                return;
            }
        }

        MqttPacketWriter.Write(_output, publish, _version);
        if (alias != 0 && !aliasKnown)
        {
            // Only now does the client learn the mapping: a message dropped above must not establish it.
            _aliases!.Establish(message.Topic, alias);
        }
        _broker.Metrics.MessageOut(item.Qos, message.Payload.Length);
        _broker.CountSent();
    }

    private void ReportDrops(in DropCounts drops)
    {
        if (drops.Expired > 0)
        {
            _broker.RecordDrop(_connection.ClientId!, MqttMetrics.DropReasons.Expired, null, drops.Expired);
        }
        if (drops.Denied > 0)
        {
            _broker.RecordDrop(_connection.ClientId!, MqttMetrics.DropReasons.Denied, null, drops.Denied);
        }
    }

    /// <summary>One reusable PUBLISH (and 5.0 properties) per writer: encoding a delivery allocates nothing.</summary>
    private sealed class PublishEncoder
    {
        private readonly PublishPacket _publish = new();
        private readonly MqttProperties _properties = new();
        private readonly List<uint> _subscriptionIds = new();

        public PublishPacket Prepare(in OutboundItem item, MqttProtocolVersion version, DateTimeOffset now, ushort alias, bool aliasKnown)
        {
            var message = item.Message!;
            var publish = _publish;
            publish.Topic = alias != 0 && aliasKnown ? "" : message.Topic;
            publish.Qos = item.Qos;
            publish.Retain = item.Retain;
            publish.Dup = item.Dup;
            publish.PacketId = item.PacketId;
            publish.Payload = new ReadOnlySequence<byte>(message.Payload);
            publish.Properties = null;

            if (version == MqttProtocolVersion.V500 && (message.HasProperties || item.SubscriptionIds is not null || alias != 0))
            {
                var properties = _properties;
                properties.TopicAlias = alias == 0 ? null : alias;
                properties.PayloadFormatIndicator = message.PayloadFormatIndicator;
                properties.MessageExpiryInterval = message.RemainingExpirySeconds(now);
                properties.ContentType = message.ContentType;
                properties.ResponseTopic = message.ResponseTopic;
                properties.CorrelationData = message.CorrelationData;
                properties.UserProperties = message.UserProperties;
                _subscriptionIds.Clear();
                if (item.SubscriptionIds is not null)
                {
                    _subscriptionIds.AddRange(item.SubscriptionIds);
                }
                properties.SubscriptionIdentifiers = _subscriptionIds.Count > 0 ? _subscriptionIds : null;
                publish.Properties = properties;
            }
            return publish;
        }
    }
}
