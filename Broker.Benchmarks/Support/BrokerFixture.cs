using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using OmniBroker.Auth;
using OmniBroker.Auth.Pki;
using OmniBroker.Auth.Revocation;

namespace OmniBroker.Benchmarks.Support;

/// <summary>
/// A broker process with a fresh development PKI in a temporary directory: omnibroker (Release build, run as
/// <c>dotnet omnibroker.dll serve</c>) or Mosquitto with the same server certificate and trust anchor. Start returns
/// once a real mutual-TLS CONNECT has succeeded. Dispose kills the process by PID and deletes the directory.
/// </summary>
internal sealed class BrokerFixture : IDisposable
{
    private static readonly TimeSpan s_startTimeout = TimeSpan.FromSeconds(90);

    private readonly Dictionary<string, ClientCredentials> _credentials = new(StringComparer.Ordinal);

    private BrokerFixture(BrokerTarget target, string directory, string pkiDirectory, BrokerProcess server, X509Certificate2 serverCertificate)
    {
        Target = target;
        Directory = directory;
        PkiDirectory = pkiDirectory;
        Server = server;
        ServerCertificate = serverCertificate;
    }

    public BrokerTarget Target { get; }

    public string Directory { get; }

    public string PkiDirectory { get; }

    public BrokerProcess Server { get; }

    public X509Certificate2 ServerCertificate { get; }

    public IPEndPoint EndPoint => Server.MqttEndPoint;

    public static bool IsMosquitto(BrokerTarget target) => target is BrokerTarget.Mosquitto or BrokerTarget.MosquittoCrl;

    /// <summary>The targets that can run here: Mosquitto ones only when <c>/usr/sbin/mosquitto</c> exists (a message
    /// says so otherwise).</summary>
    public static IEnumerable<BrokerTarget> Available(params BrokerTarget[] targets)
    {
        if (!BrokerProcess.MosquittoInstalled && targets.Any(IsMosquitto))
        {
            Console.WriteLine($"// {BrokerProcess.MosquittoPath} not found: the Mosquitto cases are skipped (apt-get install mosquitto).");
        }

        // OMNIBROKER_BENCH_TARGETS=OmniBroker,Mosquitto,MqttNetServer keeps a run short on a shared machine.
        string[] only = (Environment.GetEnvironmentVariable("OMNIBROKER_BENCH_TARGETS") ?? "")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return targets.Where(t => (!IsMosquitto(t) || BrokerProcess.MosquittoInstalled) && (only.Length == 0 || only.Contains(t.ToString())));
    }

