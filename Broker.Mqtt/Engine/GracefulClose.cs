using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;

namespace OmniBroker.Mqtt.Engine;

/// <summary>
/// The end of a connection the server closes after a last packet of its own (a 5.0 DISCONNECT with a reason code,
/// a CONNACK refusal). Closing a socket while the peer's data is still unread makes the kernel send a reset, and a
/// reset can discard that last packet before the client reads it (the client then sees "connection reset" instead of
/// the reason code, 5.0 §4.13). So, like an HTTP server's lingering close: shut down our sending side (TLS
/// close_notify, when the transport is TLS), then read and discard what the peer still sends until it closes too or
/// a short limit passes; only then is the connection closed.
/// </summary>
internal static class GracefulClose
{
    /// <summary>How long a closing connection reads what the peer still sends before closing anyway.</summary>
    public static readonly TimeSpan DrainLimit = TimeSpan.FromSeconds(1);

    public static async Task ShutdownAndDrainAsync(ConnectionContext context, TimeSpan limit)
    {
        // Only a TLS stream over TCP needs this. A transport of its own (MQTT over WebSockets) ends with its own
        // close handshake, which carries the reason; draining there would let the client close first and lose it.
        if (context.Features.Get<ISslStreamFeature>()?.SslStream is not { } tls)
        {
            return;
        }

        using var timeout = new CancellationTokenSource(limit);
        {
            try
            {
                // close_notify: the TLS half-close; the peer's reads end after our last packet.
                await tls.ShutdownAsync().WaitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (IOException)
            {
                return; // the transport is gone: nothing left to drain
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (InvalidOperationException)
            {
                // Another write is pending or the stream was never authenticated: keep the plain close.
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        await DrainAsync(context.Transport.Input, timeout.Token).ConfigureAwait(false);
    }

    private static async Task DrainAsync(PipeReader input, CancellationToken token)
    {
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(token).ConfigureAwait(false);
                input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
                // IsCanceled: the CancelPendingRead of the close request itself; keep draining until the limit.
            }
        }
        catch (OperationCanceledException)
        {
            // The limit: the peer keeps the connection open; close it anyway.
        }
        catch (IOException)
        {
            // Reset by the peer: nothing left to protect.
        }
        catch (InvalidOperationException)
        {
            // The reader was already completed by the transport.
        }
    }
}
