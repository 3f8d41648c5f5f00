using System.Buffers;
using System.IO.Pipelines;
using System.Net.WebSockets;
using Microsoft.Extensions.Logging;

namespace OmniBroker.Host.WebSockets;

/// <summary>
/// Presents a WebSocket as the byte stream MQTT expects (MQTT 3.1.1 §6, 5.0 §6): binary messages are copied into the
/// input pipe with their boundaries dropped, so a packet split over several messages or several packets in one
/// message decode as on TCP [MQTT-6.0.0-2]; a text message closes the connection with 1003 [MQTT-6.0.0-1]. Every
/// flushed output batch leaves as one binary message. Both directions are tracked at packet granularity so the
/// Close frame can mirror the MQTT end (<see cref="MqttWebSocketClose"/>).
/// </summary>
internal sealed class WebSocketDuplexPipe : IDuplexPipe
{
    private const int MinimumReceiveBuffer = 4096;

    /// <summary>How long the close handshake may take before the socket is dropped.</summary>
    private static readonly TimeSpan s_closeTimeout = TimeSpan.FromSeconds(5);

    /// <summary>After a failed WebSocket: how long the Close 1002 gets to reach the client before the connection ends
    /// (as long as .NET's own client waits for a server to close).</summary>
    private static readonly TimeSpan s_failedLinger = TimeSpan.FromSeconds(1);

    private readonly WebSocket _socket;
    private readonly Pipe _input;
    private readonly Pipe _output;
    private readonly ILogger _logger;
    private readonly string _remote;
    private readonly CancellationTokenSource _aborted = new();
    private readonly MqttPacketBoundaryTracker _received = new();
    private readonly MqttPacketBoundaryTracker _sent = new();
    private MqttWebSocketClose? _transportClose;
    private bool _receiveStoppedBeforeClose;
    private bool _failed;
    private readonly CancellationToken _connectionClosed;
    private Task? _receiving;
    private Task? _sending;

    /// <param name="maximumPacketSize">the engine's Mqtt:MaximumPacketSize: the input pipe holds one whole packet
    /// before it pushes back, as the engine waits for complete packets.</param>
    public WebSocketDuplexPipe(WebSocket socket, int maximumPacketSize, ILogger logger, string remote, CancellationToken connectionClosed)
    {
        _connectionClosed = connectionClosed;
        _socket = socket;
        _logger = logger;
        _remote = remote;
        var pause = Math.Max(maximumPacketSize + MinimumReceiveBuffer * 4L, 64 * 1024);
        _input = new Pipe(new PipeOptions(pauseWriterThreshold: pause, resumeWriterThreshold: pause / 2, useSynchronizationContext: false));
        _output = new Pipe(new PipeOptions(useSynchronizationContext: false));
    }

    public PipeReader Input => _input.Reader;

    public PipeWriter Output => _output.Writer;

    public void Start()
    {
        _receiving = ReceiveLoopAsync();
        _sending = SendLoopAsync();
    }

    /// <summary>Drops the WebSocket without a close handshake (ConnectionContext.Abort).</summary>
    public void Abort()
    {
        _aborted.Cancel();
        _socket.Abort();
    }

