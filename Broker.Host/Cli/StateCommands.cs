using System.CommandLine;
using System.Globalization;
using OmniBroker.Storage;

namespace OmniBroker.Host.Cli;

/// <summary>
/// <c>omnibroker state inspect</c> (counts and sizes; safe while the broker runs) and <c>omnibroker state compact</c>
/// (checkpoint and VACUUM; refused while a broker holds the file). The database is &lt;data-dir&gt;/state.db unless
/// --path is given. Exit codes: 0 ok, 1 the file is missing, damaged or in use.
/// </summary>
internal static class StateCommands
{
    public static Command Create()
    {
        var state = new Command("state", "Inspect or compact the durable state database (sessions, queued and retained messages).");
        state.Subcommands.Add(Create("inspect", "Print how many sessions, subscriptions, queued/inflight and retained messages the state holds, and its size.", Inspect));
        state.Subcommands.Add(Create("compact", "Compact the state database offline (stop the broker first): checkpoint the WAL and VACUUM.", Compact));
        return state;
    }

    private static Command Create(string name, string description, Func<string, TextWriter, int> action)
    {
        var dataDir = new Option<string>("--data-dir") { Description = "Data directory (default ./data); the database is <dir>/state.db" };
        var path = new Option<string>("--path") { Description = "The database file (Storage:Path), instead of <data-dir>/state.db" };
        var command = new Command(name, description) { dataDir, path };
        command.SetAction(parseResult =>
        {
            var file = parseResult.GetValue(path) is { Length: > 0 } explicitPath
                ? Path.GetFullPath(explicitPath)
                : Path.Combine(Path.GetFullPath(parseResult.GetValue(dataDir) ?? "data"), StorageOptions.FileName);
            try
            {
                return action(file, CliCommands.Out(parseResult));
            }
            catch (StateStoreException ex)
            {
                CliCommands.Error(parseResult).WriteLine($"omnibroker: {ex.Message}");
                return CliCommands.ExitFailure;
            }
        });
        return command;
    }

    private static int Inspect(string path, TextWriter output)
    {
        var s = StateDatabase.Inspect(path);
        var total = s.DatabaseBytes + s.WalBytes;
        var messages = s.Queued + s.Inflight;
        output.WriteLine(FormattableString.Invariant($"state database {s.Path} (schema {s.SchemaVersion})"));
        output.WriteLine(FormattableString.Invariant($"  sessions       {s.Sessions}"));
        output.WriteLine(FormattableString.Invariant($"  subscriptions  {s.Subscriptions}"));
        output.WriteLine(FormattableString.Invariant($"  queued         {s.Queued}"));
        output.WriteLine(FormattableString.Invariant($"  inflight       {s.Inflight}"));
        output.WriteLine(FormattableString.Invariant($"  inbound qos2   {s.InboundQos2}"));
        output.WriteLine(FormattableString.Invariant($"  retained       {s.Retained}"));
        output.WriteLine(FormattableString.Invariant($"  wills          {s.Wills}"));
        output.WriteLine(FormattableString.Invariant($"  size           {total} bytes (database {s.DatabaseBytes}, WAL {s.WalBytes})"));
        if (messages > 0)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  per message    {(double)s.DatabaseBytes / messages:F0} bytes of database for {(double)s.QueuedPayloadBytes / messages:F0} bytes of payload"));
        }
        return CliCommands.ExitOk;
    }

    private static int Compact(string path, TextWriter output)
    {
        var (before, after) = StateDatabase.Compact(path);
        output.WriteLine(FormattableString.Invariant($"compacted {path}: {before} -> {after} bytes"));
        return CliCommands.ExitOk;
    }
}
