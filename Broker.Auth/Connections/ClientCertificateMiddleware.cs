using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
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

    public ClientCertificateMiddleware(ConnectionDelegate next, ClientCertificateAuthenticator authenticator)
    {
        _next = next;
        _authenticator = authenticator;
    }

    public async Task OnConnectedAsync(ConnectionContext context)
    {
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

/// <summary>
/// Outermost middleware on the MQTT listener: starts the handshake clock and, when the connection ends without an
/// authentication decision (TLS itself failed), logs that refusal.
/// </summary>
internal sealed class HandshakeTrackingMiddleware
{
    private readonly ConnectionDelegate _next;
    private readonly ClientCertificateAuthenticator _authenticator;

    public HandshakeTrackingMiddleware(ConnectionDelegate next, ClientCertificateAuthenticator authenticator)
    {
        _next = next;
        _authenticator = authenticator;
    }

    public async Task OnConnectedAsync(ConnectionContext context)
    {
        var state = _authenticator.BeginConnection(context);
        try
        {
            await _next(context).ConfigureAwait(false);
        }
        finally
        {
            _authenticator.EndConnection(context, state);
        }
    }
}
