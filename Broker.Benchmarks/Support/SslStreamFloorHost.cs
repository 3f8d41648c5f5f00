using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using OmniBroker.Auth;
using OmniBroker.Auth.Pki;

namespace OmniBroker.Benchmarks.Support;

/// <summary>
/// The least a .NET server can do for one mutual-TLS MQTT connection, as a measured floor beside OmniBroker and
/// Mosquitto (issue 13): a <see cref="Socket"/> accept loop, <see cref="NetworkStream"/>, <see cref="SslStream"/> with
/// the broker's server certificate, TLS versions, chain policy (SslStream's own chain build of the client certificate
/// runs, with no trust anchor, as in the broker) and OpenSSL settings
/// (<see cref="OpenSslServerTuning"/>: shared SSL_CTX, no tickets, record buffers released while idle); then the
/// smallest MQTT: CONNECT answered with CONNACK, a zero-byte read while idle, DISCONNECT or end of stream closes. No
/// Kestrel, no pipes, no engine, no policy, no revocation, no logging, and no validation: any client certificate is
/// accepted (the broker's own validation is a cached lookup). What this process costs per connection is what .NET's
/// socket and SslStream cost; whatever OmniBroker costs above it is the broker's own.
/// Runs as its own process: <c>Broker.Benchmarks.dll tls-floor &lt;port&gt; &lt;pki directory&gt; [trim|blocking]</c>;
/// <c>trim</c> also does what the broker does for an idle connection: <see cref="OpenSslServerTuning.TrimAfterHandshake"/>
/// (BIO buffers and the client's intermediates freed after the handshake) and the device transport's socket stream
/// (<c>DeviceSocketStream</c>: SslStream parks no read buffer while idle).
/// </summary>
internal static class SslStreamFloorHost
{
    public const string Command = "tls-floor";

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length < 3 || !int.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out int port))
        {
            await Console.Error.WriteLineAsync($"usage: Broker.Benchmarks {Command} <port> <pki directory> [trim]");
            return 2;
        }

        bool trim = args.Length > 3 && args[3] is "trim";
        bool blocking = args.Length > 3 && args[3] is "blocking";
        string pki = args[2];
        X509Certificate2 server = PemCertificates.LoadWithKey(Path.Combine(pki, DevelopmentPki.ServerCertificateFile),
            Path.Combine(pki, DevelopmentPki.ServerKeyFile), out _);
        X509Certificate2 intermediate = PemCertificates.LoadAll(Path.Combine(pki, DevelopmentPki.IntermediateCertificateFile))[0];
        SslStreamCertificateContext context = SslStreamCertificateContext.Create(server, [intermediate], offline: true);

        using Socket listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
        listener.Listen(1024);
        Console.WriteLine($"SslStream floor listening on 127.0.0.1:{port}{(trim ? " (trim)" : "")}");
        if (blocking)
        {
            // Handshakes on dedicated threads with blocking socket calls: no thread-pool hop, no epoll round per
            // flight; the connection goes async (zero-byte read) once connected.
            System.Collections.Concurrent.BlockingCollection<Socket> accepted = new();
            for (int i = 0; i < 4; i++)
            {
                new Thread(() =>
                {
                    foreach (Socket socket in accepted.GetConsumingEnumerable())
                    {
                        HandshakeBlocking(socket, context);
                    }
                }) { IsBackground = true, Name = "handshake " + i }.Start();
            }
            while (true)
            {
                Socket socket = listener.Accept();
                socket.NoDelay = true;
                accepted.Add(socket);
            }
        }

        while (true)
        {
            Socket socket = await listener.AcceptAsync().ConfigureAwait(false);
            socket.NoDelay = true;
            _ = ServeAsync(socket, context, trim);
        }
    }

    private static void HandshakeBlocking(Socket socket, SslStreamCertificateContext context)
    {
        NetworkStream network = new(socket, ownsSocket: true);
        SslStream ssl = new(network);
        try
        {
            ssl.AuthenticateAsServer(Options(context));
            byte[] buffer = new byte[512];
            int length = 0;
            while (true)
            {
                int read = ssl.Read(buffer, length, buffer.Length - length);
                if (read == 0)
                {
                    ssl.Dispose();
                    return;
                }
                length += read;
                if (TryTakePacket(buffer, ref length, out byte type))
                {
                    if (type != 1 || length != 0)
                    {
                        ssl.Dispose();
                        return;
                    }
                    ssl.Write([0x20, 0x02, 0x00, 0x00]);
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or AuthenticationException or SocketException)
        {
            ssl.Dispose();
            return;
        }
        _ = ServeConnectedAsync(ssl);
    }

    private static async Task ServeConnectedAsync(SslStream ssl)
    {
        await using (ssl)
        {
            byte[] buffer = new byte[16];
            try
            {
                while (true)
                {
                    await ssl.ReadAsync(Memory<byte>.Empty).ConfigureAwait(false);
                    int read = await ssl.ReadAsync(buffer).ConfigureAwait(false);
                    if (read == 0 || buffer[0] != 0xC0)
                    {
                        return;
                    }
                    await ssl.WriteAsync(new byte[] { 0xD0, 0x00 }).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
            {
                // gone
            }
        }
    }

    private static SslServerAuthenticationOptions Options(SslStreamCertificateContext context) => new()
    {
        ServerCertificateContext = context,
        ClientCertificateRequired = true,
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        AllowTlsResume = OpenSslServerTuning.IsAvailable,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        // The broker's policy: SslStream's build runs with no trust anchor and no downloads.
        CertificateChainPolicy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
            DisableCertificateDownloads = true,
        },
        RemoteCertificateValidationCallback = (sender, certificate, _, _) =>
        {
            OpenSslServerTuning.Apply((SslStream)sender, allowResume: false);
            return certificate is not null;
        },
    };

    private static async Task ServeAsync(Socket socket, SslStreamCertificateContext context, bool trim)
    {
        using Socket owned = socket;
        // trim: also the broker's socket stream (zero-byte waits that do not wake SslStream without bytes).
        await using NetworkStream network = trim ? new OmniBroker.Host.Connections.DeviceSocketStream(socket) : new NetworkStream(socket, ownsSocket: false);
        await using SslStream ssl = new(network);
        byte[]? buffer = null;
        try
        {
            await ssl.AuthenticateAsServerAsync(Options(context)).ConfigureAwait(false);
            if (trim)
            {
                OpenSslServerTuning.TrimAfterHandshake(ssl, dropPeerChain: true);
            }

            buffer = ArrayPool<byte>.Shared.Rent(1024);
            int length = 0;
            bool connected = false;
            while (true)
            {
                if (length == 0)
                {
                    // Idle: no buffer held while waiting (returned to the pool until data arrives).
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = null;
                    await ssl.ReadAsync(Memory<byte>.Empty).ConfigureAwait(false);
                    buffer = ArrayPool<byte>.Shared.Rent(1024);
                }

                int read = await ssl.ReadAsync(buffer.AsMemory(length)).ConfigureAwait(false);
                if (read == 0)
                {
                    return;
                }

                length += read;
                while (TryTakePacket(buffer, ref length, out byte type))
                {
                    if (type == 1 && !connected)
                    {
                        connected = true;
                        await ssl.WriteAsync(new byte[] { 0x20, 0x02, 0x00, 0x00 }).ConfigureAwait(false);
                    }
                    else if (type == 12)
                    {
                        await ssl.WriteAsync(new byte[] { 0xD0, 0x00 }).ConfigureAwait(false);
                    }
                    else
                    {
                        return; // DISCONNECT, or anything a floor does not serve
                    }
                }
            }
        }
        catch (Exception ex) when (ex is IOException or AuthenticationException or SocketException or ObjectDisposedException)
        {
            // the client went away or failed the handshake: nothing to serve
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>Takes one whole MQTT packet off the front of the buffer (framing by <see cref="RawMqtt.TryPacket"/>).
    /// A buffer full without a whole packet is a packet larger than a floor serves, or a malformed length.</summary>
    private static bool TryTakePacket(byte[] buffer, ref int length, out byte type)
    {
        type = 0;
        if (!RawMqtt.TryPacket(buffer.AsSpan(0, length), out byte header, out _, out int total))
        {
            if (length == buffer.Length)
            {
                throw new IOException("packet larger than a floor serves, or a malformed remaining length");
            }
            return false;
        }
        type = (byte)(header >> 4);
        Buffer.BlockCopy(buffer, total, buffer, 0, length - total);
        length -= total;
        return true;
    }
}
