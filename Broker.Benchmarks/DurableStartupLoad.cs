using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using OmniBroker.Mqtt.Abstractions;
using OmniBroker.Mqtt.Engine;
using OmniBroker.Storage;

namespace OmniBroker.Benchmarks;

/// <summary>
/// Start-up with a large state: writes N persistent sessions (one subscription each) and M queued QoS 1 messages of
/// 64 bytes through the SQLite store (the broker's own write path, group commit), then measures what a start-up does
/// with it: open and check the file, read everything, rebuild sessions, queues and the subscription index
/// (<see cref="MqttBroker.RestoreAsync"/>). Sessions are re-authorized against an allow-all policy and without
/// certificates here (no chain validation or revocation lookup per session), so the figure is the storage and engine
/// part of a start-up. Also reports the database size per queued message.
///   dotnet run -c Release --project Broker.Benchmarks -- durable-startup [sessions] [messages] [kept-state-file]
/// </summary>
internal static class DurableStartupLoad
{
    public static async Task RunAsync(string[] args)
    {
        var sessions = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 100_000;
        var messages = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 1_000_000;
        // Optional 4th argument: a state file kept between runs (written when missing, reused as it is otherwise), so that
        // two builds can restore the very same file one after the other.
        var kept = args.Length > 3 ? Path.GetFullPath(args[3]) : null;
        var directory = kept is null
            ? Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "omnibroker-startup-" + Guid.NewGuid().ToString("N")[..8])).FullName
            : Path.GetDirectoryName(kept)!;
        var path = kept ?? Path.Combine(directory, StorageOptions.FileName);
        var reuse = kept is not null && File.Exists(kept);
        try
        {
            var clock = Stopwatch.StartNew();
            if (!reuse)
            {
            await using var store = SqliteSessionStore.Open(new StorageOptions(), path, NullLogger.Instance);
            {
                await store.LoadAsync(CancellationToken.None);
                var payload = new byte[64];
                long last = 0;
                var perSession = messages / sessions;
                for (var s = 0; s < sessions; s++)
                {
                    var clientId = "backend-telemetry-" + s.ToString("D6", CultureInfo.InvariantCulture);
                    store.Append(new SessionSaved(new StoredSession(clientId, 7 * 24 * 3600, DateTimeOffset.UtcNow.AddDays(7), 4, null, null, 0)));
                    store.Append(new SubscriptionSaved(clientId, new StoredSubscription("devices/+/telemetry", 1, false, false, 0, 0)));
                    var count = perSession + (s < messages % sessions ? 1 : 0);
                    for (var m = 1; m <= count; m++)
                    {
                        last = store.Append(new MessageQueued(clientId, m,
                            new StoredMessage("devices/sensor-001/telemetry", payload, 1, false, "sensor-001", null), 1, false, null));
                    }
                    if (s % 1000 == 999)
                    {
                        // Bounded memory while writing: wait for the writer now and then.
                        await store.WaitCommittedAsync(last);
                    }
                }
                await store.WaitCommittedAsync(last);
            }
            }
            var written = clock.Elapsed;
            var size = new FileInfo(path).Length + (File.Exists(path + "-wal") ? new FileInfo(path + "-wal").Length : 0);

            var before = GC.GetTotalMemory(forceFullCollection: true);
            var process = Process.GetCurrentProcess();
            var cpuBefore = process.TotalProcessorTime;
            var gcBefore = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalPauseDuration());
            clock.Restart();
            await using var reopened = SqliteSessionStore.Open(new StorageOptions(), path, NullLogger.Instance);
            await using var broker = new MqttBroker(new MqttBrokerOptions { MaxQueuedMessagesPerSession = Math.Max(1000, 2 * messages / sessions) },
                AllowAllAuthorizer.Instance, NullLoggerFactory.Instance, TimeProvider.System, store: reopened);
            // What MqttBroker.RestoreAsync does, in its two steps, to report both.
            var state = await reopened.LoadAsync(CancellationToken.None);
            var read = clock.Elapsed;
            process.Refresh();
            var cpuRead = process.TotalProcessorTime - cpuBefore;
            await broker.Sessions.RestoreAsync(state, AllowAllAuthorizer.Instance, null, CancellationToken.None);
            var restore = clock.Elapsed;
            process.Refresh();
            var cpu = process.TotalProcessorTime - cpuBefore;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"restore: read {read.TotalSeconds:F2} s (process CPU {cpuRead.TotalSeconds:F2} s), rebuild {(restore - read).TotalSeconds:F2} s (CPU {(cpu - cpuRead).TotalSeconds:F2} s); "
                + $"GCs gen0/1/2 {GC.CollectionCount(0) - gcBefore.Item1}/{GC.CollectionCount(1) - gcBefore.Item2}/{GC.CollectionCount(2) - gcBefore.Item3}, "
                + $"GC pauses {(GC.GetTotalPauseDuration() - gcBefore.Item4).TotalSeconds:F2} s; load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}"));
            var after = GC.GetTotalMemory(forceFullCollection: true);

            Console.WriteLine($"| sessions | queued messages | write (group commit) | database size | bytes per queued 64-byte message | restore (start-up) | managed memory after restore |");
            Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {broker.SessionCount:N0} | {messages:N0} | {written.TotalSeconds:F1} s | {size / 1048576.0:F0} MiB | {(double)size / messages:F0} | {restore.TotalSeconds:F2} s | {(after - before) / 1048576.0:F0} MiB |"));
        }
        finally
        {
            if (kept is null)
            {
                Directory.Delete(directory, recursive: true);
            }
        }
    }
}
