using System.Buffers;
using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OmniBroker.Mqtt.Codec;
using OmniBroker.Mqtt.Engine;
using OmniBroker.Mqtt.Packets;

namespace OmniBroker.Benchmarks;

/// <summary>
/// QoS 0 PUBLISH throughput through the real engine (Kestrel connection handler, codec, subscription trie, session
/// queue, writer loop) from one publisher to one subscriber over loopback TCP, without TLS. Each invocation sends
/// 10,000 pre-encoded PUBLISH packets in one write and waits until the subscriber has read all 10,000 back; the
/// reported time is per message, so messages/second = 1 / Mean. The queue is sized so nothing is dropped, and a
/// drop fails the run instead of hanging it.
///   dotnet run -c Release --project Broker.Benchmarks -- --filter '*PublishThroughputBenchmarks*'
/// </summary>
[MemoryDiagnoser]
public class PublishThroughputBenchmarks
{
    private const int MessagesPerInvocation = 10_000;
    private const string Topic = "bench/throughput";

    private WebApplication _app = null!;
    private MqttBroker _broker = null!;
    private Socket _publisher = null!;
    private Socket _subscriber = null!;
    private byte[] _batch = null!;
    private byte[] _receiveBuffer = null!;
    private int _expectedBytes;

    [Params(16, 1024)]
    public int PayloadSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddMqttBroker(options =>
        {
            options.RequireClientIdentity = false;
            options.MaxQueuedMessagesPerSession = MessagesPerInvocation * 2;
        });
        builder.WebHost.ConfigureKestrel(kestrel =>
            kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseConnectionHandler<MqttConnectionHandler>()));
        _app = builder.Build();
        _app.StartAsync().GetAwaiter().GetResult();
        _broker = _app.Services.GetRequiredService<MqttBroker>();
        var port = new Uri(_app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single()).Port;

        _subscriber = Connect(port, "bench-sub");
        var subscribe = new SubscribePacket { PacketId = 1 };
        subscribe.Subscriptions.Add(new TopicSubscription(Topic, new SubscriptionOptions(MqttQos.AtMostOnce)));
        Send(_subscriber, subscribe);
        ReceiveExactly(_subscriber, 5); // SUBACK
        _publisher = Connect(port, "bench-pub");

        var publish = new PublishPacket
        {
            Topic = Topic,
            Qos = MqttQos.AtMostOnce,
            Payload = new ReadOnlySequence<byte>(new byte[PayloadSize]),
        };
        var batch = new ArrayBufferWriter<byte>();
        for (var i = 0; i < MessagesPerInvocation; i++)
        {
            MqttPacketWriter.Write(batch, publish, MqttProtocolVersion.V311);
        }
        _batch = batch.WrittenSpan.ToArray();
        // The broker forwards the same packet: QoS 0, no properties in 3.1.1.
        _expectedBytes = _batch.Length;
        _receiveBuffer = new byte[256 * 1024];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _publisher.Dispose();
        _subscriber.Dispose();
        _app.StopAsync().GetAwaiter().GetResult();
        _app.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    [Benchmark(OperationsPerInvoke = MessagesPerInvocation)]
    public void PublishQos0ToOneSubscriber()
    {
        var dropped = _broker.MessagesDropped;
        var receive = Task.Run(() => ReceiveCount(_subscriber, _expectedBytes));
        _publisher.Send(_batch);
        if (!receive.Wait(TimeSpan.FromSeconds(60)))
        {
            throw new TimeoutException("the subscriber did not receive every message within 60 s");
        }
        if (_broker.MessagesDropped != dropped)
        {
            throw new InvalidOperationException($"{_broker.MessagesDropped - dropped} messages were dropped");
        }
    }

    private void ReceiveCount(Socket socket, int bytes)
    {
        var received = 0;
        while (received < bytes)
        {
            var n = socket.Receive(_receiveBuffer, 0, Math.Min(_receiveBuffer.Length, bytes - received), SocketFlags.None);
            if (n == 0)
            {
                throw new InvalidOperationException("the broker closed the subscriber connection");
            }
            received += n;
        }
    }

    private static Socket Connect(int port, string clientId)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = 60_000 };
        socket.Connect(IPAddress.Loopback, port);
        Send(socket, new ConnectPacket { ProtocolVersion = MqttProtocolVersion.V311, ClientId = clientId, CleanStart = true });
        var connAck = ReceiveExactly(socket, 4);
        if (connAck[0] != 0x20 || connAck[3] != 0)
        {
            throw new InvalidOperationException($"CONNACK refused: {Convert.ToHexString(connAck)}");
        }
        return socket;
    }

    private static void Send(Socket socket, MqttPacket packet)
    {
        var buffer = new ArrayBufferWriter<byte>();
        MqttPacketWriter.Write(buffer, packet, MqttProtocolVersion.V311);
        socket.Send(buffer.WrittenSpan);
    }

    private static byte[] ReceiveExactly(Socket socket, int count)
    {
        var buffer = new byte[count];
        var received = 0;
        while (received < count)
        {
            var n = socket.Receive(buffer, received, count - received, SocketFlags.None);
            if (n == 0)
            {
                throw new InvalidOperationException("connection closed");
            }
            received += n;
        }
        return buffer;
    }
}
