using System.Net;
using System.Net.Sockets;
using FluentAssertions;
using OmniBroker.Host.Connections;
using Xunit;

namespace OmniBroker.Tests.Host;

/// <summary>
/// The device transport's socket stream over a real loopback TCP pair: a zero-byte read waits for bytes (SslStream
/// relies on that to hold no read buffer while a device is idle), ends at the end of the stream, and a read after it
/// takes the bytes.
/// </summary>
public sealed class DeviceSocketStreamTests
{
    [Fact]
    public async Task ZeroByteRead_NoBytesYet_WaitsUntilBytesArriveThenReadTakesThem()
    {
        var (server, client) = await PairAsync();
        using (server)
        using (client)
        await using (var stream = new DeviceSocketStream(server))
        {
            var wait = stream.ReadAsync(Memory<byte>.Empty).AsTask();
            await Task.Delay(300);
            wait.IsCompleted.Should().BeFalse("nothing was sent yet");

            await client.SendAsync(new byte[] { 1, 2, 3 });
            (await wait.WaitAsync(TimeSpan.FromSeconds(10))).Should().Be(0);
            var buffer = new byte[16];
            var read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            buffer.AsSpan(0, read).ToArray().Should().Equal(1, 2, 3);
        }
    }

    [Fact]
    public async Task ZeroByteRead_AfterBytesWereRead_WaitsWithoutSpinning()
    {
        var (server, client) = await PairAsync();
        using (server)
        using (client)
        await using (var stream = new DeviceSocketStream(server))
        {
            var buffer = new byte[16];
            for (var round = 0; round < 3; round++)
            {
                // As an idle device after its CONNECT: bytes arrive and are read, then the reader waits again.
                await client.SendAsync(new byte[] { (byte)round });
                (await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10))).Should().Be(1);
                var wait = stream.ReadAsync(Memory<byte>.Empty).AsTask();
                await Task.Delay(300);
                wait.IsCompleted.Should().BeFalse("nothing more was sent");
                await client.SendAsync(new byte[] { 9 });
                (await wait.WaitAsync(TimeSpan.FromSeconds(10))).Should().Be(0);
                (await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10))).Should().Be(1);
            }
            stream.EmptyWakeUps.Should().BeLessThanOrEqualTo(6, "a wake-up without bytes is retried once, not in a loop");
        }
    }

    [Fact]
    public async Task Read_PeerClosesWhileWaiting_ReturnsEndOfStream()
    {
        var (server, client) = await PairAsync();
        using (server)
        using (client)
        await using (var stream = new DeviceSocketStream(server))
        {
            var read = stream.ReadAsync(new byte[16]).AsTask();
            await Task.Delay(200);
            read.IsCompleted.Should().BeFalse();
            client.Shutdown(SocketShutdown.Send);
            (await read.WaitAsync(TimeSpan.FromSeconds(10))).Should().Be(0, "the peer ended the stream");
        }
    }

    [Fact]
    public async Task Read_PeerResets_ThrowsIOException()
    {
        var (server, client) = await PairAsync();
        using (server)
        await using (var stream = new DeviceSocketStream(server))
        {
            var read = stream.ReadAsync(new byte[16]).AsTask();
            client.LingerState = new LingerOption(true, 0); // close with RST
            client.Dispose();
            var act = async () => await read.WaitAsync(TimeSpan.FromSeconds(10));
            (await act.Should().ThrowAsync<IOException>()).Which.InnerException.Should().BeOfType<SocketException>();
        }
    }

    private static async Task<(Socket Server, Socket Client)> PairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var accept = listener.AcceptAsync();
        await client.ConnectAsync(listener.LocalEndPoint!);
        return (await accept, client);
    }
}
