using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Auth;

public static class ProxyProtocolListenOptionsExtensions
{
    /// <summary>
    /// Expects a PROXY protocol v2 header at the start of every connection (a TLS-passthrough load balancer in front
    /// of the broker) and makes the client address it carries the connection's remote address. Call BEFORE
    /// <see cref="ClientCertificateListenOptionsExtensions.UseClientCertificateAuthentication"/>: the header precedes
    /// the TLS ClientHello. A connection without a valid header is closed and logged (event 2050).
    /// </summary>
    /// <param name="headerTimeout">how long a new connection may take to send its header.</param>
    public static ListenOptions UseProxyProtocol(this ListenOptions listenOptions, TimeSpan headerTimeout)
    {
        ArgumentNullException.ThrowIfNull(listenOptions);
        var logger = listenOptions.ApplicationServices.GetService<ILoggerFactory>()?.CreateLogger("OmniBroker.Auth.ProxyProtocol")
            ?? NullLogger.Instance;
        listenOptions.Use(next => new ProxyProtocolMiddleware(next, headerTimeout, logger).OnConnectedAsync);
        return listenOptions;
    }
}

/// <summary>
/// Connection middleware that consumes a PROXY protocol v2 header and publishes the proxied client address as
/// <see cref="IRemoteAddressFeature"/> and <see cref="ConnectionContext.RemoteEndPoint"/>, so the certificate
/// authentication logs, the engine and the admin API all show the real client, not the load balancer.
/// </summary>
internal sealed class ProxyProtocolMiddleware
{
    private readonly ConnectionDelegate _next;
    private readonly TimeSpan _headerTimeout;
    private readonly ILogger _logger;

    public ProxyProtocolMiddleware(ConnectionDelegate next, TimeSpan headerTimeout, ILogger logger)
    {
        _next = next;
        _headerTimeout = headerTimeout;
        _logger = logger;
    }

    public async Task OnConnectedAsync(ConnectionContext context)
    {
        var peer = context.RemoteEndPoint;
        ProxyHeader header;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.ConnectionClosed))
        {
            timeout.CancelAfter(_headerTimeout);
            try
            {
                header = await ReadHeaderAsync(context.Transport.Input, timeout.Token).ConfigureAwait(false);
            }
            catch (ProxyProtocolException ex)
            {
                ProxyProtocolLog.HeaderRejected(_logger, peer?.ToString() ?? "-", ex.Message);
                return;
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested)
            {
                ProxyProtocolLog.HeaderRejected(_logger, peer?.ToString() ?? "-",
                    context.ConnectionClosed.IsCancellationRequested
                        ? "the connection closed before a PROXY protocol v2 header"
                        : $"no complete PROXY protocol v2 header within {_headerTimeout.TotalSeconds:0.#} s");
                return;
            }
        }

        if (header.Source is { } source)
        {
            context.RemoteEndPoint = source;
            context.Features.Set<IRemoteAddressFeature>(new ProxiedRemoteAddress(source));
            if (_logger.IsEnabled(LogLevel.Debug))
            {
                ProxyProtocolLog.HeaderAccepted(_logger, peer?.ToString() ?? "-", source.ToString(), header.Destination?.ToString() ?? "-");
            }
        }
        else if (_logger.IsEnabled(LogLevel.Debug))
        {
            ProxyProtocolLog.HeaderWithoutAddress(_logger, peer?.ToString() ?? "-", header.Description);
        }

        await _next(context).ConfigureAwait(false);
    }

    private static async ValueTask<ProxyHeader> ReadHeaderAsync(System.IO.Pipelines.PipeReader input, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            var consumed = buffer.Start;
            var examined = buffer.End;
            try
            {
                if (ProxyProtocolV2.TryRead(buffer, out var header, out var end))
                {
                    // Only the header is consumed: the TLS ClientHello behind it stays for the HTTPS middleware.
                    consumed = end;
                    examined = end;
                    return header;
                }
                if (result.IsCompleted)
                {
                    throw new ProxyProtocolException(buffer.IsEmpty
                        ? "the connection closed before a PROXY protocol v2 header"
                        : $"the connection closed inside the PROXY protocol v2 header after {buffer.Length} bytes");
                }
            }
            finally
            {
                input.AdvanceTo(consumed, examined);
            }
        }
    }

    private sealed class ProxiedRemoteAddress(EndPoint endPoint) : IRemoteAddressFeature
    {
        public EndPoint? RemoteEndPoint { get; } = endPoint;
    }
}

