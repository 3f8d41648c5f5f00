using FluentAssertions;
using OmniBroker.Host.Admin;
using OmniBroker.Host.Metrics;
using OpenTelemetry.Metrics;
using Xunit;

namespace OmniBroker.Tests.Metrics;

public sealed class PrometheusNamingTests
{
    [Theory]
    [InlineData("omnibroker.tls.handshakes", "{handshake}", MetricType.LongSum, "omnibroker_tls_handshakes_total")]
    [InlineData("omnibroker.tls.handshake.duration", "s", MetricType.Histogram, "omnibroker_tls_handshake_duration_seconds")]
    [InlineData("omnibroker.messages.received.bytes", "By", MetricType.LongSum, "omnibroker_messages_received_bytes_total")]
    [InlineData("omnibroker.crl.age", "s", MetricType.DoubleGauge, "omnibroker_crl_age_seconds")]
    [InlineData("omnibroker.connections.active", "{connection}", MetricType.LongSumNonMonotonic, "omnibroker_connections_active")]
    [InlineData("cpu.utilization", "1", MetricType.DoubleGauge, "cpu_utilization_ratio")]
    [InlineData("things.done", "1", MetricType.LongSum, "things_done_total")]
    [InlineData("io.rate", "By/s", MetricType.DoubleGauge, "io_rate_bytes_per_second")]
    [InlineData("already_total", "", MetricType.LongSum, "already_total")]
    [InlineData("1st.metric", "", MetricType.LongGauge, "_1st_metric")]
    [InlineData("a..b--c", "ms", MetricType.Histogram, "a_b_c_milliseconds")]
    public void MetricName_FollowsPrometheusConventions(string instrument, string unit, MetricType type, string expected)
    {
        PrometheusNaming.MetricName(instrument, unit, type).Should().Be(expected);
    }

    [Theory]
    [InlineData("http://127.0.0.1:9090", true)]
    [InlineData("http://localhost:9090", true)]
    [InlineData("http://[::1]:9090", true)]
    [InlineData("http://127.0.0.1:9090;http://[::1]:9091", true)]
    [InlineData(null, true)]
    [InlineData("http://0.0.0.0:9090", false)]
    [InlineData("http://*:9090", false)]
    [InlineData("http://+:9090", false)]
    [InlineData("https://[::]:9443", false)]
    [InlineData("http://10.1.2.3:9090", false)]
    [InlineData("http://127.0.0.1:9090;http://192.168.1.5:9090", false)]
    [InlineData("http://broker.example:9090", false)]
    public void IsLoopbackBinding_OnlyForLoopbackHosts(string? urls, bool expected)
    {
        AdminOptions.IsLoopbackBinding(urls).Should().Be(expected);
    }
}
