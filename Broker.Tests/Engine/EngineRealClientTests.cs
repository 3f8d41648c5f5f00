using System.Diagnostics;
using FluentAssertions;
using Xunit;
using static OmniBroker.Tests.Engine.EngineTestHelpers;

namespace OmniBroker.Tests.Engine;

/// <summary>Interoperability of the engine with real MQTT clients (mosquitto-clients, Eclipse Paho for Python) over plain TCP.</summary>
public sealed class EngineRealClientTests
{
    private static readonly TimeSpan s_processTimeout = TimeSpan.FromSeconds(20);

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task MosquittoClients_PublishQos2_SubscriberReceivesIt(string protocol)
    {
        await using var server = await EngineServer.StartAsync();
        var subscriber = Start("mosquitto_sub", "-h", "127.0.0.1", "-p", server.Port.ToString(), "-V", protocol, "-i", "msub-" + protocol,
            "-t", "real/#", "-q", "2", "-C", "2", "-W", "15", "-v");
        await WaitUntilAsync(() => server.Broker.SubscriptionCount == 1, "mosquitto_sub subscribed", s_processTimeout);

        var publish1 = await RunAsync("mosquitto_pub", "-h", "127.0.0.1", "-p", server.Port.ToString(), "-V", protocol, "-i", "mpub-" + protocol,
            "-t", "real/one", "-m", "hello from mosquitto", "-q", "2");
        var publish2 = await RunAsync("mosquitto_pub", "-h", "127.0.0.1", "-p", server.Port.ToString(), "-V", protocol,
            "-t", "real/two", "-m", "second", "-q", "1");
        var (exitCode, output, errors) = await WaitAsync(subscriber);

        publish1.ExitCode.Should().Be(0, publish1.Errors);
        publish2.ExitCode.Should().Be(0, publish2.Errors);
        exitCode.Should().Be(0, errors);
        output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Should().Equal("real/one hello from mosquitto", "real/two second");
    }

    [Fact]
    public async Task PahoV5_RetainedQos2AndUserProperties_RoundTrip()
    {
        await using var server = await EngineServer.StartAsync();
        var script = Path.Combine(Path.GetTempPath(), $"omni-paho-{Guid.NewGuid():N}.py");
        await File.WriteAllTextAsync(script, PahoScript);
        try
        {
            var (exitCode, output, errors) = await RunAsync("/usr/bin/python3", script, server.Port.ToString());

            exitCode.Should().Be(0, errors + output);
            output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Should().Equal(
                "connack 0 False",
                "message paho/retained kept qos=1 retain=True",
                "message paho/q2 exactly qos=2 retain=False props=[('origin', 'paho')]",
                "done");
        }
        finally
        {
            File.Delete(script);
        }
    }

    private const string PahoScript = """
        import sys, time, threading
        import paho.mqtt.client as mqtt
        from paho.mqtt.properties import Properties
        from paho.mqtt.packettypes import PacketTypes

        port = int(sys.argv[1])
        got = []
        connected = threading.Event()

        def on_connect(client, userdata, flags, rc, properties=None):
            print("connack", rc.value if hasattr(rc, "value") else rc, bool(flags.get("session present")), flush=True)
            connected.set()

        def on_message(client, userdata, m):
            props = ""
            if m.properties is not None and getattr(m.properties, "UserProperty", None):
                props = " props=" + str(m.properties.UserProperty)
            got.append(f"message {m.topic} {m.payload.decode()} qos={m.qos} retain={bool(m.retain)}{props}")

        c = mqtt.Client(client_id="paho5", protocol=mqtt.MQTTv5)
        c.on_connect = on_connect
        c.on_message = on_message
        c.connect("127.0.0.1", port, keepalive=30)
        c.loop_start()
        if not connected.wait(10):
            sys.exit("no CONNACK")
        c.publish("paho/retained", "kept", qos=1, retain=True).wait_for_publish(10)
        c.subscribe("paho/#", qos=2)
        deadline = time.time() + 10
        while len(got) < 1 and time.time() < deadline:
            time.sleep(0.02)
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = ("origin", "paho")
        c.publish("paho/q2", "exactly", qos=2, properties=props).wait_for_publish(10)
        while len(got) < 2 and time.time() < deadline:
            time.sleep(0.02)
        for line in got:
            print(line, flush=True)
        c.disconnect()
        c.loop_stop()
        print("done", flush=True)
        """;

    private static Process Start(string file, params string[] arguments)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        return Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
    }

    private static async Task<(int ExitCode, string Output, string Errors)> RunAsync(string file, params string[] arguments) =>
        await WaitAsync(Start(file, arguments));

    private static async Task<(int ExitCode, string Output, string Errors)> WaitAsync(Process process)
    {
        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            using var cts = new CancellationTokenSource(s_processTimeout);
            try
            {
                await process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"{process.StartInfo.FileName} did not finish within {s_processTimeout.TotalSeconds}s");
            }
            return (process.ExitCode, await output, await errors);
        }
    }
}
