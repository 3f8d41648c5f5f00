using System.Security.Cryptography;
using System.Text;

namespace OmniBroker.Cluster;

/// <summary>Names of the NATS subjects, streams and buckets the nodes share. MQTT topics hold characters NATS keys
/// may not: keys are a hash of the topic or filter (the value holds the text).</summary>
internal static class ClusterNames
{
    public const string InterestBucket = "omni_interest";
    public const string RetainedBucket = "omni_retained";
    public const string NodesBucket = "omni_nodes";
    public const string WillsBucket = "omni_wills";
    public const string ClientsBucket = "omni_clients";
    public const string InboxConsumer = "deliver";

    public static string InboxStream(string nodeId) => "OMNI_INBOX_" + nodeId;

    public static string InboxSubject(string nodeId) => "omni.inbox." + nodeId;

    /// <summary>43 characters of URL-safe base64 of the SHA-256 of <paramref name="text"/>: a valid key token.</summary>
    public static string Hash(string text) =>
        Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(text))).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
