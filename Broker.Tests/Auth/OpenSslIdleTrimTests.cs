using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using FluentAssertions;
using OmniBroker.Auth;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Auth;

/// <summary>
/// <see cref="OpenSslServerTuning.TrimAfterHandshake"/> on a real mutual-TLS 1.3 SslStream pair over loopback TCP:
/// the handshake's BIO buffers are freed, and the connection keeps working afterwards in both directions, with
/// records larger than any handshake flight (the BIOs grow again as needed).
/// </summary>
public sealed class OpenSslIdleTrimTests
{
    [Fact]
    public async Task TrimAfterHandshake_MutualTls13_FreesBuffersAndConnectionStillCarriesData()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        using var pki = TestPki.Create();
        var (server, client) = await HandshakeAsync(pki);
        await using (server)
        await using (client)
        {
            OpenSslServerTuning.IsAvailable.Should().BeTrue("the runtime uses libssl.so.3 on this machine");
            var freed = OpenSslServerTuning.TrimAfterHandshake(server, dropPeerChain: true);
            freed.Should().BeGreaterThan(1024, "the output BIO held the server's flight (certificate chain, CertificateRequest)");
            server.RemoteCertificate.Should().NotBeNull("the leaf stays with the session; only the intermediates are dropped");

            var payload = new byte[64 * 1024];
            Random.Shared.NextBytes(payload);
            await AssertCarriesAsync(client, server, payload);
            await AssertCarriesAsync(server, client, payload);

            // Idle again: a second trim frees what the data records grew, and the stream still works.
            OpenSslServerTuning.TrimAfterHandshake(server, dropPeerChain: true).Should().BeGreaterThanOrEqualTo(0);
            await AssertCarriesAsync(client, server, payload.AsMemory(0, 100).ToArray());
        }
    }

    private static async Task AssertCarriesAsync(SslStream from, SslStream to, byte[] payload)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var write = from.WriteAsync(payload, timeout.Token).AsTask();
        var received = new byte[payload.Length];
        var total = 0;
        while (total < received.Length)
        {
            var read = await to.ReadAsync(received.AsMemory(total), timeout.Token);
            read.Should().BePositive("the peer must not see the end of the stream");
            total += read;
        }
        await write;
        received.Should().Equal(payload);
    }

    private static async Task<(SslStream Server, SslStream Client)> HandshakeAsync(TestPki pki)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var accept = listener.AcceptSocketAsync();
        var clientSocket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await clientSocket.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        var serverSocket = await accept;

        var server = new SslStream(new NetworkStream(serverSocket, ownsSocket: true));
        var client = new SslStream(new NetworkStream(clientSocket, ownsSocket: true));
        var serverOptions = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = SslStreamCertificateContext.Create(pki.Server, [pki.Intermediate], offline: true),
            ClientCertificateRequired = true,
            EnabledSslProtocols = SslProtocols.Tls13,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (sender, certificate, _, _) =>
            {
                OpenSslServerTuning.Apply((SslStream)sender, allowResume: false);
                return certificate is not null;
            },
        };
        var clientOptions = new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = SslProtocols.Tls13,
            ClientCertificateContext = SslStreamCertificateContext.Create(pki.Good, [pki.Intermediate], offline: true),
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await Task.WhenAll(server.AuthenticateAsServerAsync(serverOptions, timeout.Token), client.AuthenticateAsClientAsync(clientOptions, timeout.Token));
        return (server, client);
    }
}