/// <summary>A decoded PROXY protocol v2 header. <see cref="Source"/> is null for LOCAL (health checks of the load
/// balancer itself) and for address families without an IP endpoint: the socket's address is kept then.</summary>
internal readonly record struct ProxyHeader(IPEndPoint? Source, IPEndPoint? Destination, string Description, int Length);

/// <summary>The peer did not start with a valid PROXY protocol v2 header.</summary>
internal sealed class ProxyProtocolException(string message) : IOException(message);

/// <summary>
/// Decoder of the PROXY protocol version 2 header (HAProxy "The PROXY protocol", Versions 1 &amp; 2, §2.2):
/// 12-byte signature, version/command, family/transport, 16-bit length, addresses, then TLVs (skipped).
/// </summary>
internal static class ProxyProtocolV2
{
    /// <summary>\r\n\r\n\0\r\nQUIT\n: cannot start a TLS record, an HTTP request or a v1 header.</summary>
    public static ReadOnlySpan<byte> Signature => [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    private const int FixedLength = 16;
    private const int Inet4AddressLength = 12;
    private const int Inet6AddressLength = 36;
    private const int UnixAddressLength = 216;

    /// <summary>False: need more bytes. Throws <see cref="ProxyProtocolException"/> as soon as the bytes seen cannot
    /// be a v2 header (a client connecting directly starts with a TLS ClientHello: refused at its first byte).</summary>
    public static bool TryRead(in ReadOnlySequence<byte> buffer, out ProxyHeader header, out SequencePosition end)
    {
        header = default;
        end = buffer.Start;
        var reader = new SequenceReader<byte>(buffer);

        Span<byte> fixedPart = stackalloc byte[FixedLength];
        var available = (int)Math.Min(buffer.Length, FixedLength);
        reader.TryCopyTo(fixedPart[..available]);
        var signatureSeen = Math.Min(available, Signature.Length);
        if (!fixedPart[..signatureSeen].SequenceEqual(Signature[..signatureSeen]))
        {
            ThrowNoSignature(fixedPart[..available]);
        }
        if (available < FixedLength)
        {
            return false;
        }

        var versionCommand = fixedPart[12];
        var familyTransport = fixedPart[13];
        var length = BinaryPrimitives.ReadUInt16BigEndian(fixedPart[14..]);
        if (versionCommand >> 4 != 2)
        {
            Throw($"unsupported PROXY protocol version {versionCommand >> 4} (only 2 is supported)");
        }
        var command = versionCommand & 0x0F;
        if (command > 1)
        {
            Throw($"unknown PROXY protocol v2 command 0x{command:X}");
        }
        var family = familyTransport >> 4;
        var transport = familyTransport & 0x0F;
        if (family > 3 || transport > 2)
        {
            Throw($"unknown PROXY protocol v2 address family/transport 0x{familyTransport:X2}");
        }
        if (buffer.Length < FixedLength + length)
        {
            return false;
        }

        end = buffer.GetPosition(FixedLength + length);
        var total = FixedLength + length;
        if (command == 0)
        {
            // LOCAL: the proxy's own connection (health check); the addresses, if any, are to be ignored.
            header = new ProxyHeader(null, null, "LOCAL", total);
            return true;
        }
        if (family == 0)
        {
            header = new ProxyHeader(null, null, "PROXY UNSPEC", total);
            return true;
        }
        if (transport == 2)
        {
            Throw("PROXY protocol v2 header announces a datagram (UDP) connection on a TCP listener");
        }

        reader.Advance(FixedLength);
        switch (family)
        {
            case 1:
                RequireLength(length, Inet4AddressLength, "AF_INET");
                {
                    Span<byte> addresses = stackalloc byte[Inet4AddressLength];
                    reader.TryCopyTo(addresses);
                    var source = new IPEndPoint(new IPAddress(addresses[..4]), BinaryPrimitives.ReadUInt16BigEndian(addresses[8..]));
                    var destination = new IPEndPoint(new IPAddress(addresses[4..8]), BinaryPrimitives.ReadUInt16BigEndian(addresses[10..]));
                    header = new ProxyHeader(source, destination, "PROXY TCP4", total);
                    return true;
                }
            case 2:
                RequireLength(length, Inet6AddressLength, "AF_INET6");
                {
                    Span<byte> addresses = stackalloc byte[Inet6AddressLength];
                    reader.TryCopyTo(addresses);
                    var source = new IPEndPoint(new IPAddress(addresses[..16]), BinaryPrimitives.ReadUInt16BigEndian(addresses[32..]));
                    var destination = new IPEndPoint(new IPAddress(addresses[16..32]), BinaryPrimitives.ReadUInt16BigEndian(addresses[34..]));
                    header = new ProxyHeader(source, destination, "PROXY TCP6", total);
                    return true;
                }
            default:
                // AF_UNIX: no IP endpoint to report; the socket's address stays.
                RequireLength(length, UnixAddressLength, "AF_UNIX");
                header = new ProxyHeader(null, null, "PROXY UNIX", total);
                return true;
        }
    }

    private static void RequireLength(int length, int required, string family)
    {
        if (length < required)
        {
            Throw($"PROXY protocol v2 {family} header has {length} bytes of addresses, {required} are required");
        }
    }

    [DoesNotReturn]
    private static void ThrowNoSignature(ReadOnlySpan<byte> start)
    {
        var hint = start.Length > 0 && start[0] == 0x16 ? " (the connection starts with a TLS ClientHello: the client bypassed the load balancer, or the load balancer does not send PROXY v2)"
            : start.Length > 0 && "PROXY "u8.StartsWith(start[..Math.Min(start.Length, 6)]) ? " (this is a PROXY protocol v1 text header: configure the load balancer for v2)"
            : "";
        Throw($"no PROXY protocol v2 signature at the start of the connection, first bytes {Convert.ToHexString(start[..Math.Min(start.Length, 8)])}{hint}");
    }

    [DoesNotReturn]
    private static void Throw(string message) => throw new ProxyProtocolException(message);
}

/// <summary>Log events of the PROXY protocol middleware (Broker.Auth stable ids 2050-2059).</summary>
internal static partial class ProxyProtocolLog
{
    [LoggerMessage(EventId = 2050, EventName = "ProxyHeaderRejected", Level = LogLevel.Warning,
        Message = "Connection from {Peer} closed: {Reason}")]
    public static partial void HeaderRejected(ILogger logger, string peer, string reason);

    [LoggerMessage(EventId = 2051, EventName = "ProxyHeaderAccepted", Level = LogLevel.Debug,
        Message = "PROXY protocol v2 from {Peer}: client {RemoteAddress}, destination {Destination}")]
    public static partial void HeaderAccepted(ILogger logger, string peer, string remoteAddress, string destination);

    [LoggerMessage(EventId = 2052, EventName = "ProxyHeaderWithoutAddress", Level = LogLevel.Debug,
        Message = "PROXY protocol v2 from {Peer}: {Command}, keeping the socket address")]
    public static partial void HeaderWithoutAddress(ILogger logger, string peer, string command);
}
