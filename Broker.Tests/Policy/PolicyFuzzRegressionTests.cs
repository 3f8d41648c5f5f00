using FluentAssertions;
using OmniBroker.Fuzz;
using OmniBroker.Policy;
using Xunit;

namespace OmniBroker.Tests.Policy;

/// <summary>Inputs the policy fuzz target found (docs/fuzzing.md), kept as seeds in Broker.Fuzz/corpus/policy.</summary>
public class PolicyFuzzRegressionTests
{
    [Fact]
    public void Compile_NulCharacterInAComment_ReportsAnErrorWithItsPosition()
    {
        // Found by the smoke run: YamlDotNet's loader threw ArgumentException ("The current event is of an unsupported
        // type") out of the compiler for a NUL byte in a comment, so a binary file in policies/ crashed a load.
        byte[] crash = File.ReadAllBytes(Path.Combine(FuzzSmoke.CorpusDirectory("policy"), "crash-nul-in-comment.yaml"));

        var errors = TestPolicy.Errors(System.Text.Encoding.UTF8.GetString(crash));

        errors.Should().ContainSingle().Which.Should().Match<PolicyError>(e =>
            e.Line == 2 && e.Column == 14 && e.Message.Contains("U+0000"));
    }

    [Fact]
    public void Compile_EmptyKeyUnderAKey_ReportsAnErrorInsteadOfThrowing()
    {
        // Found by the smoke run: " : value" indented under "rules:" made YamlDotNet's loader throw ArgumentException.
        byte[] crash = File.ReadAllBytes(Path.Combine(FuzzSmoke.CorpusDirectory("policy"), "crash-empty-key-under-key.yaml"));

        var errors = TestPolicy.Errors(System.Text.Encoding.UTF8.GetString(crash));

        errors.Should().NotBeEmpty();
        errors.Should().OnlyContain(e => e.Line > 0 && e.Message.StartsWith("invalid YAML"));
    }

    [Theory]
    [InlineData("rules:\n : x\n")]
    [InlineData("version: 1\nrules:\n : 1.3.6.1\n\nrules: []\n")]
    public void Compile_StrayColonUnderAKey_ReportsAnErrorInsteadOfThrowing(string yaml)
    {
        TestPolicy.Errors(yaml).Should().NotBeEmpty();
    }

    [Theory]
    [InlineData("rules: []\u0001\n", 1, 10, "U+0001")]
    [InlineData("rules:\n  - id: a\u001B[0m\n", 2, 10, "U+001B")]
    [InlineData("version: 1\n\uFFFE\n", 2, 1, "U+FFFE")]
    public void Compile_CharacterYamlDoesNotAllow_ReportsItInsteadOfThrowing(string yaml, int line, int column, string character)
    {
        var errors = TestPolicy.Errors(yaml);

        errors.Should().ContainSingle().Which.Should().Match<PolicyError>(e =>
            e.Line == line && e.Column == column && e.Message.Contains(character));
    }

    [Fact]
    public void Compile_TabsEmojiAndNextLine_AreAccepted()
    {
        TestPolicy.Errors("# comment with a tab\t, an emoji \U0001F600 and NEL \u0085\nrules: []\n").Should().BeEmpty();
    }

    [Fact]
    public void LoadDirectory_BinaryPolicyFile_FailsWithAnErrorNotAnException()
    {
        string directory = Directory.CreateTempSubdirectory("omnibroker-policy-fuzz-").FullName;
        try
        {
            File.WriteAllBytes(Path.Combine(directory, "broken.yaml"), [0x72, 0x75, 0x6C, 0x65, 0x73, 0x3A, 0x00, 0xFF, 0x00, 0x0A]);

            PolicyLoadResult result = PolicyLoader.LoadDirectory(directory);

            result.Success.Should().BeFalse();
            result.Errors.Should().ContainSingle().Which.Message.Should().Contain("U+0000");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
