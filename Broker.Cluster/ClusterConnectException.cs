namespace OmniBroker.Cluster;

/// <summary>The NATS servers refused this node's TLS handshake or credentials at start-up: a configuration problem that
/// retrying cannot fix, so start-up stops with one line naming the keys to look at.</summary>
public sealed class ClusterConnectException(string message, Exception? inner = null) : Exception(message, inner);
