using OmniBroker.Fuzz;
using SharpFuzz;

// Broker.Fuzz TARGET               run under afl-fuzz (scripts/fuzz.sh): SharpFuzz's in-process fork server
// Broker.Fuzz TARGET FILE|DIR...   replay inputs (a crash from afl-fuzz, a corpus) and report the outcome
// Broker.Fuzz smoke TARGET [N]     every seed plus N deterministic mutations, each bounded in time
if (args.Length == 0 || (args[0] == "smoke" ? args.Length < 2 || !FuzzTargets.Exists(args[1]) : !FuzzTargets.Exists(args[0])))
{
    Console.Error.WriteLine($"usage: Broker.Fuzz TARGET [FILE|DIR...] | smoke TARGET [MUTATIONS]; targets: {string.Join(", ", FuzzTargets.Names)}");
    return 2;
}

if (args[0] == "smoke")
{
    int mutations = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 2000;
    FuzzSmokeResult result = FuzzSmoke.Run(args[1], FuzzSmoke.CorpusDirectory(args[1]), mutations, seed: 1);
    Console.WriteLine(result);
    return result.Failure is null ? 0 : 1;
}

string target = args[0];
if (args.Length == 1)
{
    Fuzzer.Run(stream =>
    {
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        FuzzTargets.Run(target, buffer.ToArray());
    });
    return 0;
}

foreach (string file in args.Skip(1).SelectMany(a => Directory.Exists(a) ? Directory.GetFiles(a) : [a]).Order(StringComparer.Ordinal))
{
    FuzzTargets.Run(target, File.ReadAllBytes(file));
    Console.WriteLine($"ok {file}");
}
return 0;
