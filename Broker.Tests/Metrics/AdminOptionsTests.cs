using FluentAssertions;
using OmniBroker.Host.Admin;
using Xunit;

namespace OmniBroker.Tests.Metrics;

public sealed class AdminOptionsTests
{
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
