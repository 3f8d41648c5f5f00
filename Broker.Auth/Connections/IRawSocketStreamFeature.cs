using System.Net.Sockets;

namespace OmniBroker.Auth;

/// <summary>
/// Published by a transport that can hand the TLS middleware its socket as a plain stream (the broker's device socket
/// transport): <see cref="DirectTlsMiddleware"/> then runs SslStream straight over <see cref="Stream"/> instead of
/// over the connection's pipes, and the first-byte wait peeks at the socket. Only while <see cref="PipesCreated"/> is
/// false: once a middleware read through the connection's pipes (PROXY protocol), bytes may sit in them.
/// </summary>
public interface IRawSocketStreamFeature
{
    /// <summary>The connection's socket.</summary>
    Socket Socket { get; }

    /// <summary>A stream over <see cref="Socket"/> (not owning it: the connection closes the socket). A zero-byte read
    /// returns only once bytes, the end of the stream or an error arrived, so a reader holds no buffer while waiting.</summary>
    Stream Stream { get; }

    /// <summary>True once anything asked for the connection's <c>Transport</c> pipes.</summary>
    bool PipesCreated { get; }
}
