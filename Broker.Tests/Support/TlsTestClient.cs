using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Tests.Support;

/// <summary>What a TLS client saw when connecting to the broker and sending an MQTT CONNECT.</summary>
public enum TlsClientOutcome
{
    /// <summary>The TLS handshake itself failed (the server sent an alert or closed).</summary>
    HandshakeFailed,

    /// <summary>The handshake completed but the server closed the connection without answering the CONNECT.</summary>
    ClosedAfterHandshake,

    /// <summary>The server answered the CONNECT with a CONNACK.</summary>
    ConnAck,
}

public sealed record TlsClientResult(TlsClientOutcome Outcome, byte[] Response, SslProtocols? Protocol, Exception? Error);

/// <summary>A real SslStream client for the broker's MQTT over TLS listener.</summary>
public static class TlsTestClient
{
    /// <summary>MQTT 3.1.1 CONNECT, client id "tls-test", clean session, keep alive 30 s.</summary>
    public static readonly byte[] Connect311 =
        [0x10, 0x14, 0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 0x04, 0x02, 0x00, 0x1E,
         0x00, 0x08, (byte)'t', (byte)'l', (byte)'s', (byte)'-', (byte)'t', (byte)'e', (byte)'s', (byte)'t'];

    public static async Task<SslStream> HandshakeAsync(int port, X509Certificate2 trustedRoot, X509Certificate2? clientCertificate,
        IEnumerable<X509Certificate2>? clientChain = null, SslProtocols protocols = SslProtocols.Tls12 | SslProtocols.Tls13, CancellationToken cancellationToken = default)
    {
        var tcp = new TcpClient(AddressFamily.InterNetwork) { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
        var ssl = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = protocols,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            CertificateChainPolicy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                CustomTrustStore = { trustedRoot },
                RevocationMode = X509RevocationMode.NoCheck,
                DisableCertificateDownloads = true,
            },
        };
        if (clientCertificate is not null)
        {
            // The context sends the intermediates with the leaf, as devices do.
            options.ClientCertificateContext = SslStreamCertificateContext.Create(clientCertificate, new X509Certificate2Collection((clientChain ?? []).ToArray()), offline: true);
        }
        try
        {
            await ssl.AuthenticateAsClientAsync(options, cancellationToken);
        }
        catch
        {
            await ssl.DisposeAsync();
            tcp.Dispose();
            throw;
        }
        return ssl;
    }

    /// <summary>MQTT 3.1.1 CONNECT as <see cref="Connect311"/> with another client id (ASCII, up to 100 characters).</summary>
    public static byte[] Connect311For(string clientId)
    {
        byte[] header = [0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 0x04, 0x02, 0x00, 0x1E, 0x00, (byte)clientId.Length];
        return [0x10, (byte)(header.Length + clientId.Length), .. header, .. System.Text.Encoding.ASCII.GetBytes(clientId)];
    }

    /// <summary>Handshake, send CONNECT (default <see cref="Connect311"/>), read the answer (bounded: 10 s).</summary>
    public static async Task<TlsClientResult> ConnectAsync(int port, X509Certificate2 trustedRoot, X509Certificate2? clientCertificate,
        IEnumerable<X509Certificate2>? clientChain = null, SslProtocols protocols = SslProtocols.Tls12 | SslProtocols.Tls13, byte[]? connect = null)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        SslStream ssl;
        try
        {
            ssl = await HandshakeAsync(port, trustedRoot, clientCertificate, clientChain, protocols, timeout.Token);
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or SocketException)
        {
            return new TlsClientResult(TlsClientOutcome.HandshakeFailed, [], null, ex);
        }

        await using (ssl)
        {
            var protocol = ssl.SslProtocol;
            try
            {
                await ssl.WriteAsync(connect ?? Connect311, timeout.Token);
                await ssl.FlushAsync(timeout.Token);
                var buffer = new byte[4];
                var read = 0;
                while (read < buffer.Length)
                {
                    var n = await ssl.ReadAsync(buffer.AsMemory(read), timeout.Token);
                    if (n == 0)
                    {
                        break;
                    }
                    read += n;
                }
                var response = buffer[..read];
                return read > 0 && response[0] == 0x20
                    ? new TlsClientResult(TlsClientOutcome.ConnAck, response, protocol, null)
                    : new TlsClientResult(TlsClientOutcome.ClosedAfterHandshake, response, protocol, null);
            }
            catch (Exception ex) when (ex is AuthenticationException or IOException or SocketException)
            {
                return new TlsClientResult(TlsClientOutcome.ClosedAfterHandshake, [], protocol, ex);
            }
        }
    }
}
