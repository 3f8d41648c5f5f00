using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using OmniBroker.Benchmarks.Support;
using OmniBroker.Enrollment.Inventory;

namespace OmniBroker.Benchmarks;

/// <summary>
/// A manufacturing-run burst: N one-time tokens made beforehand (as `omnibroker pki token` makes them), N P-256
/// CSRs made beforehand, then N simpleenroll requests over HTTPS with C concurrent keep-alive connections against
/// omnibroker running as its own process (development PKI, audit log on). Reports enrollments per second (wall
/// clock), server CPU per enrollment (utime+stime of the broker process over the burst), failures, and the
/// inventory rows written.
/// <code>dotnet run -c Release --project Broker.Benchmarks -- est-burst [--count 10000] [--concurrency 16]</code>
/// </summary>
internal static class EstEnrollmentBurst
{
    public static async Task<int> RunAsync(string[] args)
    {
        var count = Option(args, "--count", 10_000);
        var concurrency = Option(args, "--concurrency", 16);
        var directory = Path.Combine(Path.GetTempPath(), "omnibroker-est-burst-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(directory);
        try
        {
            Console.WriteLine($"EST burst: {count} enrollments, {concurrency} connections, data in {directory}");
            var clock = Stopwatch.StartNew();
            var tokens = new string[count];
            await using (var store = new SqliteCertificateStore(Path.Combine(directory, "certificates.db")))
            {
                for (var i = 0; i < count; i++)
                {
                    tokens[i] = store.Create(new EnrollmentTokenSubject($"burst-{i:D6}", "Acme", "sensors", "temperature-sensor", "DE", null), DateTimeOffset.UtcNow.AddHours(2));
                }
            }
            var csrs = new string[count];
            Parallel.For(0, count, i =>
            {
                using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                var request = new CertificateRequest($"CN=burst-{i:D6}", key, HashAlgorithmName.SHA256);
                csrs[i] = Convert.ToBase64String(request.CreateSigningRequest());
            });
            Console.WriteLine($"prepared {count} tokens and CSRs in {clock.Elapsed.TotalSeconds:F1} s");

            int mqttPort = BrokerProcess.FreePort(), httpPort = BrokerProcess.FreePort(), estPort = BrokerProcess.FreePort();
            string[] arguments = [BrokerFixture.OmniBrokerDll(), "serve", "--data-dir", directory, "--port", mqttPort.ToString(CultureInfo.InvariantCulture),
                "--http-url", $"http://127.0.0.1:{httpPort}", "--Mqtt:Address=127.0.0.1", "--Est:Enabled=true", "--Est:Address=127.0.0.1",
                $"--Est:Port={estPort}", "--Est:RateTotalPerSecond=1000000", "--Revocation:Mode=none"];
            using var broker = BrokerProcess.Start(BrokerFixture.DotnetHost(), arguments, Path.Combine(directory, "broker.log"), new IPEndPoint(IPAddress.Loopback, mqttPort));
            using var http = await ConnectAsync(directory, estPort, concurrency, broker);

            var cpuBefore = broker.CpuTicks();
            var failures = 0;
            var next = -1;
            clock.Restart();
            var workers = Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < count)
                {
                    using var content = new StringContent(csrs[i], Encoding.ASCII);
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/pkcs10");
                    using var request = new HttpRequestMessage(HttpMethod.Post, "/.well-known/est/simpleenroll") { Content = content };
                    request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(tokens[i])));
                    string outcome;
                    try
                    {
                        using var response = await http.SendAsync(request);
                        var body = await response.Content.ReadAsStringAsync();
                        outcome = response.StatusCode == HttpStatusCode.OK && body.StartsWith("MII", StringComparison.Ordinal) ? "" : $"{(int)response.StatusCode} {body.Trim()}";
                    }
                    catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                    {
                        // Counted as a failed enrollment (and shown), not a crash of the whole run.
                        outcome = ex.GetType().Name + ": " + ex.Message;
                    }
                    if (outcome.Length > 0 && Interlocked.Increment(ref failures) <= 3)
                    {
                        Console.WriteLine($"enrollment {i}: {outcome}");
                    }
                }
            })).ToArray();
            await Task.WhenAll(workers);
            var elapsed = clock.Elapsed;
            var cpu = (broker.CpuTicks() - cpuBefore) / (double)BrokerProcess.ClockTicksPerSecond;

            long issued;
            await using (var inventory = new SqliteCertificateStore(Path.Combine(directory, "certificates.db")))
            {
                issued = inventory.Query(new CertificateQuery(Status: CertificateStatus.Active, Limit: count * 2)).Count(r => r.IssuedVia == "token");
            }
            var ok = count - failures;
            Console.WriteLine($"| enrollments | concurrency | wall s | enrollments/s | server CPU s | server CPU ms/enrollment | failures | inventory rows |");
            Console.WriteLine($"| {count} | {concurrency} | {elapsed.TotalSeconds:F2} | {ok / elapsed.TotalSeconds:F0} | {cpu:F2} | {cpu * 1000 / Math.Max(1, ok):F3} | {failures} | {issued} |");
            Console.WriteLine($"load average: {File.ReadAllText("/proc/loadavg").Trim()}");
            return failures == 0 && issued == count ? 0 : 1;
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    // Trusts the development PKI the broker created; waits (bounded) until cacerts answers.
    private static async Task<HttpClient> ConnectAsync(string directory, int estPort, int concurrency, BrokerProcess broker)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        var root = Path.Combine(directory, "pki", "root-ca.crt");
        while (!File.Exists(root))
        {
            await Task.Delay(200);
            if (DateTime.UtcNow > deadline || broker.HasExited)
            {
                throw new InvalidOperationException("the broker did not create its PKI:\n" + broker.LogTail());
            }
        }
        var anchor = X509CertificateLoader.LoadCertificateFromFile(root);
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = concurrency,
            SslOptions =
            {
                RemoteCertificateValidationCallback = (_, certificate, chain, _) =>
                {
                    using var custom = new X509Chain();
                    custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    custom.ChainPolicy.CustomTrustStore.Add(anchor);
                    custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    foreach (var extra in chain?.ChainPolicy.ExtraStore ?? [])
                    {
                        custom.ChainPolicy.ExtraStore.Add(extra);
                    }
                    return certificate is X509Certificate2 leaf && custom.Build(leaf);
                },
            },
        };
        var http = new HttpClient(handler) { BaseAddress = new Uri($"https://127.0.0.1:{estPort}"), Timeout = TimeSpan.FromSeconds(60) };
        while (true)
        {
            try
            {
                using var response = await http.GetAsync("/.well-known/est/cacerts");
                if (response.IsSuccessStatusCode)
                {
                    return http;
                }
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline && !broker.HasExited)
            {
            }
            await Task.Delay(200);
            if (DateTime.UtcNow > deadline || broker.HasExited)
            {
                throw new InvalidOperationException("EST did not answer:\n" + broker.LogTail());
            }
        }
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? int.Parse(args[index + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
