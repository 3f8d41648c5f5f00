using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using FluentAssertions;
using OmniBroker.Auth.Revocation;
using Xunit;

namespace OmniBroker.Tests.Revocation;

/// <summary>The entry points that decode untrusted CRL/OCSP bytes fail only with <see cref="RevocationFormatException"/>,
/// whatever the bytes (truncations and bit flips of real messages).</summary>
public sealed class RevocationParserRobustnessTests
{
    [Fact]
    public void ParseEntryPoints_MutatedMessages_OnlyRevocationFormatException()
    {
        using RevocationTestPki pki = RevocationTestPki.Create("Robust");
        X509Certificate2 leaf = pki.IssueLeaf("leaf");
        X509Certificate2 other = pki.IssueLeaf("other");
        byte[] crl = pki.BuildCrl(root: false, [leaf, other], 3);
        OcspCertId id = OcspCertId.Create(leaf, pki.Intermediate, HashAlgorithmName.SHA256);
        byte[] nonce = OcspRequest.EncodeNonce([1, 2, 3, 4, 5, 6, 7, 8]);
        byte[] request = OcspRequest.Build(id, [1, 2, 3, 4, 5, 6, 7, 8]);
        byte[] response = OcspResponseBuilder.Build(pki.Intermediate, pki.IntermediateKey,
            [new OcspResponseBuilder.Single(id, OcspCertStatus.Revoked, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddMinutes(5), DateTimeOffset.UtcNow, 1)],
            DateTimeOffset.UtcNow, nonce);

        ParsedCrl.Parse(crl).RevokedCount.Should().Be(2);
        OcspRequest.Parse(request).NonceExtensionValue.Should().Equal(nonce);
        OcspResponseParser.Validate(response, leaf, pki.Intermediate, nonce, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(5))
            .Status.Should().Be(OcspCertStatus.Revoked);

        Random random = new(12345);
        int rejected = 0;
        foreach (byte[] original in new[] { crl, request, response })
        {
            for (int i = 0; i < 800; i++)
            {
                byte[] mutated = Mutate(original, random);
                try
                {
                    _ = ParsedCrl.Parse(mutated);
                }
                catch (RevocationFormatException)
                {
                    rejected++;
                }

                try
                {
                    _ = OcspRequest.Parse(mutated);
                }
                catch (RevocationFormatException)
                {
                    rejected++;
                }

                try
                {
                    _ = OcspResponseParser.Validate(mutated, leaf, pki.Intermediate, nonce, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(5));
                }
                catch (RevocationFormatException)
                {
                    rejected++;
                }
            }
        }

        rejected.Should().BeGreaterThan(3 * 800, "most mutations are refused, each with a RevocationFormatException");
    }

    private static byte[] Mutate(byte[] original, Random random)
    {
        byte[] copy = original[..(random.Next(3) == 0 ? random.Next(original.Length) : original.Length)];
        int flips = random.Next(1, 4);
        for (int f = 0; f < flips && copy.Length > 0; f++)
        {
            copy[random.Next(copy.Length)] = (byte)random.Next(256);
        }

        return copy;
    }
}
