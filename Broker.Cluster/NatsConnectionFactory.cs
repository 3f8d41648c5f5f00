using System.Security.Authentication;
using NATS.Client.Core;

namespace OmniBroker.Cluster;

/// <summary>
/// The node's NATS connection options (URLs, TLS with an optional client certificate, user/password, .creds or NKey
/// seed), and a first connection attempt that tells a configuration problem (TLS handshake or credentials refused:
/// fatal at start-up) from servers not reachable yet (retried in the background, as before).
/// </summary>
internal static class NatsConnectionFactory
{
    public static NatsOpts Options(ClusterOptions options) => NatsOpts.Default with
    {
        Url = options.Urls,
        Name = "omnibroker-" + options.NodeId,
        RetryOnInitialConnect = true,
        MaxReconnectRetry = -1,
        ReconnectWaitMin = TimeSpan.FromMilliseconds(200),
        ReconnectWaitMax = TimeSpan.FromSeconds(2),
        AuthOpts = Auth(options),
        TlsOpts = NatsTlsOpts.Default with
        {
            Mode = options.UsesTls ? TlsMode.Require : TlsMode.Auto,
            CaFile = options.TlsCaFile,
            CertFile = options.TlsCertFile,
            KeyFile = options.TlsKeyFile,
        },
    };

    private static NatsAuthOpts Auth(ClusterOptions options)
    {
        var auth = NatsAuthOpts.Default with { Username = options.User, Password = options.Password, CredsFile = options.CredsFile };
        if (options.NKeyFile is { } file)
        {
            // NATS.Net's own NKeyFile option left the login hanging against nats-server 2.9 (no error, never joined): the
            // seed is read here, and NATS.Net signs the server's nonce with it and announces its public key.
            var seed = File.ReadAllText(file).Trim();
            using var pair = NATS.NKeys.KeyPair.FromSeed(seed);
            auth = auth with { Seed = seed, NKey = pair.GetPublicKey() };
        }
        return auth;
    }

    /// <summary>One connection attempt without retries. Throws <see cref="ClusterConnectException"/> when the servers
    /// refuse this node's TLS handshake or credentials; returns otherwise (connected, or not reachable: the node's own
    /// connection keeps trying).</summary>
    public static async Task ProbeAsync(ClusterOptions options, CancellationToken cancellationToken)
    {
        var opts = Options(options) with { RetryOnInitialConnect = false, MaxReconnectRetry = 0, Name = "omnibroker-" + options.NodeId + "-probe" };
        var nats = new NatsConnection(opts);
        await using (nats.ConfigureAwait(false))
        {
            try
            {
                await nats.ConnectAsync().AsTask().WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (NatsException ex)
            {
                if (Find(ex, static e => e is AuthenticationException) is { } tls)
                {
                    throw new ClusterConnectException(
                        $"{ClusterOptions.TlsCaFileKey}/{ClusterOptions.TlsCertFileKey}: TLS handshake with NATS ({options.Urls}) failed: {tls.Message}", ex);
                }
                if (Find(ex, static e => e.Message.Contains("Authorization Violation", StringComparison.OrdinalIgnoreCase)) is { } refused)
                {
                    throw new ClusterConnectException(
                        $"{ClusterOptions.CredsFileKey}/{ClusterOptions.NKeyFileKey}/{ClusterOptions.UserKey}: NATS ({options.Urls}) refused this node's credentials: {refused.Message}", ex);
                }
                // Not reachable (yet): the node's connection retries, as when NATS starts after the brokers.
            }
        }
    }

    private static Exception? Find(Exception ex, Func<Exception, bool> match)
    {
        for (Exception? e = ex; e is not null; e = e.InnerException)
        {
            if (match(e))
            {
                return e;
            }
        }
        return null;
    }
}
