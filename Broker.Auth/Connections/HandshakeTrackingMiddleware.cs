using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using OmniBroker.Mqtt.Diagnostics;

namespace OmniBroker.Auth;

/// <summary>
/// Outermost middleware of a mutual-TLS listener, before Kestrel's HTTPS middleware. It waits (at most the handshake
/// timeout) for the client's first byte, then for one of <see cref="MutualTlsOptions.MaxConcurrentHandshakes"/>
/// slots, and only then lets the handshake start, so its clock (the handshake timeout, kept here, and the handshake
/// duration metric) starts with the handshake, not with the queue. The slot is released by
/// <see cref="ClientCertificateMiddleware"/> when the handshake is done, or here when the connection ends. A
/// connection that ends without an authentication decision is logged as refused: <c>timeout</c> when it never
/// finished the handshake in time (idle scanners, slowloris, a full queue), <c>tls_error</c> otherwise.
/// </summary>
internal sealed class HandshakeTrackingMiddleware
{
    private readonly ConnectionDelegate _next;
    private readonly ClientCertificateAuthenticator _authenticator;
    private readonly MutualTlsOptions _options;
    private readonly HandshakeGate _gate;

    public HandshakeTrackingMiddleware(ConnectionDelegate next, ClientCertificateAuthenticator authenticator, MutualTlsOptions options)
    {
        _next = next;
        _authenticator = authenticator;
        _options = options;
        _gate = authenticator.GetHandshakeGate(options);
    }

    public async Task OnConnectedAsync(ConnectionContext context)
    {
        var state = await BeginAsync(context).ConfigureAwait(false);
        try
        {
            if (state is not null)
            {
                await _next(context).ConfigureAwait(false);
            }
        }
        finally
        {
            End(context, state ?? context.Features.Get<HandshakeState>()!);
        }
    }

    /// <summary>Waits for the first byte and a handshake slot, then starts the handshake clock and timer. Null when the
    /// connection never got that far (the reason is in the state; call <see cref="End"/> all the same).</summary>
    internal async ValueTask<HandshakeState?> BeginAsync(ConnectionContext context)
    {
        var state = _authenticator.BeginConnection(context);
        if (!await WaitForFirstByteAsync(context, state).ConfigureAwait(false)
            || !await _gate.EnterAsync(context, state, _options.HandshakeQueueTimeout).ConfigureAwait(false))
        {
            return null;
        }
        _authenticator.RestartClock(state);
        // The handshake timeout is ours, not Kestrel's (whose timer stays as a later backstop on the Kestrel engine): a
        // connection ended by it is then known to have timed out, instead of being told from a TLS failure by how long it
        // lasted. Held by the state and disposed as soon as the handshake completes, not for the connection's lifetime.
        state.ArmHandshakeTimer(_authenticator.Time.CreateTimer(static s =>
        {
            var (connection, handshake, timeout) = ((ConnectionContext, HandshakeState, TimeSpan))s!;
            if (handshake.TryTimeOutHandshake($"TLS handshake not finished within {timeout}"))
            {
                connection.Abort(new ConnectionAbortedException("TLS handshake timeout"));
            }
        }, (context, state, _options.HandshakeTimeout), _options.HandshakeTimeout, Timeout.InfiniteTimeSpan));
        return state;
    }

    /// <summary>The connection ends: logs the outcome if none was decided, then gives the slot to the next one.</summary>
    internal void End(ConnectionContext context, HandshakeState state)
    {
        state.DisarmHandshakeTimer();
        // The outcome is logged before the slot goes to the next connection in the queue.
        _authenticator.EndConnection(context, state);
        state.ReleaseSlot();
    }

    /// <summary>Peeks at the input without consuming it: the TLS middleware then reads the same bytes.</summary>
    private async ValueTask<bool> WaitForFirstByteAsync(ConnectionContext context, HandshakeState state)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.ConnectionClosed);
        timeout.CancelAfter(_options.HandshakeTimeout);
        if (context.Features.Get<IRawSocketStreamFeature>() is { PipesCreated: false } raw)
        {
            return await WaitForFirstByteAsync(raw, state, timeout.Token).ConfigureAwait(false);
        }
        var input = context.Transport.Input;
        ReadResult result;
        try
        {
            result = await input.ReadAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            state.NeverFinished($"no byte within the handshake timeout {_options.HandshakeTimeout}");
            return false;
        }
        var empty = result.Buffer.IsEmpty;
        input.AdvanceTo(result.Buffer.Start);
        if (empty)
        {
            state.NeverFinished("closed before sending a byte");
            return false;
        }
        return true;
    }

    /// <summary>The same wait on the transport's own stream, whose zero-byte read returns only once bytes, the end of
    /// the stream or an error arrived (a wake-up with nothing there is waited out there, not here); only bytes leave
    /// something available on the socket.</summary>
    private async ValueTask<bool> WaitForFirstByteAsync(IRawSocketStreamFeature raw, HandshakeState state, CancellationToken timeout)
    {
        try
        {
            await raw.Stream.ReadAsync(Memory<byte>.Empty, timeout).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            state.NeverFinished($"no byte within the handshake timeout {_options.HandshakeTimeout}");
            return false;
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            state.NeverFinished("closed before sending a byte");
            return false;
        }
        if (raw.Socket.Available == 0)
        {
            state.NeverFinished("closed before sending a byte");
            return false;
        }
        return true;
    }
}

/// <summary>The handshake slots of one set of <see cref="MutualTlsOptions"/> (shared by the listeners using it).</summary>
internal sealed class HandshakeGate
{
    private readonly SemaphoreSlim _slots;
    private readonly int _limit;
    private readonly AggregatedLog _limitLog;

    public HandshakeGate(int limit, ILogger logger, TimeProvider time)
    {
        _limit = limit;
        _slots = new SemaphoreSlim(limit, limit);
        _limitLog = new AggregatedLog(logger, time);
    }

    public int Available => _slots.CurrentCount;

    public async ValueTask<bool> EnterAsync(ConnectionContext context, HandshakeState state, TimeSpan queueTimeout)
    {
        if (!_slots.Wait(0))
        {
            // A storm: queue. Logged once per interval for the whole listener, not per connection.
            _limitLog.LimitHit(LimitMetrics.Limits.HandshakesQueued, "tls listener", _limit, "TLS handshakes wait for a slot (Tls:MaxConcurrentHandshakes)");
            bool entered;
            try
            {
                entered = await _slots.WaitAsync(queueTimeout, context.ConnectionClosed).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                state.NeverFinished("closed while waiting for a handshake slot");
                return false;
            }
            if (!entered)
            {
                _limitLog.LimitHit(LimitMetrics.Limits.HandshakeQueueTimeout, "tls listener", _limit, $"connections waited {queueTimeout} for a handshake slot and were closed (Tls:HandshakeQueueTimeout)");
                state.NeverFinished($"no handshake slot within {queueTimeout}");
                return false;
            }
        }
        state.HoldSlot(_slots);
        return true;
    }
}
