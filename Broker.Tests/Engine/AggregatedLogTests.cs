using FluentAssertions;
using OmniBroker.Mqtt.Diagnostics;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Engine;

/// <summary>The one aggregated-log helper: drops (1207), denials (1106) and operator limits (1400) share its windows.</summary>
public sealed class AggregatedLogTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    [Fact]
    public void LimitHit_RepeatedWithinTheInterval_OneLineThenTheCountWithTheNext()
    {
        using var logs = new CapturingLoggerProvider();
        var time = new ManualTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var log = new AggregatedLog(logs.CreateLogger("test"), time, Interval);

        log.LimitHit("connections", "c1", 5, "first");
        log.LimitHit("connections", "c1", 5, "second");
        log.LimitHit("connections", "c1", 5, "third");
        time.Advance(Interval);
        log.LimitHit("connections", "c1", 5, "fourth");

        var lines = logs.WithEventId(1400);
        lines.Select(l => (l.Value("Detail"), l.Value("Suppressed"))).Should().Equal(("first", "0"), ("fourth", "2"));
        lines.Should().OnlyContain(l => l.EventId.Name == "LimitHit" && l.Value("LimitValue") == "5" && l.Value("ClientId") == "c1");
    }

    [Fact]
    public void Record_DropsDenialsAndLimitsOfOneClient_KeptApartAndFlushedPerInterval()
    {
        using var logs = new CapturingLoggerProvider();
        var time = new ManualTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var log = new AggregatedLog(logs.CreateLogger("test"), time, Interval);

        log.Record("c1", "queue_full", denial: false, "a/b", count: 3);
        log.Record("c1", "publish_denied", denial: true, "x/y");
        log.Record("c1", "publish_denied", denial: true, "x/" + new string('z', 200));
        log.LimitHit("publish_denied", "c1", 1, "same reason, another kind");
        log.Flush();
        logs.Entries.Should().HaveCount(3, "the first event of each (kind, client, reason) is written at once; the rest waits");

        time.Advance(Interval);
        log.Flush();

        var denied = logs.WithEventId(1106);
        denied.Select(l => l.Value("Count")).Should().Equal("1", "1");
        denied[1].Value("Topic").Should().HaveLength(AggregatedLog.MaxTopicLength + 1).And.EndWith("…");
        logs.WithEventId(1207).Should().ContainSingle().Which.Value("Count").Should().Be("3");
        logs.WithEventId(1400).Should().ContainSingle();
    }
}
