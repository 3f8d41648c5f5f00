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

    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);
}