    /// <param name="target">which broker.</param>
    /// <param name="omniBrokerArguments">extra <c>--Section:Key=value</c> arguments for omnibroker.</param>
    /// <param name="mosquittoLines">extra lines for mosquitto.conf.</param>
    /// <param name="devices">extra device certificates to issue besides the development PKI's defaults (e.g. the 100
    /// publishers of the fan-in load scenario).</param>
    /// <param name="pkiFrom">the PKI directory of another fixture to use instead of a new one (the nodes of a cluster
    /// trust the same devices).</param>
    public static BrokerFixture Start(BrokerTarget target, IEnumerable<string>? omniBrokerArguments = null, IEnumerable<string>? mosquittoLines = null,
        IEnumerable<DeviceCertificateRequest>? devices = null, string? pkiFrom = null)
    {
        if (IsMosquitto(target) && !BrokerProcess.MosquittoInstalled)
        {
            throw new InvalidOperationException($"{BrokerProcess.MosquittoPath} not found: install the Debian package mosquitto to run the {target} cases.");
        }

        for (int attempt = 1; ; attempt++)
        {
            string directory = Path.Combine(Path.GetTempPath(), "omnibroker-bench-" + Guid.NewGuid().ToString("N")[..12]);
            string pkiDirectory = Path.Combine(directory, "data", "pki");
            int mqttPort = BrokerProcess.FreePort();
            int httpPort = BrokerProcess.FreePort();
            BrokerProcess? server = null;
            X509Certificate2? serverCertificate = null;
            try
            {
                // Created here rather than by the broker so Mosquitto gets the very same certificates; the PKI's URLs
                // (CRL distribution point, OCSP responder) name the HTTP listener this omnibroker will have.
                if (pkiFrom is not null)
                {
                    CopyDirectory(pkiFrom, pkiDirectory);
                }
                using (DevelopmentPki pki = DevelopmentPki.LoadOrCreate(pkiDirectory, new Uri($"http://127.0.0.1:{httpPort}/"), out _))
                {
                    foreach (DeviceCertificateRequest device in devices ?? [])
                    {
                        pki.IssueDevice(device);
                    }

                    DevelopmentPkiRevocation.EnsureCrls(pki, TimeProvider.System);
                    serverCertificate = X509CertificateLoader.LoadCertificate(PemCertificates.LoadAll(pki.ServerCertificatePath)[0].RawData);
                }

                IPEndPoint endPoint = new(IPAddress.Loopback, mqttPort);
                string logPath = Path.Combine(directory, "broker.log");
                server = IsMosquitto(target)
                    ? BrokerProcess.Start(BrokerProcess.MosquittoPath, ["-c", WriteMosquittoConf(target, directory, pkiDirectory, mqttPort, mosquittoLines)], logPath, endPoint)
                    : target is BrokerTarget.SslStreamFloor or BrokerTarget.SslStreamFloorTrim or BrokerTarget.SslStreamFloorBlocking
                    ? BrokerProcess.Start(DotnetHost(), [BenchmarksDll(), SslStreamFloorHost.Command, mqttPort.ToString(CultureInfo.InvariantCulture), pkiDirectory,
                        target switch { BrokerTarget.SslStreamFloorTrim => "trim", BrokerTarget.SslStreamFloorBlocking => "blocking", _ => "plain" }], logPath, endPoint)
                    : target == BrokerTarget.MqttNetServer
                    ? BrokerProcess.Start(DotnetHost(), [BenchmarksDll(), MqttNetServerHost.Command, mqttPort.ToString(CultureInfo.InvariantCulture), pkiDirectory],
                        logPath, endPoint)
                    : BrokerProcess.Start(DotnetHost(), OmniBrokerArguments(target, directory, mqttPort, httpPort, omniBrokerArguments), logPath, endPoint,
                        OmniBrokerEnvironment(target));

                BrokerFixture fixture = new(target, directory, pkiDirectory, server, serverCertificate);
                if (fixture.WaitUntilReady(out bool addressInUse))
                {
                    server = null;
                    serverCertificate = null;
                    return fixture;
                }

                fixture.DisposeCredentials();
                if (!addressInUse || attempt >= 3)
                {
                    throw new InvalidOperationException($"{target} did not start; last log lines:{Environment.NewLine}{server.LogTail()}");
                }
            }
            finally
            {
                server?.Dispose();
                serverCertificate?.Dispose();
                if (server is not null)
                {
                    DeleteDirectory(directory);
                }
            }
        }
    }

    /// <summary>The credentials of one development PKI device (sensor-001, backend-telemetry, ...), built once.</summary>
    public ClientCredentials Credentials(string commonName)
    {
        if (!_credentials.TryGetValue(commonName, out ClientCredentials? credentials))
        {
            string devices = Path.Combine(PkiDirectory, DevelopmentPki.DevicesDirectory);
            credentials = new ClientCredentials(Path.Combine(devices, commonName + ".crt"), Path.Combine(devices, commonName + ".key"), ServerCertificate);
            _credentials[commonName] = credentials;
        }

        return credentials;
    }

    /// <summary>mosquitto.conf line that turns Nagle off, as omnibroker always has it. With Mosquitto's default
    /// (<c>set_tcp_nodelay false</c>) every new connection waits ~40 ms for a delayed ACK before its CONNACK leaves.</summary>
    public const string MosquittoNoDelay = "set_tcp_nodelay true";

    /// <summary>One full connection: TLS handshake, CONNECT, CONNACK, DISCONNECT, close.</summary>
    public async Task HandshakeOnceAsync(string commonName, string clientId, CancellationToken cancellationToken)
    {
        MqttTlsClient client = await MqttTlsClient.ConnectAsync(EndPoint, Credentials(commonName), clientId, 0, cancellationToken).ConfigureAwait(false);
        await client.DisconnectAsync(cancellationToken).ConfigureAwait(false);
    }

