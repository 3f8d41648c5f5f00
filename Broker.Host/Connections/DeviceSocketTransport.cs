using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using OmniBroker.Auth;

namespace OmniBroker.Host.Connections;

/// <summary>The MQTT over TLS listener's address: bound by <see cref="DeviceSocketTransportFactory"/>, not by
/// Kestrel's socket transport (which keeps a pipe pair and two parked I/O loops per connection).</summary>
internal sealed class DeviceEndPoint(IPAddress address, int port) : IPEndPoint(address, port);

/// <summary>
/// The device listener's transport (issue 13): Kestrel still dispatches, tracks, limits and shuts connections down,
/// but a connection is only its socket. The TLS middleware runs SslStream straight over it
/// (<see cref="IRawSocketStreamFeature"/>), so an idle device holds no transport pipe pair, no receive and send loop and
/// no transport-level copy of its bytes. The connection's <c>Transport</c> pipes are created only if a middleware asks
/// for them (PROXY protocol), over the same socket. Chosen for <see cref="DeviceEndPoint"/> only; HTTP, WebSocket and
/// EST listeners keep Kestrel's transport.
/// </summary>
internal sealed class DeviceSocketTransportFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    public bool CanBind(EndPoint endpoint) => endpoint is DeviceEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not DeviceEndPoint device)
        {
            throw new NotSupportedException($"{endpoint} is not a device listener address");
        }
        var socket = new Socket(device.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (device.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }
            socket.Bind(new IPEndPoint(device.Address, device.Port));
            // Kestrel's socket transport uses 512 too: a reconnect storm waits in the kernel, then in the handshake queue.
            socket.Listen(512);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            socket.Dispose();
            throw new AddressInUseException(ex.Message, ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        var bound = (IPEndPoint)socket.LocalEndPoint!;
        return ValueTask.FromResult<IConnectionListener>(new DeviceSocketListener(socket, new DeviceEndPoint(bound.Address, bound.Port)));
    }

    private sealed class DeviceSocketListener(Socket socket, EndPoint endPoint) : IConnectionListener
    {
        public EndPoint EndPoint { get; } = endPoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            while (true)
            {
                Socket accepted;
                try
                {
                    accepted = await socket.AcceptAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (ObjectDisposedException)
                {
                    return null; // unbound
                }
                catch (SocketException ex) when (ex.SocketErrorCode == SocketError.OperationAborted)
                {
                    return null; // unbound
                }
                catch (SocketException)
                {
                    // The client reset before accept, or descriptors are short (the listener cap keeps a reserve): as
                    // Kestrel's transport does, go on accepting.
                    continue;
                }
                accepted.NoDelay = true;
                return new DeviceSocketConnection(accepted);
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            socket.Dispose();
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            socket.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>One accepted device socket as a Kestrel connection; see <see cref="DeviceSocketTransportFactory"/>.</summary>
internal sealed class DeviceSocketConnection : ConnectionContext, IRawSocketStreamFeature, IConnectionIdFeature, IConnectionTransportFeature,
    IConnectionItemsFeature, IConnectionLifetimeFeature, IConnectionEndPointFeature
{
    private static long s_lastId = Random.Shared.NextInt64(1L << 40);

    private readonly Socket _socket;
    private readonly DeviceSocketStream _stream;
    private readonly FeatureCollection _features = new(6);
    private IDuplexPipe? _pipes;
    private IDictionary<object, object?>? _items;
    private CancellationTokenSource? _closed;
    private int _ended;

    public DeviceSocketConnection(Socket socket)
    {
        _socket = socket;
        _stream = new DeviceSocketStream(socket);
        ConnectionId = "D" + Interlocked.Increment(ref s_lastId).ToString("X", System.Globalization.CultureInfo.InvariantCulture);
        LocalEndPoint = socket.LocalEndPoint;
        RemoteEndPoint = socket.RemoteEndPoint;
        _features.Set<IRawSocketStreamFeature>(this);
        _features.Set<IConnectionIdFeature>(this);
        _features.Set<IConnectionTransportFeature>(this);
        _features.Set<IConnectionItemsFeature>(this);
        _features.Set<IConnectionLifetimeFeature>(this);
        _features.Set<IConnectionEndPointFeature>(this);
    }

    public override string ConnectionId { get; set; }

    public override IFeatureCollection Features => _features;

    public override IDictionary<object, object?> Items
    {
        get => _items ??= new Dictionary<object, object?>();
        set => _items = value;
    }

    /// <summary>Created on first use (PROXY protocol, or a middleware reading before TLS): a stream pipe pair over the
    /// socket, with zero-byte reads so an idle one holds no buffer.</summary>
    public override IDuplexPipe Transport
    {
        get => _pipes ??= new StreamDuplexPipe(_stream);
        set => _pipes = value;
    }

    public override CancellationToken ConnectionClosed
    {
        get
        {
            if (_closed is null)
            {
                var created = new CancellationTokenSource();
                if (Interlocked.CompareExchange(ref _closed, created, null) is not null)
                {
                    created.Dispose();
                }
                else if (Volatile.Read(ref _ended) != 0)
                {
                    created.Cancel();
                }
            }
            return _closed!.Token;
        }
        set => throw new NotSupportedException("the device transport owns its closed token");
    }

    public override EndPoint? LocalEndPoint { get; set; }

    public override EndPoint? RemoteEndPoint { get; set; }

    public Socket Socket => _socket;

    public Stream Stream => _stream;

    public bool PipesCreated => _pipes is not null;

    public override void Abort(ConnectionAbortedException abortReason) => End();

    public override async ValueTask DisposeAsync()
    {
        if (_pipes is StreamDuplexPipe pipes)
        {
            await pipes.Input.CompleteAsync().ConfigureAwait(false);
            await pipes.Output.CompleteAsync().ConfigureAwait(false);
        }
        End();
        await _stream.DisposeAsync().ConfigureAwait(false);
        // _closed is cancelled, not disposed: a late reader of ConnectionClosed (a revocation check finishing after the
        // connection) still gets a cancelled token instead of ObjectDisposedException; it holds no timer or handle.
    }

    /// <summary>Closes the socket (pending reads and writes fail at once) and signals <see cref="ConnectionClosed"/>.</summary>
    private void End()
    {
        if (Interlocked.Exchange(ref _ended, 1) != 0)
        {
            return;
        }
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // already reset by the peer
        }
        catch (ObjectDisposedException)
        {
            // already closed
        }
        _socket.Dispose();
        _closed?.Cancel();
    }

    private sealed class StreamDuplexPipe(Stream stream) : IDuplexPipe
    {
        public PipeReader Input { get; } = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 4096, minimumReadSize: 1024, leaveOpen: true, useZeroByteReads: true));

        public PipeWriter Output { get; } = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 4096, leaveOpen: true));
    }
}