    /// <summary>After the MQTT connection has ended: sends what it wrote last, then the Close frame mirroring the
    /// MQTT end, and waits (bounded) for the client's Close. Returns the close sent, or null when the WebSocket was
    /// already failed or closed.</summary>
    public async Task<MqttWebSocketClose?> CompleteAsync()
    {
        await _output.Writer.CompleteAsync().ConfigureAwait(false);
        await _input.Reader.CompleteAsync().ConfigureAwait(false);
        using var timeout = new CancellationTokenSource(s_closeTimeout);
        using var registration = timeout.Token.UnsafeRegister(static state => ((WebSocketDuplexPipe)state!).Abort(), this);

        if (_sending is not null)
        {
            await _sending.ConfigureAwait(false);
        }

        MqttWebSocketClose? sent = null;
        var mirrored = MqttWebSocketClose.Mirror(_sent, _received);
        // A client that closed first gets its status echoed (RFC 6455 §5.5.1); the text still says how MQTT ended.
        var close = _transportClose ?? (_socket.CloseStatus is { } echoed ? mirrored with { Status = echoed } : mirrored);
        if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            try
            {
                await _socket.CloseOutputAsync(close.Status, close.Description, timeout.Token).ConfigureAwait(false);
                sent = close;
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
            {
                WebSocketLog.CloseFailed(_logger, _remote, ex.Message);
            }
        }

        if (_receiving is not null)
        {
            // The client answers our Close with its own; the receive loop ends there (or at the timeout's abort).
            await _receiving.ConfigureAwait(false);
            if (_receiveStoppedBeforeClose && _socket.State == WebSocketState.CloseSent)
            {
                // The receive loop had already stopped (text message): wait for the client's Close here.
                try
                {
                    await DrainUntilCloseAsync().ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
                {
                }
            }
        }
        if (_failed)
        {
            // The WebSocket failed itself after queueing its Close 1002: give the client a moment to read it and
            // close its side, rather than resetting a connection with the Close still in flight.
            using var linger = CancellationTokenSource.CreateLinkedTokenSource(_connectionClosed);
            linger.CancelAfter(s_failedLinger);
            try
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, linger.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
        return sent;
    }

    private async Task ReceiveLoopAsync()
    {
        await Task.Yield();
        var writer = _input.Writer;
        Exception? error = null;
        try
        {
            while (true)
            {
                var memory = writer.GetMemory(MinimumReceiveBuffer);
                var result = await _socket.ReceiveAsync(memory, _aborted.Token).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    // The client's Close is a network close for MQTT: no DISCONNECT means its will is published.
                    break;
                }
                if (result.MessageType == WebSocketMessageType.Text)
                {
                    WebSocketLog.TextMessageRefused(_logger, _remote);
                    _transportClose = new MqttWebSocketClose(WebSocketCloseStatus.InvalidMessageType, "MQTT is carried in binary messages only");
                    _receiveStoppedBeforeClose = true;
                    error = new IOException("the client sent a WebSocket text message; MQTT needs binary messages [MQTT-6.0.0-1]");
                    break;
                }

                _received.Observe(memory.Span[..result.Count]);
                writer.Advance(result.Count);
                var flush = await writer.FlushAsync(_aborted.Token).ConfigureAwait(false);
                if (flush.IsCompleted)
                {
                    // The engine stopped reading (the connection is closing); anything more is not MQTT's business.
                    await DrainUntilCloseAsync().ConfigureAwait(false);
                    break;
                }
            }
        }
        catch (WebSocketException ex) when (ex.WebSocketErrorCode == WebSocketError.ConnectionClosedPrematurely)
        {
            WebSocketLog.ClosedWithoutHandshake(_logger, _remote);
            error = new IOException("the client closed the connection without a WebSocket Close", ex);
        }
        catch (WebSocketException ex)
        {
            // Invalid frames: the WebSocket has usually sent Close 1002 itself; if it is still open, we send it.
            WebSocketLog.InvalidFrame(_logger, _remote, ex.Message, _socket.State);
            _transportClose = new MqttWebSocketClose(WebSocketCloseStatus.ProtocolError, "invalid WebSocket frame");
            _failed = true;
            error = new IOException($"invalid WebSocket frame: {ex.Message}", ex);
        }
        catch (IOException ex)
        {
            WebSocketLog.ClosedWithoutHandshake(_logger, _remote);
            error = ex;
        }
        catch (OperationCanceledException)
        {
            error = new IOException("the WebSocket was aborted");
        }
        finally
        {
            await writer.CompleteAsync(error).ConfigureAwait(false);
        }
    }

    /// <summary>Reads and discards until the client's Close: MQTT has finished, the WebSocket close handshake has not.</summary>
    private async Task DrainUntilCloseAsync()
    {
        var scratch = ArrayPool<byte>.Shared.Rent(MinimumReceiveBuffer);
        try
        {
            while (true)
            {
                var result = await _socket.ReceiveAsync(scratch.AsMemory(), _aborted.Token).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    private async Task SendLoopAsync()
    {
        await Task.Yield();
        var reader = _output.Reader;
        Exception? error = null;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(_aborted.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                try
                {
                    if (!buffer.IsEmpty)
                    {
                        _sent.Observe(buffer);
                        await SendMessageAsync(buffer).ConfigureAwait(false);
                    }
                }
                finally
                {
                    reader.AdvanceTo(buffer.End);
                }
                if (result.IsCompleted || result.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The engine's next flush fails with this and ends the MQTT connection as a transport error.
            error = new IOException($"WebSocket send failed: {ex.Message}", ex);
        }
        finally
        {
            await reader.CompleteAsync(error).ConfigureAwait(false);
        }
    }

    /// <summary>One binary message per batch; a multi-segment batch goes out as fragments of that message.</summary>
    private async ValueTask SendMessageAsync(ReadOnlySequence<byte> buffer)
    {
        if (buffer.IsSingleSegment)
        {
            await _socket.SendAsync(buffer.First, WebSocketMessageType.Binary, endOfMessage: true, _aborted.Token).ConfigureAwait(false);
            return;
        }
        var position = buffer.Start;
        buffer.TryGet(ref position, out var current);
        while (buffer.TryGet(ref position, out var next))
        {
            if (!current.IsEmpty)
            {
                await _socket.SendAsync(current, WebSocketMessageType.Binary, endOfMessage: false, _aborted.Token).ConfigureAwait(false);
            }
            current = next;
        }
        await _socket.SendAsync(current, WebSocketMessageType.Binary, endOfMessage: true, _aborted.Token).ConfigureAwait(false);
    }
}
