using Microsoft.Extensions.Logging;
using NATS.Client.Core;

namespace OmniBroker.Cluster;

/// <summary>Retries of NATS operations while the connection is down or a server is electing a leader: the work of a
/// node must not be lost to a transient error, and it must stop when the node stops.</summary>
internal static class ClusterRetry
{
    private static readonly TimeSpan s_pause = TimeSpan.FromMilliseconds(500);

    /// <summary>Runs <paramref name="operation"/> until it succeeds or <paramref name="cancellationToken"/> fires.</summary>
    public static async Task RunAsync(ILogger logger, string name, Func<Task> operation, CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                await operation().ConfigureAwait(false);
                return;
            }
            catch (NatsException ex)
            {
                logger.OperationFailed(name, ex.Message);
            }
            catch (TimeoutException ex)
            {
                logger.OperationFailed(name, ex.Message);
            }
            await Task.Delay(s_pause, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Runs a watch <paramref name="body"/> for as long as the node runs: again from the start when it ends,
    /// fails, or when the token returned by <paramref name="restart"/> fires (a reconnect to NATS: resynchronise).</summary>
    public static async Task WatchAsync(ILogger logger, string name, Func<CancellationToken, Task> body, Func<CancellationToken> restart,
        CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, restart());
            try
            {
                await body(linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                continue;
            }
            catch (NatsException ex)
            {
                logger.OperationFailed(name, ex.Message);
            }
            catch (TimeoutException ex)
            {
                logger.OperationFailed(name, ex.Message);
            }
            await Task.Delay(s_pause, cancellationToken).ConfigureAwait(false);
        }
    }
}
