using System.Buffers;
using System.IO.Pipelines;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Auth;

/// <summary>
/// The MQTT over TLS listener's TLS without Kestrel's HTTPS middleware (<see cref="TlsEngine.Direct"/>). One
/// middleware, so one parked async state machine per idle connection instead of three (handshake tracking, Kestrel's
/// HTTPS middleware, <see cref="ClientCertificateMiddleware"/>), does what those three did: wait for the first byte
/// and a handshake slot (<see cref="HandshakeTrackingMiddleware.BeginAsync"/>), the handshake with the same
/// <see cref="SslServerAuthenticationOptions"/> (client certificate callback, <see cref="OpenSslServerTuning"/>),
/// revocation and identity. Without Kestrel's <c>Task.Yield</c>, its handshake-timeout token source, its TLS metrics
/// and features, the handshake goes straight from the first-byte wait into SslStream. The application then reads and
/// writes through one <see cref="PipeReader"/>/<see cref="PipeWriter"/> over SslStream (zero-byte reads: an idle
/// connection holds no buffer), as Kestrel's adapter does. <see cref="ITlsConnectionFeature"/> is published as Kestrel
/// publishes it (the client certificate).
/// </summary>
internal sealed class DirectTlsMiddleware
{
    private readonly ConnectionDelegate _next;
    private readonly ClientCertificateAuthenticator _authenticator;
    private readonly HandshakeTrackingMiddleware _tracking;
    private readonly MutualTlsOptions _options;
    private readonly SslStreamCertificateContext _serverCertificate;

    public DirectTlsMiddleware(ConnectionDelegate next, ClientCertificateAuthenticator authenticator, MutualTlsOptions options, SslStreamCertificateContext serverCertificate)
    {
        _next = next;
        _authenticator = authenticator;
        _options = options;
        _serverCertificate = serverCertificate;
        _tracking = new HandshakeTrackingMiddleware(next, authenticator, options);
    }

    public async Task OnConnectedAsync(ConnectionContext context)
    {
        var state = await _tracking.BeginAsync(context).ConfigureAwait(false);
        if (state is null)
        {
            _tracking.End(context, context.Features.Get<HandshakeState>()!);
            return;
        }
        // Straight over the socket when the transport allows it (no bytes waiting in its pipes); else over the pipes.
        var raw = context.Features.Get<IRawSocketStreamFeature>();
        var direct = raw is { PipesCreated: false };
        var transport = direct ? null : context.Transport;
        var ssl = new SslStream(direct ? raw!.Stream : new TransportStream(transport!), leaveInnerStreamOpen: true);
        ClientIdentity? identity = null;
        try
        {
            try
            {
                await ssl.AuthenticateAsServerAsync(_authenticator.CreateServerOptions(context, _serverCertificate, _options)).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is AuthenticationException or IOException or OperationCanceledException or ObjectDisposedException)
            {
                // Refused by the certificate callback (already decided and logged), a timeout (the timer aborted the
                // connection) or a TLS error: End() below logs whichever was not decided yet, as with Kestrel's engine.
                return;
            }

            // The handshake is over: its slot goes to the next queued connection.
            state.ReleaseSlot();
            if (_options.OpenSslTuning)
            {
                // Nothing reads or writes yet: free the handshake's BIO buffers and the client's intermediates (the
                // validator keeps its own chain), about 4 KiB per idle connection (docs/benchmarks.md).
                OpenSslServerTuning.TrimAfterHandshake(ssl, dropPeerChain: true);
            }
            if (!state.TryCompleteHandshake())
            {
                return;
            }
            var clientCertificate = ssl.RemoteCertificate as X509Certificate2;
            context.Features.Set<ITlsConnectionFeature>(new DirectTlsFeature(ssl, clientCertificate));
            identity = await _authenticator.AuthenticateAsync(context, clientCertificate).ConfigureAwait(false);
            if (identity is null)
            {
                return;
            }

            context.Features.Set<IClientIdentityFeature>(identity);
            _authenticator.Registry.Register(identity);
            var pool = context.Features.Get<IMemoryPoolFeature>()?.MemoryPool ?? MemoryPool<byte>.Shared;
            // Small segments for small MQTT packets; a zero-byte read on SslStream (then on the transport) while idle.
            var input = PipeReader.Create(ssl, new StreamPipeReaderOptions(pool, bufferSize: 4096, minimumReadSize: 1024, leaveOpen: true, useZeroByteReads: true));
            var output = PipeWriter.Create(ssl, new StreamPipeWriterOptions(pool, minimumBufferSize: 4096, leaveOpen: true));
            context.Transport = new DuplexPipe(input, output);
            try
            {
                await _next(context).ConfigureAwait(false);
            }
            finally
            {
                if (transport is not null)
                {
                    context.Transport = transport;
                }
                await input.CompleteAsync().ConfigureAwait(false);
                await output.CompleteAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            if (identity is not null)
            {
                _authenticator.Registry.Unregister(identity);
            }
            _tracking.End(context, state);
            // Frees the OpenSSL state (leaveInnerStreamOpen: the transport is Kestrel's to complete).
            await ssl.DisposeAsync().ConfigureAwait(false);
        }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }

    private sealed class DirectTlsFeature(SslStream ssl, X509Certificate2? clientCertificate) : ITlsConnectionFeature
    {
        public X509Certificate2? ClientCertificate { get; set; } = clientCertificate;

        public Task<X509Certificate2?> GetClientCertificateAsync(CancellationToken cancellationToken) =>
            Task.FromResult(ClientCertificate ?? ssl.RemoteCertificate as X509Certificate2);
    }
}
