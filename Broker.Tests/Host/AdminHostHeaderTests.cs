using System.Net;
using FluentAssertions;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Host;

/// <summary>
/// Issue 9 defect 7: the loopback admin API answers only loopback Host names and those in Http:AllowedHosts, so a
/// browser page that rebinds its own name to 127.0.0.1 gets 421. The real host over a real socket.
/// </summary>
public sealed class AdminHostHeaderTests : IAsyncLifetime
{
    private TestBroker _broker = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _broker = await TestBroker.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Http:AllowedHosts:0"] = "broker.internal",
            ["Revocation:Mode"] = "none",
        });
        _http = new HttpClient { BaseAddress = _broker.HttpBaseUrl, Timeout = TimeSpan.FromSeconds(30) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _broker.DisposeAsync();
    }

    private async Task<HttpStatusCode> GetClientsAsync(string host)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/clients");
        request.Headers.Host = host.Replace("PORT", _broker.HttpBaseUrl.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        using var response = await _http.SendAsync(request);
        return response.StatusCode;
    }

    [Theory]
    [InlineData("localhost:PORT")]
    [InlineData("LOCALHOST")]
    [InlineData("127.0.0.1:PORT")]
    [InlineData("127.0.0.1")]
    [InlineData("[::1]:PORT")]
    [InlineData("broker.internal:PORT")]
    public async Task AdminApi_LoopbackOrConfiguredHost_Answers200(string host)
    {
        (await GetClientsAsync(host)).Should().Be(HttpStatusCode.OK);
    }

    [Theory]
    [InlineData("attacker.example:PORT")]
    [InlineData("attacker.example")]
    [InlineData("127.0.0.1.attacker.example:PORT")]
    [InlineData("10.0.0.1:PORT")]
    public async Task AdminApi_RebindingHost_Answers421(string host)
    {
        (await GetClientsAsync(host)).Should().Be(HttpStatusCode.MisdirectedRequest);
    }

    [Fact]
    public async Task AdminApiDelete_RebindingHost_Answers421AndLogsRefusal()
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, "/api/clients/someone");
        request.Headers.Host = "rebind.example";

        using var response = await _http.SendAsync(request);

        response.StatusCode.Should().Be(HttpStatusCode.MisdirectedRequest);
        (await _broker.Logs.WaitForAsync(l => l.EventId.Id == 5102)).Message.Should().Contain("rebind.example");
    }
}
