using FluentAssertions;
using OmniBroker.Policy;
using Xunit;

namespace OmniBroker.Tests.Policy;

public class PolicyParsingTests
{
    private static PolicyError Single(string yaml)
    {
        var errors = TestPolicy.Errors(yaml);
        errors.Should().ContainSingle(string.Join("\n", errors));
        return errors[0];
    }

    [Fact]
    public void ValidPolicy_HasNoErrors()
    {
        TestPolicy.Errors("""
            version: 1
            extensions:
              deviceType: 1.3.6.1.4.1.59999.1.1
            rules:
              - id: a
                effect: allow
                actions: [connect]
            """).Should().BeEmpty();
    }

    [Fact]
    public void UnknownKeyInRule_ReportedAtItsLine()
    {
        var error = Single("""
            rules:
              - id: a
                effect: allow
                actions: [publish]
                topcs: [x]
                topics: [x]
            """);

        error.File.Should().Be("test.yaml");
        error.Line.Should().Be(5);
        error.Column.Should().Be(5);
        error.Message.Should().Contain("unknown key 'topcs'");
        error.ToString().Should().StartWith("test.yaml:5:5: error: ");
    }

    [Theory]
    [InlineData("effect: permit", 3, "effect must be 'allow' or 'deny'")]
    [InlineData("actions: [publish, delete]", 4, "unknown action 'delete'")]
    [InlineData("match: { cert.nickname: x }", 5, "unknown attribute 'cert.nickname'")]
    [InlineData("match: { cert.ext.color: red }", 5, "unknown extension alias 'color'")]
    [InlineData("match: { cert.cn: { regex: x } }", 5, "unknown condition 'regex'")]
    [InlineData("match: { cert.cn: { glob: '${cert.o}*' } }", 5, "glob patterns cannot contain variables")]
    [InlineData("match: { cert.fingerprint: abcd }", 5, "64 hex digits")]
    [InlineData("match: { cert.serial: xyz }", 5, "not hexadecimal")]
    [InlineData("match: { cert.san.ip: 10.0.0.300 }", 5, "not an IP address")]
    [InlineData("match: { cert.cn: { present: maybe } }", 5, "present must be true or false")]
    [InlineData("match: { client.id: x }", 5, "'clientId:'")]
    [InlineData("qos: 3", 5, "qos must be 0, 1 or 2")]
    [InlineData("maxQos: high", 5, "maxQos must be 0, 1 or 2")]
    [InlineData("retain: sometimes", 5, "retain must be true or false")]
    [InlineData("id: 'bad id!'", 2, "invalid rule id")]
    public void RuleErrors_ReportedWithLine(string line, int expectedLine, string message)
    {
        // The tested line replaces the one that starts with the same key (or is added as line 5).
        var lines = new List<string> { "rules:", "  - id: r1", "    effect: allow", "    actions: [publish]", "    topics: [t]" };
        var key = line[..line.IndexOf(':')];
        int index = lines.FindIndex(l => l.TrimStart(' ', '-').StartsWith(key + ":", StringComparison.Ordinal));
        if (index >= 0)
        {
            lines[index] = lines[index][..(lines[index].IndexOf(key, StringComparison.Ordinal))] + line;
        }
        else
        {
            lines.Insert(4, "    " + line);
        }

        var error = Single(string.Join("\n", lines));
        error.Message.Should().Contain(message);
        error.Line.Should().Be(expectedLine);
    }

    [Theory]
    [InlineData("a/#/b", "'#' must be the last level")]
    [InlineData("a/b#", "must occupy a whole level")]
    [InlineData("a/${cert.cn", "unterminated variable")]
    [InlineData("a/${cert.nickname}", "unknown attribute 'cert.nickname'")]
    [InlineData("$share/g/a", "without '$share/<group>/'")]
    public void TopicErrors_ReportedAtTopicLine(string topic, string message)
    {
        var error = Single($"""
            rules:
              - id: r1
                effect: allow
                actions: [publish]
                topics:
                  - ok/topic
                  - "{topic}"
            """);

        error.Line.Should().Be(7);
        error.Column.Should().Be(9);
        error.Message.Should().Contain(message);
    }

    [Fact]
    public void MissingRequiredKeys_AreEachReported()
    {
        var errors = TestPolicy.Errors("""
            rules:
              - description: nothing else
              - id: no-topics
                effect: allow
                actions: [subscribe]
              - id: topics-on-connect
                effect: allow
                actions: [connect]
                topics: [a]
              - id: qos-on-subscribe
                effect: allow
                actions: [subscribe]
                topics: [a]
                maxQos: 1
            """);

        errors.Select(e => (e.Line, e.Message)).Should().BeEquivalentTo(new[]
        {
            (2, "rule has no 'id': every rule needs a unique id, used in explanations and logs"),
            (2, "rule '' has no 'effect' (allow or deny)"),
            (2, "rule '' has no 'actions' (connect, publish, subscribe, receive, admin)"),
            (3, "rule 'no-topics' grants publish/subscribe/receive but has no 'topics'"),
            (9, "rule 'topics-on-connect': 'topics' only applies to publish, subscribe and receive"),
            (14, "rule 'qos-on-subscribe': qos conditions only apply to publish"),
        });
    }

