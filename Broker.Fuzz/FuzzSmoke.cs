using System.Diagnostics;

namespace OmniBroker.Fuzz;

/// <summary>Outcome of a smoke run: <see cref="Failure"/> is null when every input passed.</summary>
public sealed record FuzzSmokeResult(string Target, int Seeds, int Executions, TimeSpan Elapsed, TimeSpan Slowest, string? Failure)
{
    public override string ToString() =>
        $"{Target}: {Seeds} seeds + {Executions - Seeds} mutations in {Elapsed.TotalSeconds:0.0} s, slowest {Slowest.TotalMilliseconds:0} ms: "
        + (Failure ?? "no unexpected exception, no hang");
}

/// <summary>
/// A bounded, deterministic stand-in for AFL++ for the test suite: every seed of a target's corpus, then mutations of
/// them (bit flips, interesting values, insertions, deletions, duplications, splices, truncations) from a seeded
/// random generator, each input bounded in time. A failing input is saved to the temporary directory to replay with
/// <c>Broker.Fuzz TARGET FILE</c>.
/// </summary>
public static class FuzzSmoke
{
    private static readonly byte[] s_interesting = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x10, 0x20, 0x30, 0x82, 0xC0];

    /// <summary>Broker.Fuzz/corpus/TARGET of the checkout this build came from.</summary>
    public static string CorpusDirectory(string target)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string corpus = Path.Combine(dir.FullName, "Broker.Fuzz", "corpus");
            if (Directory.Exists(corpus))
            {
                return Path.Combine(corpus, target);
            }
        }
        throw new DirectoryNotFoundException($"no Broker.Fuzz/corpus above {AppContext.BaseDirectory}");
    }

    public static FuzzSmokeResult Run(string target, string corpusDirectory, int mutations, int seed, TimeSpan? perInputLimit = null)
    {
        TimeSpan limit = perInputLimit ?? TimeSpan.FromSeconds(10);
        byte[][] seeds = [.. Directory.GetFiles(corpusDirectory).Order(StringComparer.Ordinal).Select(File.ReadAllBytes)];
        if (seeds.Length == 0)
        {
            return new FuzzSmokeResult(target, 0, 0, TimeSpan.Zero, TimeSpan.Zero, $"no seed in {corpusDirectory}");
        }

        var random = new Random(seed);
        var total = Stopwatch.StartNew();
        TimeSpan slowest = TimeSpan.Zero;
        for (int i = 0; i < seeds.Length + mutations; i++)
        {
            byte[] input = i < seeds.Length ? seeds[i] : Mutate(seeds[random.Next(seeds.Length)], seeds, random);
            var one = Stopwatch.StartNew();
            string? failure = RunOne(target, input, limit);
            slowest = one.Elapsed > slowest ? one.Elapsed : slowest;
            if (failure is not null)
            {
                string saved = Path.Combine(Path.GetTempPath(), $"omnibroker-fuzz-{target}-{seed}-{i}.bin");
                File.WriteAllBytes(saved, input);
                return new FuzzSmokeResult(target, seeds.Length, i + 1, total.Elapsed, slowest,
                    $"input #{i} ({input.Length} bytes, saved to {saved}, hex {Convert.ToHexString(input.AsSpan(0, Math.Min(input.Length, 64)))}): {failure}");
            }
        }
        return new FuzzSmokeResult(target, seeds.Length, seeds.Length + mutations, total.Elapsed, slowest, null);
    }

    private static string? RunOne(string target, byte[] input, TimeSpan limit)
    {
        var task = Task.Run(() => FuzzTargets.Run(target, input));
        try
        {
            if (!task.Wait(limit))
            {
                return $"hang: no result within {limit.TotalSeconds:0} s";
            }
        }
        catch (AggregateException ex)
        {
            return $"unexpected {ex.InnerException}";
        }
        return null;
    }

    /// <summary>One to four stacked mutations of <paramref name="original"/>.</summary>
    public static byte[] Mutate(byte[] original, byte[][] seeds, Random random)
    {
        var data = new List<byte>(original);
        int count = 1 + random.Next(4);
        for (int m = 0; m < count; m++)
        {
            int position = data.Count == 0 ? 0 : random.Next(data.Count);
            switch (random.Next(8))
            {
                case 0 when data.Count > 0:
                    data[position] ^= (byte)(1 << random.Next(8));
                    break;
                case 1 when data.Count > 0:
                    data[position] = s_interesting[random.Next(s_interesting.Length)];
                    break;
                case 2 when data.Count > 1:
                    // A 16-bit length field set to an extreme.
                    ushort value = random.Next(3) switch { 0 => 0, 1 => 0xFFFF, _ => (ushort)random.Next(0x10000) };
                    data[position] = (byte)(value >> 8);
                    data[(position + 1) % data.Count] = (byte)value;
                    break;
                case 3:
                    data.InsertRange(position, Enumerable.Range(0, 1 + random.Next(8)).Select(_ => (byte)random.Next(256)));
                    break;
                case 4 when data.Count > 0:
                    data.RemoveRange(position, Math.Min(data.Count - position, 1 + random.Next(16)));
                    break;
                case 5 when data.Count > 0:
                    int length = Math.Min(data.Count - position, 1 + random.Next(32));
                    data.InsertRange(random.Next(data.Count + 1), data.GetRange(position, length));
                    break;
                case 6:
                    byte[] other = seeds[random.Next(seeds.Length)];
                    int from = other.Length == 0 ? 0 : random.Next(other.Length);
                    data.RemoveRange(position, data.Count - position);
                    data.AddRange(other.AsSpan(from).ToArray());
                    break;
                default:
                    if (data.Count > 0)
                    {
                        data.RemoveRange(position, data.Count - position);
                    }
                    break;
            }
        }
        return [.. data];
    }
}
