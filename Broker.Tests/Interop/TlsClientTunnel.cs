using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using OmniBroker.Tests.Support;

namespace OmniBroker.Tests.Interop;

/// <summary>
/// A TLS client tunnel (what `stunnel` in client mode does) for clients that speak plain TCP, such as the Paho
/// interoperability suites: it listens on 127.0.0.1, and for every accepted connection opens a mutual-TLS connection
/// to the broker presenting a device certificate, then copies bytes both ways.
/// Closes are forwarded as faithfully as TCP allows, because the suites check how the broker ends connections: the
/// broker's orderly close (close_notify / FIN) becomes a FIN towards the client (write side shut down, reading goes
/// on), while a reset by the broker becomes a reset towards the client (linger 0), so a broker that resets the
/// connection before its DISCONNECT is read fails through the tunnel just as it would directly.
/// A few TLS connections are kept ready (handshake done, nothing sent yet): the suites allow 0.5 s from opening the
/// socket to CONNACK, which a loaded test machine cannot promise for a TLS handshake with client certificate
/// validation on top; a ready connection is used only while younger than half the broker's connect timeout.
/// </summary>
public sealed class TlsClientTunnel : IAsyncDisposable
{
    /// <summary>How long a half-closed connection may keep going before the tunnel drops it.</summary>
    private static readonly TimeSpan s_halfCloseLimit = TimeSpan.FromSeconds(10);

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly int _brokerPort;
    private readonly X509Certificate2 _root;
    private readonly X509Certificate2 _device;
    private readonly X509Certificate2 _intermediate;
    /// <summary>TLS connections kept open and ready, handshake done.</summary>
    public const int ReadyConnections = 3;

    /// <summary>Ready connections older than this are dropped unused: half the Paho broker's Mqtt:ConnectTimeout (60 s,
    /// see <see cref="PahoInteropBroker"/>), so a ready connection is rarely stale and a test rarely waits for a fresh
    /// handshake on a loaded machine.</summary>
    private static readonly TimeSpan s_readyMaxAge = TimeSpan.FromSeconds(30);

    private readonly List<Task> _connections = [];
    private readonly System.Collections.Concurrent.ConcurrentQueue<(SslStream Stream, DateTime Opened)> _ready = new();
    private Task? _acceptLoop;
    private Task? _fillLoop;

    private TlsClientTunnel(int brokerPort, X509Certificate2 root, X509Certificate2 device, X509Certificate2 intermediate)
    {
        _brokerPort = brokerPort;
        _root = root;
        _device = device;
        _intermediate = intermediate;
    }

    /// <summary>The plain TCP port clients connect to (on 127.0.0.1).</summary>
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Connections accepted so far, and how many of them could not open their TLS side.</summary>
    public int Accepted { get; private set; }

    public int HandshakeFailures { get; private set; }

    /// <summary>Ready TLS connections at the moment.</summary>
    public int ReadyCount => _ready.Count;

    public static TlsClientTunnel Start(int brokerPort, X509Certificate2 root, X509Certificate2 device, X509Certificate2 intermediate)
    {
        var tunnel = new TlsClientTunnel(brokerPort, root, device, intermediate);
        tunnel._listener.Start();
        tunnel._acceptLoop = tunnel.AcceptLoopAsync();
        tunnel._fillLoop = tunnel.FillLoopAsync();
        return tunnel;
    }

    /// <summary>Keeps <see cref="ReadyConnections"/> fresh TLS connections to the broker.</summary>
    private async Task FillLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            while (_ready.TryPeek(out var oldest) && DateTime.UtcNow - oldest.Opened > s_readyMaxAge && _ready.TryDequeue(out oldest))
            {
                await oldest.Stream.DisposeAsync();
            }
            if (_ready.Count < ReadyConnections)
            {
                try
                {
                    _ready.Enqueue((await HandshakeAsync(), DateTime.UtcNow));
                    continue;
                }
                catch (Exception ex) when (ex is AuthenticationException or IOException or SocketException or OperationCanceledException)
                {
                    // Counted by accepted connections when they fail to open their own; retry after the pause.
                }
            }
            try
            {
                await Task.Delay(100, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        while (_ready.TryDequeue(out var left))
        {
            await left.Stream.DisposeAsync();
        }
    }

    private async Task<SslStream> HandshakeAsync()
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(TimeSpan.FromSeconds(15));
        return await TlsTestClient.HandshakeAsync(_brokerPort, _root, _device, [_intermediate], cancellationToken: timeout.Token);
    }

