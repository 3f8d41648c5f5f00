using OmniBroker.Auth.Revocation;

namespace OmniBroker.Fuzz.Targets;

/// <summary>
/// CRL parsing and verification, as a distribution point's or a CRL file's bytes are taken in: <c>ParsedCrl.Parse</c>
/// (DER or PEM) then <c>IsSignedBy</c> against the fixed CA and a lookup of the device's serial
/// (Broker.Auth/Revocation/ParsedCrl.cs). Kept thin on purpose: when the parser changes (issue 12, BouncyCastle) only
/// these calls change. Expected: <see cref="RevocationFormatException"/>.
/// </summary>
internal static class CrlTarget
{
    public static void Run(byte[] data)
    {
        ParsedCrl crl;
        try
        {
            crl = ParsedCrl.Parse(data);
        }
        catch (RevocationFormatException)
        {
            // The documented refusal of bytes that are not a CRL.
            return;
        }

        _ = crl.IsSignedBy(FuzzPki.Issuer, out _);
        _ = crl.TryGetRevoked(FuzzPki.LeafSerialHex, out _);
        _ = crl.Issuer.Name;
    }
}
