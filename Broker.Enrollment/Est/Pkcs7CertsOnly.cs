using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Enrollment.Est;

/// <summary>
/// A "certs-only" CMS SignedData (RFC 5652 §5, RFC 7030 §4.1.3 / §4.2.3): no signers, no content, only the
/// certificates. What EST returns from cacerts and (simple)enroll, base64-encoded (RFC 8951).
/// </summary>
public static class Pkcs7CertsOnly
{
    private const string SignedDataOid = "1.2.840.113549.1.7.2";
    private const string DataOid = "1.2.840.113549.1.7.1";

    public static byte[] Encode(IEnumerable<X509Certificate2> certificates)
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            writer.WriteObjectIdentifier(SignedDataOid);
            using (writer.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
            using (writer.PushSequence())
            {
                writer.WriteInteger(1);
                using (writer.PushSetOf())
                {
                    // digestAlgorithms: none, nothing is signed
                }
                using (writer.PushSequence())
                {
                    writer.WriteObjectIdentifier(DataOid);
                }
                using (writer.PushSetOf(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
                {
                    foreach (var certificate in certificates)
                    {
                        writer.WriteEncodedValue(certificate.RawData);
                    }
                }
                using (writer.PushSetOf())
                {
                    // signerInfos: none
                }
            }
        }
        return writer.Encode();
    }

    /// <summary>Base64 with line breaks every 76 characters, as EST clients expect a MIME body.</summary>
    public static string Base64(byte[] der) => Convert.ToBase64String(der, Base64FormattingOptions.InsertLineBreaks).Replace("\r\n", "\n", StringComparison.Ordinal) + "\n";
}
