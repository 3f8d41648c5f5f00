using System.Net.Security;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;

namespace OmniBroker.Auth;

public static class ClientCertificateListenOptionsExtensions
{
    /// <summary>
    /// TLS with a required, validated client certificate on this listener: handshake tracking, Kestrel's HTTPS
    /// middleware (chain checked in the handshake), then <see cref="ClientCertificateMiddleware"/> (revocation,
    /// identity). Call before <c>UseConnectionHandler</c>. Needs <see cref="AuthServiceCollectionExtensions.AddClientCertificateAuthentication"/>
    /// and, with the slim builder, <c>WebHost.UseKestrelHttpsConfiguration()</c>.
    /// </summary>
    public static ListenOptions UseClientCertificateAuthentication(this ListenOptions listenOptions, MutualTlsOptions options) =>
        UseClientCertificateAuthentication(listenOptions, options, options?.Engine ?? TlsEngine.Direct);

    /// <summary>As above with the TLS engine chosen by the caller: listeners that serve HTTP need
    /// <see cref="TlsEngine.Kestrel"/> (its features drive HTTPS in Kestrel's HTTP layer).</summary>
    public static ListenOptions UseClientCertificateAuthentication(this ListenOptions listenOptions, MutualTlsOptions options, TlsEngine engine)
    {
        ArgumentNullException.ThrowIfNull(listenOptions);
        ArgumentNullException.ThrowIfNull(options);
        if (!options.ServerCertificate.HasPrivateKey)
        {
            throw new ArgumentException("the server certificate has no private key", nameof(options));
        }
        var authenticator = listenOptions.ApplicationServices.GetRequiredService<ClientCertificateAuthenticator>();
        // Built once: the chain sent to every client, no per-handshake chain building for the server certificate.
        var serverCertificate = SslStreamCertificateContext.Create(options.ServerCertificate, options.ServerCertificateChain, offline: true);

        if (engine == TlsEngine.Direct)
        {
            listenOptions.Use(next => new DirectTlsMiddleware(next, authenticator, options, serverCertificate).OnConnectedAsync);
            return listenOptions;
        }
        listenOptions.Use(next => new HandshakeTrackingMiddleware(next, authenticator, options).OnConnectedAsync);
        listenOptions.UseHttps(new TlsHandshakeCallbackOptions
        {
            // HandshakeTrackingMiddleware times handshakes out; Kestrel's timer is only a backstop behind it.
            HandshakeTimeout = options.HandshakeTimeout + TimeSpan.FromSeconds(5),
            OnConnection = context => ValueTask.FromResult(authenticator.CreateServerOptions(context.Connection, serverCertificate, options)),
        });
        listenOptions.Use(next => new ClientCertificateMiddleware(next, authenticator, options.OpenSslTuning).OnConnectedAsync);
        return listenOptions;
    }
}
