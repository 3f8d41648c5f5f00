using OmniBroker.Auth.Revocation;

namespace OmniBroker.Fuzz.Targets;

/// <summary>
/// OCSP response parsing and verification: the entry point the OCSP client hands a responder's body to
/// (<c>OcspResponseParser.Validate</c>, Broker.Auth/Revocation/OcspMessages.cs), about the fixed device certificate and
/// its CA, without and with the nonce the seed requests carried. Kept thin on purpose: when the parser changes
/// (issue 12, BouncyCastle) only this call changes. Expected: <see cref="RevocationFormatException"/>.
/// </summary>
internal static class OcspTarget
{
    private static readonly TimeSpan s_clockSkew = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan s_ttlWithoutNextUpdate = TimeSpan.FromHours(1);

    public static void Run(byte[] data)
    {
        Validate(data, null);
        Validate(data, FuzzPki.NonceExtensionValue);
    }

    private static void Validate(byte[] data, byte[]? nonce)
    {
        try
        {
            OcspAnswer answer = OcspResponseParser.Validate(data, FuzzPki.Leaf, FuzzPki.Issuer, nonce, FuzzPki.Now, s_clockSkew, s_ttlWithoutNextUpdate);
            _ = answer.ToString();
        }
        catch (RevocationFormatException)
        {
            // The documented refusal of an invalid, unverifiable or foreign answer.
        }
    }
}
