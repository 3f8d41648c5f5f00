using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Auth;

/// <summary>
/// Connection middleware after Kestrel's HTTPS middleware: checks the client certificate (chain result from the
/// handshake, revocation) and publishes <see cref="IClientIdentityFeature"/>, as HttpsConnectionMiddleware publishes
/// <see cref="ITlsConnectionFeature"/>. Refused connections are logged once and aborted; <c>next</c> never sees them.
/// </summary>
internal sealed class ClientCertificateMiddleware
{
    private readonly ConnectionDelegate _next;
    private readonly ClientCertificateAuthenticator _authenticator;
    private readonly bool _openSslTuning;

    public ClientCertificateMiddleware(ConnectionDelegate next, ClientCertificateAuthenticator authenticator, bool openSslTuning)
    {
        _next = next;
        _authenticator = authenticator;
        _openSslTuning = openSslTuning;
    }

    public async Task OnConnectedAsync(ConnectionContext context)
    {
        // The handshake is over: its slot goes to the next queued connection.
        var state = context.Features.Get<HandshakeState>();
        state?.ReleaseSlot();
        if (state is not null && !state.TryCompleteHandshake())
        {
            // Finished just after the handshake timer fired: the connection is already aborted and refused as timeout.
            return;
        }
        if (_openSslTuning && context.Features.Get<ISslStreamFeature>()?.SslStream is { } ssl)
        {
            // Kestrel's adapter reads only when the application asks: nothing touches the stream yet (see DirectTlsMiddleware).
            OpenSslServerTuning.TrimAfterHandshake(ssl, dropPeerChain: true);
        }
        var tls = context.Features.Get<ITlsConnectionFeature>();
        var identity = await _authenticator.AuthenticateAsync(context, tls?.ClientCertificate).ConfigureAwait(false);
        if (identity is null)
        {
            return;
        }

        context.Features.Set<IClientIdentityFeature>(identity);
        _authenticator.Registry.Register(identity);
        try
        {
            await _next(context).ConfigureAwait(false);
        }
        finally
        {
            _authenticator.Registry.Unregister(identity);
        }
    }
}

