using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;
using FluentAssertions;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Host;

/// <summary>Real MQTT clients (Debian mosquitto-clients) with the development PKI's device certificates, against the in-process host.</summary>
public sealed class MosquittoInteropTests
{
    [Fact]
    public async Task MosquittoPubSub_DevelopmentPkiDevices_TelemetryDelivered()
    {
        await using var broker = await TestBroker.StartAsync();
        var pki = Path.Combine(broker.DataDirectory, "pki");
        string[] Tls(string device) =>
            ["-h", "localhost", "-p", broker.MqttPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
             "--cafile", Path.Combine(pki, "ca-chain.crt"),
             "--cert", Path.Combine(pki, "devices", device + ".crt"), "--key", Path.Combine(pki, "devices", device + ".key"), "-V", "mqttv5"];

        using var subscriber = Start("mosquitto_sub", [.. Tls("backend-telemetry"), "-i", "backend-telemetry-e2e", "-t", "devices/+/telemetry", "-v", "-C", "1", "-W", "10"]);
        var received = subscriber.StandardOutput.ReadToEndAsync();

        // The subscription may not be in place yet when the first message goes out: publish until the subscriber has one (bounded).
        var deadline = DateTime.UtcNow.AddSeconds(10);
        string publisherOutput = "";
        while (!subscriber.HasExited && DateTime.UtcNow < deadline)
        {
            using var publisher = Start("mosquitto_pub", [.. Tls("sensor-001"), "-i", "sensor-001", "-t", "devices/sensor-001/telemetry", "-m", "{\"temperature\":21.5}", "-q", "1"]);
            publisherOutput = await publisher.StandardError.ReadToEndAsync();
            (await WaitAsync(publisher, TimeSpan.FromSeconds(10))).Should().Be(0, $"mosquitto_pub failed: {publisherOutput}");
            await Task.WhenAny(subscriber.WaitForExitAsync(), Task.Delay(300));
        }

        (await WaitAsync(subscriber, TimeSpan.FromSeconds(12))).Should().Be(0, await subscriber.StandardError.ReadToEndAsync());
        (await received).Trim().Should().Be("devices/sensor-001/telemetry {\"temperature\":21.5}");
    }

    [Fact]
    public async Task MosquittoPub_UntrustedClientCertificate_Refused()
    {
        await using var broker = await TestBroker.StartAsync();
        using var other = TestPki.Create();
        var directory = TempDirectory.Create("omnibroker-mosquitto");
        try
        {
            var leaf = other.IssueLeaf("intruder");
            var certificate = Path.Combine(directory, "intruder.crt");
            var key = Path.Combine(directory, "intruder.key");
            File.WriteAllText(certificate, leaf.ExportCertificatePem() + "\n" + other.Intermediate.ExportCertificatePem() + "\n");
            File.WriteAllText(key, leaf.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem() + "\n");

            using var publisher = Start("mosquitto_pub", ["-h", "localhost", "-p", broker.MqttPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--cafile", Path.Combine(broker.DataDirectory, "pki", "ca-chain.crt"), "--cert", certificate, "--key", key,
                "-i", "intruder", "-t", "devices/intruder/telemetry", "-m", "x", "-q", "1", "-V", "mqttv5"]);
            var error = await publisher.StandardError.ReadToEndAsync();

            (await WaitAsync(publisher, TimeSpan.FromSeconds(10))).Should().NotBe(0);
            var entry = await broker.Logs.WaitForAsync(e => e.EventId.Id == 2001 && e.Value("Serial") == leaf.SerialNumber);
            entry.Value("Reason").Should().Be("untrusted", error);
        }
        finally
        {
            TempDirectory.Delete(directory);
        }
    }

    [Fact]
    public async Task OpenSslClient_TlsResumeOffByDefault_SecondHandshakeIsNotResumed()
    {
        await using var broker = await TestBroker.StartAsync();
        var pki = Path.Combine(broker.DataDirectory, "pki");
        var session = Path.Combine(broker.DataDirectory, "session.pem");
        string[] Args(string sessionOption) =>
            ["s_client", "-connect", $"127.0.0.1:{broker.MqttPort}", "-tls1_3", "-CAfile", Path.Combine(pki, "ca-chain.crt"),
             "-cert", Path.Combine(pki, "devices", "sensor-001.crt"), "-key", Path.Combine(pki, "devices", "sensor-001.key"), sessionOption, session];

        var first = await OpenSslAsync(Args("-sess_out"));
        var second = await OpenSslAsync(Args("-sess_in"));

        first.Should().Contain("New, TLSv1.3");
        File.Exists(session).Should().BeTrue("the client stored the session to offer it again");
        second.Should().Contain("New, TLSv1.3", "a resumed session would skip the client certificate check").And.NotContain("Reused,");
    }

    /// <summary>Runs openssl with stdin held open for a moment, so s_client reads the post-handshake messages.</summary>
    private static async Task<string> OpenSslAsync(string[] args)
    {
        var start = new ProcessStartInfo("openssl") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await Task.Delay(1000);
        process.StandardInput.Close();
        await WaitAsync(process, TimeSpan.FromSeconds(10));
        return await stdout + await stderr;
    }

    private static Process Start(string file, string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        return Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start");
    }

    private static async Task<int> WaitAsync(Process process, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{process.StartInfo.FileName} did not exit within {timeout}");
        }
        return process.ExitCode;
    }
}
