using System.Diagnostics;
using FluentAssertions;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Auth;

/// <summary>
/// Tls:OpenSslTuning against the real host and a real peer (openssl s_client, mutual TLS 1.3 with a development PKI
/// device certificate): with it, TLS 1.3 session tickets stop after the first connection of the shared SSL_CTX;
/// without it, .NET issues a ticket on every handshake.
/// </summary>
public sealed class OpenSslServerTuningTests
{
    [Fact]
    public async Task Handshake_DefaultTuning_NoTicketAfterFirstConnection()
    {
        await using var broker = await TestBroker.StartAsync();

        var tickets = new List<int>();
        for (var i = 0; i < 3; i++)
        {
            tickets.Add(await HandshakeAsync(broker));
        }

        tickets.Skip(1).Should().OnlyContain(count => count == 0, "the context's ticket count is 0 from the first handshake on (tickets per connection: {0})", string.Join(",", tickets));
    }

    [Fact]
    public async Task Handshake_TuningOff_TicketOnEveryConnection()
    {
        await using var broker = await TestBroker.StartAsync(settings: new Dictionary<string, string?> { ["Tls:OpenSslTuning"] = "false" });

        var tickets = new List<int>();
        for (var i = 0; i < 2; i++)
        {
            tickets.Add(await HandshakeAsync(broker));
        }

        tickets.Should().OnlyContain(count => count > 0, ".NET's default issues session tickets (tickets per connection: {0})", string.Join(",", tickets));
    }

    /// <summary>One mutual-TLS 1.3 handshake by openssl s_client as sensor-001; returns the NewSessionTicket messages
    /// it received in the second after the handshake.</summary>
    private static async Task<int> HandshakeAsync(TestBroker broker)
    {
        var pki = Path.Combine(broker.DataDirectory, "pki");
        var start = new ProcessStartInfo("openssl")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
        {
            "s_client", "-connect", $"127.0.0.1:{broker.MqttPort}", "-tls1_3", "-msg",
            "-cert", Path.Combine(pki, "devices", "sensor-001.crt"), "-key", Path.Combine(pki, "devices", "sensor-001.key"),
            "-CAfile", Path.Combine(pki, "root-ca.crt"),
        })
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        // Tickets follow the handshake: give them time to arrive, then end s_client by closing its input.
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        process.StandardInput.Close();
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill();
                throw new TimeoutException("openssl s_client did not exit");
            }
        }

        var text = await output + await error;
        text.Should().Contain("Verify return code: 0 (ok)", "the handshake must complete: {0}", text);
        text.Should().Contain("<<< TLS 1.3, Handshake", "s_client must log the server's handshake messages: {0}", text);
        return text.Split('\n').Count(line => line.Contains("<<<", StringComparison.Ordinal) && line.Contains("NewSessionTicket", StringComparison.Ordinal));
    }
}