    public void Dispose()
    {
        DisposeCredentials();
        Server.Dispose();
        ServerCertificate.Dispose();
        DeleteDirectory(Directory);
    }

    private bool WaitUntilReady(out bool addressInUse)
    {
        addressInUse = false;
        DateTime deadline = DateTime.UtcNow + s_startTimeout;
        while (DateTime.UtcNow < deadline)
        {
            if (Server.HasExited)
            {
                string log = Server.LogTail(200);
                addressInUse = log.Contains("address already in use", StringComparison.OrdinalIgnoreCase)
                    || log.Contains("Address in use", StringComparison.OrdinalIgnoreCase);
                return false;
            }

            using CancellationTokenSource timeout = new(TimeSpan.FromSeconds(10));
            try
            {
                HandshakeOnceAsync("sensor-001", "sensor-001", timeout.Token).GetAwaiter().GetResult();
                return true;
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionRefused)
            {
                Thread.Sleep(100);
            }
            catch (Exception ex) when (ex is IOException or AuthenticationException or InvalidOperationException or OperationCanceledException)
            {
                throw new InvalidOperationException($"{Target}: the first connection failed ({ex.Message}); last log lines:{Environment.NewLine}{Server.LogTail()}", ex);
            }
        }

        throw new TimeoutException($"{Target} did not accept a connection within {s_startTimeout.TotalSeconds} s; last log lines:{Environment.NewLine}{Server.LogTail()}");
    }

    /// <summary>Environment of an omnibroker process: <c>OMNIBROKER_BENCH_ENV</c> ("NAME=value;NAME=value") lets a run try
    /// a runtime switch (e.g. <c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1</c>) without a rebuild.</summary>
    private static Dictionary<string, string>? OmniBrokerEnvironment(BrokerTarget target)
    {
        Dictionary<string, string> environment = new(StringComparer.Ordinal);
        if (target == BrokerTarget.OmniBrokerInlineSockets)
        {
            // Kestrel's socket transport reads this too: socket completions and the pipe readers run on the epoll thread.
            environment["DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS"] = "1";
        }
        if (target == BrokerTarget.OmniBrokerNoSpin)
        {
            environment["DOTNET_ThreadPool_UnfairSemaphoreSpinLimit"] = "0";
        }

        foreach (string pair in (Environment.GetEnvironmentVariable("OMNIBROKER_BENCH_ENV") ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            int equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals > 0)
            {
                environment[pair[..equals].Trim()] = pair[(equals + 1)..].Trim();
            }
        }

        return environment.Count == 0 ? null : environment;
    }

    private static List<string> OmniBrokerArguments(BrokerTarget target, string directory, int mqttPort, int httpPort, IEnumerable<string>? extra)
    {
        string dll = OmniBrokerDll();
        List<string> arguments =
        [
            dll, "serve",
            "--data-dir", Path.Combine(directory, "data"),
            "--port", mqttPort.ToString(CultureInfo.InvariantCulture),
            "--http-url", $"http://127.0.0.1:{httpPort}",
            "--policy-dir", Path.Combine(Path.GetDirectoryName(dll)!, "policies"),
            "--Mqtt:Address=127.0.0.1",
            // Not measured here, and its default port 8884 would collide with other instances.
            "--WebSockets:Enabled=false",
        ];
        switch (target)
        {
            case BrokerTarget.OmniBrokerNoRevocation:
                arguments.Add("--Revocation:Mode=none");
                break;
            case BrokerTarget.OmniBrokerOcsp:
                arguments.Add("--Revocation:Mode=ocsp");
                break;
            case BrokerTarget.OmniBrokerTlsResumeAllowed:
                arguments.Add("--Tls:AllowTlsResume=true");
                break;
            case BrokerTarget.OmniBrokerNoOpenSslTuning:
                arguments.Add("--Tls:OpenSslTuning=false");
                break;
            case BrokerTarget.OmniBrokerKestrelTls:
                arguments.Add("--Tls:Engine=Kestrel");
                break;
        }

        arguments.AddRange(extra ?? []);
        return arguments;
    }