    private async Task<SslStream> OpenAsync()
    {
        while (_ready.TryDequeue(out var ready))
        {
            if (DateTime.UtcNow - ready.Opened <= s_readyMaxAge)
            {
                return ready.Stream;
            }
            await ready.Stream.DisposeAsync();
        }
        return await HandshakeAsync();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (SocketException)
            {
                return;
            }
            client.NoDelay = true;
            lock (_connections)
            {
                Accepted++;
                _connections.RemoveAll(t => t.IsCompleted);
                _connections.Add(RunConnectionAsync(client));
            }
        }
    }

    private async Task RunConnectionAsync(Socket client)
    {
        SslStream broker;
        try
        {
            broker = await OpenAsync();
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or SocketException or OperationCanceledException)
        {
            lock (_connections)
            {
                HandshakeFailures++;
            }
            Reset(client);
            return;
        }

        // Not disposed: a copy thread may still cancel it after this method gave up waiting for it (cancelling a disposed
        // source crashed the test process); it holds no timer.
        var brokerGone = new CancellationTokenSource();
        Task down, up;
        await using (broker)
        {
            using var clientStream = new NetworkStream(client, ownsSocket: false);
            down = BrokerToClientAsync(broker, client, clientStream, brokerGone);
            up = ClientToBrokerAsync(clientStream, broker, brokerGone.Token);
            await Task.WhenAny(down, up);
            // One side finished: give the other a bounded time to finish its half-close, then drop it.
            await Task.WhenAny(Task.WhenAll(down, up), Task.Delay(s_halfCloseLimit, _stop.Token).ContinueWith(_ => { }, TaskScheduler.Default));
        }
        client.Dispose();
        // The copy threads end once their streams are gone.
        await Task.WhenAll(down, up).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>Runs a copy loop on its own thread with blocking I/O: the test process's thread pool is shared with
    /// every test running in parallel, and a copy queued behind their work could reach the broker after bytes that a
    /// client sent later on another connection (test_unsubscribe publishes on a second connection right after
    /// unsubscribing on the first, and expects the broker to have seen the UNSUBSCRIBE first).</summary>
    private static Task RunOnThread(string name, Action copy)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            copy();
            done.TrySetResult();
        })
        { IsBackground = true, Name = name };
        thread.Start();
        return done.Task;
    }

    /// <summary>Broker → client. An orderly close by the broker becomes FIN; a broken TLS connection becomes RST.</summary>
    private static Task BrokerToClientAsync(SslStream broker, Socket client, NetworkStream clientStream, CancellationTokenSource brokerGone) =>
        RunOnThread("tunnel broker->client", () =>
        {
            var buffer = new byte[16 * 1024];
            try
            {
                while (true)
                {
                    var read = broker.Read(buffer);
                    if (read == 0)
                    {
                        client.Shutdown(SocketShutdown.Send);
                        return;
                    }
                    clientStream.Write(buffer.AsSpan(0, read));
                }
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
            {
                Reset(client);
            }
            finally
            {
                brokerGone.Cancel();
            }
        });

    /// <summary>Client → broker. The client's FIN becomes close_notify + FIN; once the broker is gone, what the client
    /// still sends is read and discarded (as the broker's own lingering close would), until the client closes.</summary>
    private static Task ClientToBrokerAsync(NetworkStream clientStream, SslStream broker, CancellationToken brokerGone) =>
        RunOnThread("tunnel client->broker", () =>
        {
            var buffer = new byte[16 * 1024];
            var forwarding = true;
            try
            {
                while (true)
                {
                    var read = clientStream.Read(buffer);
                    if (read == 0)
                    {
                        if (forwarding && !brokerGone.IsCancellationRequested)
                        {
                            broker.ShutdownAsync().GetAwaiter().GetResult();
                        }
                        return;
                    }
                    if (forwarding && !brokerGone.IsCancellationRequested)
                    {
                        try
                        {
                            broker.Write(buffer.AsSpan(0, read));
                        }
                        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
                        {
                            forwarding = false;
                        }
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
            {
                // The client reset or the connection is being torn down.
            }
        });

    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
        socket.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        if (_acceptLoop is not null)
        {
            await _acceptLoop;
        }
        if (_fillLoop is not null)
        {
            await _fillLoop;
        }
        Task[] open;
        lock (_connections)
        {
            open = [.. _connections];
        }
        await Task.WhenAny(Task.WhenAll(open), Task.Delay(TimeSpan.FromSeconds(5)));
        _stop.Dispose();
    }
}