    [Fact]
    public void YamlSyntaxError_ReportedWithLine()
    {
        var error = Single("""
            rules:
              - id: a
                effect: allow
                actions: [publish
                topics: [t]
            """);

        error.Line.Should().BeGreaterThanOrEqualTo(4);
        error.Message.Should().StartWith("invalid YAML: ");
        error.Message.Should().NotContain("Idx:");
    }

    [Fact]
    public void DuplicateKey_Reported()
    {
        var error = Single("""
            rules:
              - id: a
                effect: allow
                effect: deny
                actions: [connect]
            """);

        error.Line.Should().Be(4);
        error.Message.Should().Contain("duplicate key");
    }

    [Fact]
    public void ErrorsInSeveralFiles_AllReported_WithTheirFiles()
    {
        var errors = TestPolicy.Errors(
            ("policies/a.yaml", """
                rules:
                  - id: dup
                    effect: allow
                    actions: [connect]
                  - id: bad-effect
                    effect: maybe
                    actions: [connect]
                """),
            ("policies/b.yaml", """
                rules:
                  - id: dup
                    effect: deny
                    actions: [connect]
                """),
            ("policies/c.yaml", """
                rules: [
                """),
            ("policies/d.yaml", """
                extensions:
                  deviceType: 1.3.6.1.4.1.59999.1.2
                """),
            ("policies/e.yaml", """
                extensions:
                  deviceType: 1.3.6.1.4.1.59999.1.1
                bogus: 1
                """));

        errors.Select(e => e.ToString()).Should().HaveCount(5).And.Satisfy(
            e => e.StartsWith("policies/a.yaml:6:") && e.Contains("effect must be"),
            e => e.StartsWith("policies/b.yaml:2:") && e.Contains("duplicate rule id 'dup' (first defined at policies/a.yaml:2)"),
            e => e.StartsWith("policies/c.yaml:") && e.Contains("invalid YAML"),
            e => e.StartsWith("policies/e.yaml:2:") && e.Contains("extension alias 'deviceType' is 1.3.6.1.4.1.59999.1.1 here but 1.3.6.1.4.1.59999.1.2 at policies/d.yaml:2"),
            e => e.StartsWith("policies/e.yaml:3:") && e.Contains("unknown top-level key 'bogus'"));
    }

    [Fact]
    public void EmptyFile_AndEmptyRules_AreValid()
    {
        TestPolicy.Errors(("a.yaml", ""), ("b.yaml", "rules:\n"), ("c.yaml", "# only a comment\n")).Should().BeEmpty();
    }

    [Fact]
    public void NotAMapping_IsAnError()
    {
        Single("- id: a\n").Message.Should().Contain("must be a mapping");
        Single("rules: nope\n").Message.Should().Contain("'rules' must be a list");
    }

    [Fact]
    public void UnsupportedVersion_IsAnError()
    {
        Single("version: 2\nrules: []\n").Message.Should().Contain("only 'version: 1'");
    }

    [Fact]
    public void Directory_MissingOrEmpty_IsAnError()
    {
        using var dir = new TempDirectory();
        var empty = OmniBroker.Policy.PolicyLoader.LoadDirectory(dir.Path);
        empty.Success.Should().BeFalse();
        empty.Errors.Single().Message.Should().Contain("no policy files");

        var missing = OmniBroker.Policy.PolicyLoader.LoadDirectory(Path.Combine(dir.Path, "nope"));
        missing.Errors.Single().Message.Should().Contain("does not exist");
    }

    [Fact]
    public void Directory_LoadsYamlFilesRecursively_SkippingHiddenOnes()
    {
        using var dir = new TempDirectory();
        dir.Write("b.yaml", "rules:\n  - id: b\n    effect: allow\n    actions: [connect]\n");
        dir.Write("teams/a.yml", "rules:\n  - id: a\n    effect: allow\n    actions: [admin]\n");
        dir.Write(".hidden.yaml", "this is not: [valid");
        dir.Write("..data/x.yaml", "this is not: [valid");
        dir.Write("notes.txt", "ignored");
        Directory.CreateSymbolicLink(Path.Combine(dir.Path, "teams", "loop"), dir.Path); // must not recurse forever

        var result = OmniBroker.Policy.PolicyLoader.LoadDirectory(dir.Path);

        result.Errors.Should().BeEmpty();
        result.Policy!.Rules.Select(r => r.Id).Should().Equal("b", "a"); // "b.yaml" < "teams/a.yml"
        result.FileCount.Should().Be(2);
    }
}
