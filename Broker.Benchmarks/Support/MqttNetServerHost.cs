using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using MQTTnet.Server;
using OmniBroker.Auth;
using OmniBroker.Auth.Pki;

namespace OmniBroker.Benchmarks.Support;

/// <summary>
/// The MQTTnet 5.2 server (MQTTnet.Server) as a measured baseline: a minimal host with mutual TLS on 127.0.0.1 and the
/// development PKI's certificates (same server certificate and CA as OmniBroker and Mosquitto). The client chain is
/// verified against the development root with the intermediate known, as the other two do; no authorization hooks
/// (every client may do everything), no persistence. Runs as its own process (<c>Broker.Benchmarks.dll
/// mqttnet-server &lt;port&gt; &lt;pki directory&gt;</c>) so its CPU time can be read from /proc like the others'.
/// </summary>
internal static class MqttNetServerHost
{
    public const string Command = "mqttnet-server";

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length != 3 || !int.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out int port))
        {
            await Console.Error.WriteLineAsync($"usage: Broker.Benchmarks {Command} <port> <pki directory>");
            return 2;
        }

        string pkiDirectory = args[2];
        X509Certificate2 server = PemCertificates.LoadWithKey(Path.Combine(pkiDirectory, DevelopmentPki.ServerCertificateFile),
            Path.Combine(pkiDirectory, DevelopmentPki.ServerKeyFile), out _);
        X509Certificate2 root = PemCertificates.LoadAll(Path.Combine(pkiDirectory, DevelopmentPki.RootCertificateFile))[0];
        X509Certificate2 intermediate = PemCertificates.LoadAll(Path.Combine(pkiDirectory, DevelopmentPki.IntermediateCertificateFile))[0];

        MqttServerOptions options = new MqttServerOptionsBuilder()
            .WithoutDefaultEndpoint()
            .WithEncryptedEndpoint()
            .WithEncryptedEndpointBoundIPAddress(IPAddress.Loopback)
            .WithEncryptedEndpointPort(port)
            .WithEncryptionCertificate(server)
            .WithEncryptionSslProtocol(SslProtocols.Tls12 | SslProtocols.Tls13)
            .WithClientCertificate((_, certificate, presented, _) => IsTrusted(certificate, presented, root, intermediate), checkCertificateRevocation: false)
            .Build();
        using MqttServer mqtt = new MqttServerFactory().CreateMqttServer(options);
        await mqtt.StartAsync();
        Console.WriteLine($"MQTTnet server listening on 127.0.0.1:{port}");

        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        AppDomain.CurrentDomain.ProcessExit += (_, _) => stop.Cancel();
        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token);
        }
        catch (OperationCanceledException)
        {
            // stopped by signal
        }

        await mqtt.StopAsync();
        return 0;
    }

    private static bool IsTrusted(X509Certificate? certificate, X509Chain? presented, X509Certificate2 root, X509Certificate2 intermediate)
    {
        if (certificate is null)
        {
            return false; // mutual TLS: no client certificate, no connection
        }

        using X509Chain chain = new();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.ExtraStore.Add(intermediate);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (presented is not null)
        {
            foreach (X509ChainElement element in presented.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        using X509Certificate2 leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return chain.Build(leaf);
    }
}
