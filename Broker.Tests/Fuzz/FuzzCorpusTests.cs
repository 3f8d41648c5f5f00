using System.Security.Cryptography.X509Certificates;
using FluentAssertions;
using OmniBroker.Auth.Revocation;
using OmniBroker.Fuzz;
using Xunit;

namespace OmniBroker.Tests.Fuzz;

/// <summary>The seed corpus is complete, current and deep: the generated seeds match their generators, the shipped
/// policies are seeds, and the openssl-made OCSP and CRL seeds pass validation against the fuzz PKI, so mutations
/// start from inputs that reach the end of the parsers.</summary>
public class FuzzCorpusTests
{
    private static readonly bool s_write = Environment.GetEnvironmentVariable("OMNIBROKER_WRITE_FUZZ_CORPUS") == "1";

    [Fact]
    public void FuzzCorpus_GeneratedSeeds_MatchTheirGenerators()
    {
        var seeds = FuzzSeeds.All().ToList();
        foreach (string policy in Directory.GetFiles(Path.Combine(RepositoryRoot(), "policies"), "*.yaml"))
        {
            seeds.Add(("policy", "shipped-" + Path.GetFileName(policy), File.ReadAllBytes(policy)));
        }

        foreach ((string target, string name, byte[] bytes) in seeds)
        {
            string path = Path.Combine(FuzzSmoke.CorpusDirectory(target), name);
            if (s_write)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                File.WriteAllBytes(path, bytes);
            }
            File.Exists(path).Should().BeTrue("{0} is a seed (regenerate: OMNIBROKER_WRITE_FUZZ_CORPUS=1)", path);
            File.ReadAllBytes(path).Should().Equal(bytes, "{0} is what its generator makes", path);
        }
    }

    [Fact]
    public void FuzzCorpus_EveryTarget_HasSeeds()
    {
        foreach (string target in FuzzTargets.Names)
        {
            Directory.GetFiles(FuzzSmoke.CorpusDirectory(target)).Should().HaveCountGreaterThanOrEqualTo(5, "target {0}", target);
        }
    }

    [Theory]
    [InlineData("good.der", "Good", false)]
    [InlineData("good-sha256.der", "Good", false)]
    [InlineData("good-bykey.der", "Good", false)]
    [InlineData("good-delegated-certs.der", "Good", false)]
    [InlineData("good-nonce.der", "Good", true)]
    [InlineData("revoked.der", "Revoked", false)]
    [InlineData("revoked-nonce.der", "Revoked", true)]
    [InlineData("unknown.der", "Unknown", false)]
    public void FuzzCorpus_OcspSeed_ValidatesAgainstTheFuzzPki(string seed, string expected, bool nonce)
    {
        (X509Certificate2 ca, X509Certificate2 leaf) = Pki();
        byte[]? nonceValue = nonce ? OcspRequest.EncodeNonce([.. Enumerable.Range(0, 16).Select(i => (byte)i)]) : null;
        byte[] der = File.ReadAllBytes(Path.Combine(FuzzSmoke.CorpusDirectory("ocsp"), seed));

        OcspAnswer answer = OcspResponseParser.Validate(der, leaf, ca, nonceValue, new DateTimeOffset(2027, 1, 1, 0, 0, 0, TimeSpan.Zero),
            TimeSpan.FromMinutes(5), TimeSpan.FromHours(1));

        answer.Status.ToString().Should().Be(expected);
    }

    [Theory]
    [InlineData("revoked.der", true)]
    [InlineData("revoked.pem", true)]
    [InlineData("two-revoked.der", true)]
    [InlineData("empty.der", false)]
    public void FuzzCorpus_CrlSeed_IsSignedByTheFuzzCa(string seed, bool revokesLeaf)
    {
        (X509Certificate2 ca, X509Certificate2 leaf) = Pki();
        ParsedCrl crl = ParsedCrl.Parse(File.ReadAllBytes(Path.Combine(FuzzSmoke.CorpusDirectory("crl"), seed)));

        crl.IsSignedBy(ca, out string? error).Should().BeTrue(error);
        crl.TryGetRevoked(leaf.SerialNumber, out _).Should().Be(revokesLeaf);
    }

    [Fact]
    public void FuzzCorpus_CrlPartitionedByReason_IsRefused()
    {
        byte[] der = File.ReadAllBytes(Path.Combine(FuzzSmoke.CorpusDirectory("crl"), "idp-only-some-reasons.der"));

        FluentActions.Invoking(() => ParsedCrl.Parse(der)).Should().Throw<RevocationFormatException>().WithMessage("*onlySomeReasons*");
    }

    private static (X509Certificate2 Ca, X509Certificate2 Leaf) Pki()
    {
        string pki = Path.Combine(RepositoryRoot(), "Broker.Fuzz", "pki");
        return (X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(pki, "ca.pem"))),
            X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(pki, "leaf.pem"))));
    }

    private static string RepositoryRoot() =>
        Path.GetFullPath(Path.Combine(FuzzSmoke.CorpusDirectory("policy"), "..", "..", ".."));
}