/// <summary>
/// The socket as SslStream's inner stream, with reads that wait without a buffer. A read first waits with a zero-byte
/// receive on the socket (which completes only when bytes, the end of the stream or an error arrive), then takes the
/// bytes with a receive that completes at once. Two things a plain NetworkStream does differently, both measured with
/// dotnet-dump on idle connections: its zero-byte read returns at once, so SslStream's own zero-byte read (its way to
/// hold no buffer while idle) falls through and parks a read on a rented 32 KiB buffer; and a read that waits leaves
/// the caller's buffer referenced by the socket's cached receive operation after it completes.
/// </summary>
internal sealed class DeviceSocketStream(Socket socket) : NetworkStream(socket, ownsSocket: false)
{
    /// <summary>Zero-byte receives that completed with nothing to read (for tests: a wait must not spin).</summary>
    internal int EmptyWakeUps { get; private set; }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            while (Socket.Available == 0)
            {
                await Socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                if (Socket.Available == 0 && !Socket.Poll(0, SelectMode.SelectRead))
                {
                    EmptyWakeUps++;
                    // Woken without bytes, end of stream or error: wait again rather than let SslStream rent its 32 KiB
                    // read buffer for a read that would park on it.
                    continue;
                }
                break;
            }
            return buffer.IsEmpty ? 0 : await Socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException ex)
        {
            // As NetworkStream reports socket errors.
            throw new IOException($"Unable to read data from the transport connection: {ex.Message}", ex);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
}
