using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Auth;

/// <summary>Server side of the MQTT TLS listener (see <see cref="ClientCertificateListenOptionsExtensions"/>).</summary>
public sealed class MutualTlsOptions
{
    /// <summary>Server certificate with its private key.</summary>
    public required X509Certificate2 ServerCertificate { get; init; }

    /// <summary>Intermediates sent along with <see cref="ServerCertificate"/> so clients can build its chain.</summary>
    public X509Certificate2Collection ServerCertificateChain { get; init; } = [];

    public SslProtocols EnabledProtocols { get; init; } = SslProtocols.Tls12 | SslProtocols.Tls13;

    /// <summary>Issue TLS 1.3 session tickets / allow 1.2 resumption. Off by default: a resumed session skips the
    /// client certificate check, and tickets cost work on every handshake.</summary>
    public bool AllowTlsResume { get; init; }

    /// <summary>Per-connection OpenSSL settings SslStream does not expose (<see cref="OpenSslServerTuning"/>): idle
    /// connections release their TLS record buffers, every connection shares one SSL_CTX, and (unless
    /// <see cref="AllowTlsResume"/>) no session ticket is issued. Default true; false keeps .NET's defaults.</summary>
    public bool OpenSslTuning { get; init; } = true;

    /// <summary>Who runs TLS on the MQTT over TLS listener: <see cref="TlsEngine.Direct"/> (default, the broker drives
    /// SslStream itself, <see cref="DirectTlsMiddleware"/>) or <see cref="TlsEngine.Kestrel"/> (Kestrel's HTTPS
    /// middleware). Listeners that serve HTTP (WebSockets) always use Kestrel's.</summary>
    public TlsEngine Engine { get; init; } = TlsEngine.Direct;

    /// <summary>Time allowed for the TLS handshake, from its first byte; also the longest wait for that first byte.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>TLS handshakes in progress at once, across the listeners sharing these options; more wait in a queue
    /// (their handshake timeout starts when they leave it), so a reconnect storm is served in turn instead of every
    /// handshake timing out on a saturated CPU. Default 64.</summary>
    public int MaxConcurrentHandshakes { get; init; } = 64;

    /// <summary>Longest wait for a handshake slot; a connection still queued after it is closed (reason timeout).
    /// Default 30 s.</summary>
    public TimeSpan HandshakeQueueTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>Which TLS implementation a mutual-TLS listener uses (see <see cref="MutualTlsOptions.Engine"/>).</summary>
public enum TlsEngine
{
    /// <summary>The broker's own middleware over SslStream: one middleware for wait, handshake and authentication,
    /// one pipe pair over SslStream.</summary>
    Direct,

    /// <summary>Kestrel's HTTPS connection middleware (the path before the direct engine; needed for HTTP).</summary>
    Kestrel,
}