    private static string WriteMosquittoConf(BrokerTarget target, string directory, string pkiDirectory, int port, IEnumerable<string>? extra)
    {
        StringBuilder conf = new();
        conf.AppendLine("per_listener_settings false");
        conf.AppendLine("persistence false");
        // Running as root, Mosquitto would switch to user mosquitto, which cannot read the 0600 keys.
        conf.AppendLine("user root");
        conf.AppendLine("allow_anonymous true");
        conf.AppendLine(CultureInfo.InvariantCulture, $"listener {port} 127.0.0.1");
        conf.AppendLine(CultureInfo.InvariantCulture, $"cafile {Path.Combine(pkiDirectory, DevelopmentPki.RootCertificateFile)}");
        conf.AppendLine(CultureInfo.InvariantCulture, $"certfile {Path.Combine(pkiDirectory, DevelopmentPki.ServerCertificateFile)}");
        conf.AppendLine(CultureInfo.InvariantCulture, $"keyfile {Path.Combine(pkiDirectory, DevelopmentPki.ServerKeyFile)}");
        conf.AppendLine("require_certificate true");
        conf.AppendLine("use_identity_as_username true");
        conf.AppendLine("tls_version tlsv1.3");
        if (target == BrokerTarget.MosquittoCrl)
        {
            // Mosquitto wants PEM; the development PKI writes DER. Both CRLs, so the file covers the whole chain.
            string crl = Path.Combine(directory, "crl.pem");
            File.WriteAllText(crl, string.Concat(DevelopmentPkiRevocation.CrlPaths(pkiDirectory)
                .Select(p => PemEncoding.WriteString("X509 CRL", File.ReadAllBytes(p)) + "\n")));
            conf.AppendLine(CultureInfo.InvariantCulture, $"crlfile {crl}");
        }

        foreach (string line in extra ?? [])
        {
            conf.AppendLine(line);
        }

        string path = Path.Combine(directory, "mosquitto.conf");
        File.WriteAllText(path, conf.ToString());
        return path;
    }

    /// <summary>omnibroker.dll: <c>OMNIBROKER_DLL</c>, else the copy next to this assembly or in a parent directory
    /// (BenchmarkDotNet builds a generated project below the benchmark's own output).</summary>
    internal static string OmniBrokerDll()
    {
        if (Environment.GetEnvironmentVariable("OMNIBROKER_DLL") is { Length: > 0 } configured)
        {
            return File.Exists(configured) ? configured : throw new FileNotFoundException($"OMNIBROKER_DLL={configured} does not exist");
        }

        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "omnibroker.dll");
            if (File.Exists(candidate) && File.Exists(Path.Combine(d.FullName, "omnibroker.runtimeconfig.json")))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException($"omnibroker.dll not found next to {AppContext.BaseDirectory} or above; build Broker.Benchmarks in Release or set OMNIBROKER_DLL");
    }

    /// <summary>Broker.Benchmarks.dll with its runtimeconfig (the MQTTnet server host), here or in a directory above
    /// (BenchmarkDotNet runs the benchmarks from a generated project below the build output).</summary>
    private static string BenchmarksDll()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "Broker.Benchmarks.dll");
            if (File.Exists(candidate) && File.Exists(Path.Combine(d.FullName, "Broker.Benchmarks.runtimeconfig.json")))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException($"Broker.Benchmarks.dll not found next to {AppContext.BaseDirectory} or above; build Broker.Benchmarks in Release");
    }

    internal static string DotnetHost()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host))
        {
            return host;
        }

        return Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : "dotnet";
    }

    private void DisposeCredentials()
    {
        foreach (ClientCredentials c in _credentials.Values)
        {
            c.Dispose();
        }

        _credentials.Clear();
    }

    private static void DeleteDirectory(string directory)
    {
        if (System.IO.Directory.Exists(directory))
        {
            System.IO.Directory.Delete(directory, recursive: true);
        }
    }

    private static void CopyDirectory(string from, string to)
    {
        System.IO.Directory.CreateDirectory(to);
        foreach (string file in System.IO.Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
        }
        foreach (string directory in System.IO.Directory.GetDirectories(from))
        {
            CopyDirectory(directory, Path.Combine(to, Path.GetFileName(directory)));
        }
    }
}
