using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Fuzz.Targets;

/// <summary>
/// The fixed PKI the OCSP and CRL seeds were made with (Broker.Fuzz/corpus/make-revocation-seeds.sh): a CA, a device
/// certificate it issued, and the instant the revocation targets take as "now", so a seed's answer is current and
/// every run is reproducible.
/// </summary>
internal static class FuzzPki
{
    /// <summary>Inside the validity of every seed made by make-revocation-seeds.sh (they are valid for 100 years).</summary>
    public static readonly DateTimeOffset Now = new(2027, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>The nonce the seed OCSP requests carried (16 bytes 0x00..0x0F), as the nonce extension value.</summary>
    public static readonly byte[] NonceExtensionValue = Auth.Revocation.OcspRequest.EncodeNonce([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);

    public static X509Certificate2 Issuer { get; } = Load("ca.pem");

    public static X509Certificate2 Leaf { get; } = Load("leaf.pem");

    public static string LeafSerialHex { get; } = Leaf.SerialNumber;

    private static X509Certificate2 Load(string name) =>
        X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "pki", name)));
}
