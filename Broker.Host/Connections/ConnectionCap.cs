using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using OmniBroker.Mqtt.Diagnostics;

namespace OmniBroker.Host.Connections;

/// <summary>
/// The connection cap of the device listeners (<see cref="ConnectionLimitSettings"/>), shared by the MQTT over TLS and
/// the WebSocket listener. Outermost connection middleware: a connection beyond the cap is closed as soon as it is
/// accepted, before the PROXY header, the handshake queue or TLS, and counted (omnibroker_limit_hits_total{limit=
/// "listener_connections"}; one aggregated log line per interval). Why a cap at all: at the descriptor limit the
/// .NET runtime cannot start a thread-pool thread (the thread's start needs a pipe and a file) and the process
/// aborts ("Out of memory."); below it, a full listener only refuses.
/// </summary>
internal sealed class ConnectionCap
{
    private const string ListenerKey = "device listeners";

    private readonly AggregatedLog _refusals;
    private int _open;

    public ConnectionCap(ConnectionLimitSettings settings, ILoggerFactory loggers, IMeterFactory meters, TimeProvider time)
    {
        var logger = loggers.CreateLogger("OmniBroker.Host.Connections");
        _refusals = new AggregatedLog(logger, time);
        (Limit, var softLimit, var openAtStart) = Derive(settings);
        if (Limit > 0)
        {
            ConnectionLog.Cap(logger, Limit, settings.MaxConnections > 0 ? "Limits:MaxConnections" : "derived",
                softLimit?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown",
                openAtStart?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown", settings.ReservedDescriptors);
            if (softLimit is { } soft && openAtStart is { } open && Limit > soft - open - settings.ReservedDescriptors)
            {
                ConnectionLog.CapAboveDescriptors(logger, Limit, soft, open, settings.ReservedDescriptors);
            }
        }
        else
        {
            ConnectionLog.NoCap(logger);
        }

        var meter = meters.Create(Metrics.AdminMetrics.MeterName);
        // omnibroker_listener_connections, omnibroker_listener_connection_limit
        meter.CreateObservableGauge("omnibroker.listener.connections", () => Volatile.Read(ref _open), "{connection}",
            "TCP connections held by the device listeners (MQTT over TLS and WebSockets), from accept to close.");
        meter.CreateObservableGauge("omnibroker.listener.connection_limit", () => Limit, "{connection}",
            "The device listeners' connection cap (Limits:MaxConnections, or derived from the descriptor limit); 0: none.");
    }

    /// <summary>The cap; 0 when none (the descriptor limit is unknown and Limits:MaxConnections is 0).</summary>
    public int Limit { get; }

    /// <summary>The middleware; use it first on every device listener.</summary>
    public ConnectionDelegate Use(ConnectionDelegate next) => context => OnConnectedAsync(next, context);

    private async Task OnConnectedAsync(ConnectionDelegate next, ConnectionContext context)
    {
        if (Interlocked.Increment(ref _open) > Limit && Limit > 0)
        {
            Interlocked.Decrement(ref _open);
            // Returning closes the socket: no TLS, no pipe buffers, the descriptor is free again at once.
            _refusals.LimitHit(LimitMetrics.Limits.ListenerConnections, ListenerKey, Limit,
                "connections closed at accept, before TLS (Limits:MaxConnections)");
            return;
        }
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _open);
        }
    }

    /// <summary>Limits:MaxConnections when set, else the soft descriptor limit minus the descriptors open now and the
    /// reserve (each connection holds one descriptor).</summary>
    internal static (int Limit, long? SoftLimit, int? OpenAtStart) Derive(ConnectionLimitSettings settings)
    {
        var soft = DescriptorLimit.SoftLimit();
        var open = DescriptorLimit.OpenNow();
        if (settings.MaxConnections > 0)
        {
            return (settings.MaxConnections, soft, open);
        }
        if (soft is not { } limit || open is not { } opened)
        {
            return (0, soft, open);
        }
        // At least one connection, so that a badly sized reserve shows as refusals, not as a dead listener.
        return ((int)Math.Clamp(limit - opened - settings.ReservedDescriptors, 1, int.MaxValue), soft, open);
    }
}

/// <summary>Log events of the device listeners' connection cap (ids 6010-6019).</summary>
internal static partial class ConnectionLog
{
    [LoggerMessage(EventId = 6010, EventName = "ConnectionCap", Level = LogLevel.Information,
        Message = "Device listeners hold at most {Limit} connections ({Source}; descriptor limit {SoftLimit}, open at start {OpenAtStart}, reserved {Reserved})")]
    public static partial void Cap(ILogger logger, int limit, string source, string softLimit, string openAtStart, int reserved);

    [LoggerMessage(EventId = 6011, EventName = "ConnectionCapAboveDescriptors", Level = LogLevel.Warning,
        Message = "Limits:MaxConnections {Limit} exceeds what the descriptor limit {SoftLimit} leaves ({OpenAtStart} open at start, {Reserved} reserved): at the descriptor limit the process may abort; raise the limit (LimitNOFILE, ulimit -n) or lower Limits:MaxConnections")]
    public static partial void CapAboveDescriptors(ILogger logger, int limit, long softLimit, int openAtStart, int reserved);

    [LoggerMessage(EventId = 6012, EventName = "NoConnectionCap", Level = LogLevel.Warning,
        Message = "The descriptor limit is unknown on this system and Limits:MaxConnections is 0: the device listeners have no connection cap")]
    public static partial void NoCap(ILogger logger);
}
