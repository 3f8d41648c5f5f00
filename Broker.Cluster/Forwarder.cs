using System.Collections.Concurrent;
using System.Globalization;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;

namespace OmniBroker.Cluster;

/// <summary>
/// Hands messages to the inbox streams of their target nodes, pipelined and in order. One writer takes messages in the
/// order the engine routed them and publishes each to <c>omni.inbox.{node}</c> on the one NATS connection (so the
/// stream stores them in that order) with a reply subject of its own; JetStream answers every stored message there
/// (a PubAck), and a message is confirmed once all its targets answered. Unconfirmed after the forward timeout, or
/// answered with an error: failed (the publisher is not acknowledged). An error answer within the timeout (a stream
/// electing a new leader after a server died) is retried with the same message id, which JetStream's duplicate window
/// drops should the first attempt have been stored after all; a retried message may be stored after later ones.
/// </summary>
internal sealed class Forwarder(string nodeId, TimeSpan timeout, ILogger logger, TimeProvider time)
{
    private static readonly TimeSpan s_retryPause = TimeSpan.FromMilliseconds(200);
    private readonly Channel<(Pending Message, string? Target)> _queue =
        Channel.CreateUnbounded<(Pending, string?)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<long, (Pending Message, string Target)> _awaiting = new();
    private readonly string _idPrefix = nodeId + "-" + Guid.NewGuid().ToString("N")[..12] + "-";
    private long _messageSequence;
    private readonly string _replyPrefix = "_OMNI_ACK." + nodeId + "." + Guid.NewGuid().ToString("N");
    private long _sequence;
    private long _failed;
    private long _forwarded;

    public long Forwarded => Interlocked.Read(ref _forwarded);

    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Queues <paramref name="data"/> for <paramref name="targets"/>, with each target's share groups
    /// (<paramref name="shares"/>, the <see cref="SharedGroupRouting.Header"/> values; null: none for any target); the task (only when
    /// <paramref name="confirm"/>) completes with whether every target stored it.</summary>
    public Task<bool>? Enqueue(byte[] data, string[] targets, string[]? shares, bool confirm)
    {
        var id = _idPrefix + Interlocked.Increment(ref _messageSequence).ToString(CultureInfo.InvariantCulture);
        var pending = new Pending(id, data, targets, shares, confirm ? new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously) : null,
            time.GetTimestamp());
        if (!_queue.Writer.TryWrite((pending, null)))
        {
            return Task.FromResult(false);
        }
        return pending.Done?.Task;
    }

    public async Task RunAsync(INatsConnection nats, CancellationToken cancellationToken)
    {
        await using var replies = await nats.SubscribeCoreAsync<byte[]>(_replyPrefix + ".*", cancellationToken: cancellationToken).ConfigureAwait(false);
        var answers = ReadRepliesAsync(replies, cancellationToken);
        var sweeper = SweepAsync(cancellationToken);
        try
        {
            await foreach (var (pending, only) in _queue.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                foreach (var target in only is null ? pending.Targets : [only])
                {
                    // Deduplication by JetStream (its duplicate window) should an answer be lost and the message sent again.
                    var headers = new NatsHeaders { ["Nats-Msg-Id"] = pending.Id, [SharedGroupRouting.Header] = pending.SharesFor(target) };
                    var sequence = Interlocked.Increment(ref _sequence);
                    _awaiting[sequence] = (pending, target);
                    var reply = _replyPrefix + "." + sequence.ToString(CultureInfo.InvariantCulture);
                    await ClusterRetry.RunAsync(logger, "forward", () => nats.PublishAsync(ClusterNames.InboxSubject(target), pending.Data, headers,
                        replyTo: reply, cancellationToken: cancellationToken).AsTask(), cancellationToken).ConfigureAwait(false);
                }
                if (only is null)
                {
                    Interlocked.Increment(ref _forwarded);
                }
            }
        }
        finally
        {
            await Task.WhenAll(answers, sweeper).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private async Task ReadRepliesAsync(INatsSub<byte[]> replies, CancellationToken cancellationToken)
    {
        await foreach (var reply in replies.Msgs.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            var dot = reply.Subject.LastIndexOf('.');
            if (!long.TryParse(reply.Subject.AsSpan(dot + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var sequence)
                || !_awaiting.TryRemove(sequence, out var awaited))
            {
                continue;
            }
            // A PubAck is {"stream":...,"seq":...}; a failure is {"error":{...}} or a status (503: no stream listens).
            var ok = reply.Headers?.Code is null or 0 or 200 && reply.Data is { Length: > 0 } data
                && data.AsSpan().IndexOf("\"error\""u8) < 0;
            if (ok)
            {
                awaited.Message.Answer(true);
            }
            else if (time.GetElapsedTime(awaited.Message.Queued) + s_retryPause < timeout)
            {
                _ = RetryAsync(awaited.Message, awaited.Target, cancellationToken);
            }
            else
            {
                awaited.Message.Answer(false);
                Interlocked.Increment(ref _failed);
            }
        }
    }

    private async Task RetryAsync(Pending pending, string target, CancellationToken cancellationToken)
    {
        await Task.Delay(s_retryPause, time, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _queue.Writer.TryWrite((pending, target));
    }

    private async Task SweepAsync(CancellationToken cancellationToken)
    {
        var period = TimeSpan.FromMilliseconds(Math.Clamp(timeout.TotalMilliseconds / 4, 50, 1000));
        using var timer = new PeriodicTimer(period, time);
        long reported = 0;
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
        {
            foreach (var (sequence, (pending, _)) in _awaiting)
            {
                if (time.GetElapsedTime(pending.Queued) > timeout && _awaiting.TryRemove(sequence, out _))
                {
                    pending.Answer(false);
                    Interlocked.Increment(ref _failed);
                }
            }
            var failed = Failed;
            if (failed != reported)
            {
                logger.ForwardsFailed(failed - reported);
                reported = failed;
            }
        }
    }

    private sealed class Pending(string id, byte[] data, string[] targets, string[]? shares, TaskCompletionSource<bool>? done, long queued)
    {
        private int _remaining = targets.Length;

        public string Id { get; } = id;
        public byte[] Data { get; } = data;
        public string[] Targets { get; } = targets;
        public TaskCompletionSource<bool>? Done { get; } = done;
        public long Queued { get; } = queued;

        public string SharesFor(string target) => shares is null ? SharedGroupRouting.Encode(null) : shares[Array.IndexOf(Targets, target)];

        public void Answer(bool stored)
        {
            if (!stored)
            {
                Done?.TrySetResult(false);
            }
            else if (Interlocked.Decrement(ref _remaining) == 0)
            {
                Done?.TrySetResult(true);
            }
        }
    }
}
