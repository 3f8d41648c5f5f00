using FluentAssertions;
using OmniBroker.Fuzz;
using Xunit;
using Xunit.Abstractions;

namespace OmniBroker.Tests.Fuzz;

/// <summary>
/// The bounded fuzz smoke run of the test suite: for every target, every seed of its corpus plus deterministic
/// mutations, each input bounded in time, no exception but the parser's documented one. The long runs with AFL++
/// are scripts/fuzz.sh (docs/fuzzing.md).
/// </summary>
public class FuzzSmokeTests(ITestOutputHelper output)
{
    // 1-4 s per target on a loaded machine: the whole class stays under ~30 s.
    private const int Mutations = 2000;

    public static TheoryData<string> Targets() => [.. FuzzTargets.Names];

    [Theory]
    [MemberData(nameof(Targets))]
    public void FuzzTarget_SeedsAndMutations_NoUnexpectedExceptionOrHang(string target)
    {
        FuzzSmokeResult result = FuzzSmoke.Run(target, FuzzSmoke.CorpusDirectory(target), Mutations, seed: 20261202,
            perInputLimit: TimeSpan.FromSeconds(10));
        output.WriteLine(result.ToString());

        result.Failure.Should().BeNull();
        result.Executions.Should().Be(result.Seeds + Mutations);
    }
}
