using System.Buffers;
using System.IO.Pipelines;
using System.Net.WebSockets;
using Microsoft.Extensions.Logging.Abstractions;
using OmniBroker.Host.WebSockets;

namespace OmniBroker.Fuzz.Targets;

/// <summary>
/// WebSocket framing (Broker.Host/WebSockets): the input is what a client sends after the upgrade. The server-side
/// WebSocket (.NET's, as Kestrel creates it) deframes it for <see cref="WebSocketDuplexPipe"/>, which drops message
/// boundaries, refuses text messages and tracks MQTT packet boundaries; what arrives is echoed back as the engine's
/// output, then the pipe closes the WebSocket mirroring how MQTT ended. Expected: the <see cref="IOException"/> the
/// input pipe completes with on a text message, an invalid frame or a connection closed without a Close frame.
/// </summary>
internal static class WebSocketTarget
{
    private const int MaximumPacketSize = 64 * 1024;

    public static void Run(byte[] data) => RunAsync(data).GetAwaiter().GetResult();

    private static async Task RunAsync(byte[] data)
    {
        using var transport = new ReplayStream(data);
        using var socket = WebSocket.CreateFromStream(transport, new WebSocketCreationOptions
        {
            IsServer = true,
            SubProtocol = "mqtt",
            KeepAliveInterval = Timeout.InfiniteTimeSpan,
        });
        // Already closed: CompleteAsync does not linger for a client that is gone.
        var pipe = new WebSocketDuplexPipe(socket, MaximumPacketSize, NullLogger.Instance, "fuzz", new CancellationToken(canceled: true));
        pipe.Start();
        try
        {
            while (true)
            {
                ReadResult result = await pipe.Input.ReadAsync().ConfigureAwait(false);
                foreach (ReadOnlyMemory<byte> segment in result.Buffer)
                {
                    await pipe.Output.WriteAsync(segment).ConfigureAwait(false);
                }
                pipe.Input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (IOException)
        {
            // The documented end of a WebSocket that broke the rules or went away.
        }
        _ = await pipe.CompleteAsync().ConfigureAwait(false);
    }

    /// <summary>The client's bytes, then end of stream; what the server writes is discarded.</summary>
    private sealed class ReplayStream(byte[] data) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int n = Math.Min(buffer.Length, data.Length - _position);
            data.AsSpan(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            cancellationToken.IsCancellationRequested ? ValueTask.FromCanceled<int>(cancellationToken) : new(Read(buffer.Span));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count)
        {
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.CompletedTask;

        public override void Flush()
        {
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
