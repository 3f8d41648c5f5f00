using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using OmniBroker.Auth;

namespace OmniBroker.Tests.EndToEnd;

/// <summary>
/// MQTTnet 5.2 (an independent .NET client, none of our code on the wire) connected to the real host over mutual TLS
/// with a device certificate file (leaf + intermediate, as devices send it). The server certificate is verified
/// against the CA file the other clients use. Received messages are collected for the test to wait on.
/// </summary>
internal sealed class MqttNetClient : IAsyncDisposable
{
    private readonly ConcurrentQueue<MqttApplicationMessage> _received = new();
    private readonly SemaphoreSlim _arrived = new(0);
    private readonly ConcurrentQueue<byte[]> _inbound = new();

    private MqttNetClient(IMqttClient client)
    {
        Client = client;
        client.ApplicationMessageReceivedAsync += e =>
        {
            _received.Enqueue(e.ApplicationMessage);
            _arrived.Release();
            return Task.CompletedTask;
        };
        // The raw packets from the broker, to read what MQTTnet's results do not report (e.g. a PUBREC's reason code).
        client.InspectPacketAsync += e =>
        {
            if (e.Direction == MQTTnet.Diagnostics.PacketInspection.MqttPacketFlowDirection.Inbound)
            {
                _inbound.Enqueue(e.Buffer);
            }

            return Task.CompletedTask;
        };
    }

    /// <summary>Every packet received from the broker, as bytes on the wire.</summary>
    public IReadOnlyCollection<byte[]> InboundPackets => _inbound.ToArray();

    public IMqttClient Client { get; }

    public MqttClientConnectResult? ConnectResult { get; private set; }

    public IReadOnlyCollection<MqttApplicationMessage> Received => _received.ToArray();

    public static MqttProtocolVersion Version(string version) => version switch
    {
        "3.1.1" => MqttProtocolVersion.V311,
        "5" => MqttProtocolVersion.V500,
        _ => throw new ArgumentOutOfRangeException(nameof(version), version, "3.1.1 or 5"),
    };

    /// <summary>Options for <paramref name="device"/> (null: no client certificate) against <paramref name="broker"/>;
    /// <paramref name="configure"/> adds will, session expiry and the like.</summary>
    public static MqttClientOptions Options(EndToEndBroker broker, DeviceFiles? device, string version, string clientId,
        Action<MqttClientOptionsBuilder>? configure = null) =>
        Options(broker.CaFile, broker.Broker.MqttPort, device, version, clientId, configure);

    /// <summary>Options for <paramref name="device"/> against a broker on 127.0.0.1:<paramref name="port"/> whose server
    /// certificate chains to <paramref name="caFile"/> (a host process, a node of a cluster).</summary>
    public static MqttClientOptions Options(string caFile, int port, DeviceFiles? device, string version, string clientId,
        Action<MqttClientOptionsBuilder>? configure = null)
    {
        var trusted = PemCertificates.LoadAll(caFile);
        X509Certificate2? leaf = null;
        X509Certificate2Collection chain = [];
        if (device is not null)
        {
            leaf = PemCertificates.LoadWithKey(device.Certificate, device.Key, out chain);
        }

        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", port)
            .WithProtocolVersion(Version(version))
            .WithClientId(clientId)
            .WithCleanSession(true)
            .WithTimeout(TimeSpan.FromSeconds(20))
            .WithStreamProvider(new MutualTlsStreamProvider(leaf, chain, trusted));
        configure?.Invoke(builder);
        return builder.Build();
    }

    /// <summary>Connects (bounded: 20 s); throws when the broker refuses or the TLS handshake fails.</summary>
    public static async Task<MqttNetClient> ConnectAsync(MqttClientOptions options)
    {
        var client = new MqttNetClient(new MqttClientFactory().CreateMqttClient());
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            client.ConnectResult = await client.Client.ConnectAsync(options, timeout.Token);
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    public async Task<MqttClientSubscribeResult> SubscribeAsync(string filter, MqttQualityOfServiceLevel qos)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        return await Client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(filter, qos).Build(), timeout.Token);
    }

    public async Task<MqttClientPublishResult> PublishAsync(string topic, string payload, MqttQualityOfServiceLevel qos, bool retain = false)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var message = new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(qos).WithRetainFlag(retain).Build();
        return await Client.PublishAsync(message, timeout.Token);
    }

    /// <summary>Waits (bounded) until <paramref name="count"/> messages arrived in total; false on timeout.</summary>
    public async Task<bool> WaitForMessagesAsync(int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (_received.Count < count)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !await _arrived.WaitAsync(left))
            {
                return _received.Count >= count;
            }
        }

        return true;
    }

    public async ValueTask DisposeAsync()
    {
        if (Client.IsConnected)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await Client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), timeout.Token);
            }
            catch (MQTTnet.Exceptions.MqttCommunicationException)
            {
                // Already gone: nothing to close.
            }
        }

        Client.Dispose();
        _arrived.Dispose();
    }

    /// <summary>
    /// The TLS connection for MQTTnet: .NET's SslStream, as MQTTnet's own TLS uses, but with the device's chain
    /// (leaf + intermediate) in an <see cref="SslStreamCertificateContext"/>: MQTTnet's TLS options send only the leaf
    /// on Linux, and a device sends its intermediate like mosquitto_pub --cert does.
    /// </summary>
    private sealed class MutualTlsStreamProvider(X509Certificate2? leaf, X509Certificate2Collection chain, IReadOnlyList<X509Certificate2> trusted)
        : MQTTnet.Channel.IMqttClientStreamProvider
    {
        public async Task<Stream> ConnectAsync(System.Net.EndPoint brokerEndPoint, CancellationToken cancellationToken)
        {
            var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(brokerEndPoint, cancellationToken);
                var ssl = new SslStream(new System.Net.Sockets.NetworkStream(socket, ownsSocket: true));
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = "127.0.0.1",
                    ClientCertificateContext = leaf is null ? null : SslStreamCertificateContext.Create(leaf, chain, offline: true),
                    RemoteCertificateValidationCallback = (_, certificate, presented, errors) =>
                        certificate is not null && IsTrusted(certificate, presented, errors, trusted),
                }, cancellationToken);
                return ssl;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
    }

    private static bool IsTrusted(X509Certificate certificate, X509Chain? presented, SslPolicyErrors errors, IReadOnlyList<X509Certificate2> trusted)
    {
        if ((errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
        {
            Console.Error.WriteLine($"MQTTnet test client: server certificate refused: {errors}");
            return false; // no certificate, or a name mismatch
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        foreach (var ca in trusted)
        {
            (ca.SubjectName.RawData.AsSpan().SequenceEqual(ca.IssuerName.RawData) ? chain.ChainPolicy.CustomTrustStore : chain.ChainPolicy.ExtraStore).Add(ca);
        }

        // The intermediates the server sent.
        if (presented is not null)
        {
            foreach (var element in presented.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        if (!chain.Build(leaf))
        {
            Console.Error.WriteLine("MQTTnet test client: server chain: " + string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation)));
            return false;
        }

        return true;
    }
}
