using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace OmniBroker.Benchmarks.Support;

/// <summary>The broker a benchmark runs against; each runs as its own process on loopback.</summary>
public enum BrokerTarget
{
    /// <summary>omnibroker with the development PKI's defaults: revocation on (crl-then-ocsp, CRLs loaded from disk,
    /// so every check is answered by the warm CRL store).</summary>
    OmniBroker,

    /// <summary>omnibroker with <c>--Revocation:Mode=none</c>.</summary>
    OmniBrokerNoRevocation,

    /// <summary>omnibroker with <c>--Tls:AllowTlsResume=true</c> (the benchmark client still never resumes): shows what
    /// the default (false) costs, since .NET then builds a fresh OpenSSL SSL_CTX for every connection.</summary>
    OmniBrokerTlsResumeAllowed,

    /// <summary>omnibroker with the thread pool's spin-wait off (<c>DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0</c>, the
    /// runtimeconfig knob System.Threading.ThreadPool.UnfairSemaphoreSpinLimit): idle workers block instead of spinning
    /// in sched_yield, which a profile showed as ~17% of the broker's CPU in the handshake benchmark.</summary>
    OmniBrokerNoSpin,

    /// <summary>omnibroker with <c>--Tls:OpenSslTuning=false</c>: .NET's TLS defaults (a new SSL_CTX per connection,
    /// OpenSSL's record buffers kept while idle, a session ticket per handshake), the "before" of issue 13.</summary>
    OmniBrokerNoOpenSslTuning,

    /// <summary>omnibroker with <c>--Tls:Engine=Kestrel</c>: Kestrel's HTTPS middleware instead of the broker's direct
    /// SslStream middleware, the "before" of the direct TLS engine (issue 13).</summary>
    OmniBrokerKestrelTls,

    /// <summary>omnibroker with <c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1</c> (also Kestrel's
    /// UnsafePreferInlineScheduling): no thread-pool hop between the socket and the application; measured, not a default.</summary>
    OmniBrokerInlineSockets,

    /// <summary>omnibroker with <c>--Revocation:Mode=ocsp</c>: answers come from its own responder (/pki/ocsp) and are
    /// cached, so after the first handshake the check is a cache hit until the answer's nextUpdate.</summary>
    OmniBrokerOcsp,

    /// <summary>The least a .NET server does per mutual-TLS MQTT connection (<see cref="SslStreamFloorHost"/>): socket,
    /// SslStream with the broker's OpenSSL settings, CONNECT/CONNACK; no Kestrel, pipes, engine, policy or revocation.</summary>
    SslStreamFloor,

    /// <summary><see cref="SslStreamFloor"/> with what the broker does for idle connections: the handshake trim
    /// (<see cref="OmniBroker.Auth.OpenSslServerTuning.TrimAfterHandshake"/>) and the device transport's socket stream.</summary>
    SslStreamFloorTrim,

    /// <summary><see cref="SslStreamFloor"/> with the handshake and CONNECT on dedicated threads, blocking socket calls.</summary>
    SslStreamFloorBlocking,

    /// <summary>Mosquitto 2.0 with the same certificates, no CRL.</summary>
    Mosquitto,

    /// <summary>MQTTnet 5.2's server (MQTTnet.Server) with the same certificates and mutual TLS, no revocation, no
    /// authorization (<see cref="MqttNetServerHost"/>).</summary>
    MqttNetServer,

    /// <summary>Mosquitto 2.0 with <c>crlfile</c> (OpenSSL checks the leaf against the intermediate's CRL).</summary>
    MosquittoCrl,
}

/// <summary>
/// A broker started as a separate process (so its CPU time and memory can be read from /proc/&lt;pid&gt;) and
/// stopped by its PID. The process is started through <c>setpriv --pdeathsig KILL</c> so it dies with the
/// benchmark process even if cleanup never runs; its output goes to a log file, quoted in errors.
/// </summary>
internal sealed class BrokerProcess : IDisposable
{
    public const string MosquittoPath = "/usr/sbin/mosquitto";

    private static readonly Lazy<int> s_clockTicks = new(ReadClockTicks);

    private readonly Process _process;

    private BrokerProcess(Process process, string logPath, IPEndPoint endPoint)
    {
        _process = process;
        LogPath = logPath;
        MqttEndPoint = endPoint;
    }

    public int Pid => _process.Id;

    public string LogPath { get; }

    public IPEndPoint MqttEndPoint { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>The exit code once exited (128 + signal number when a signal ended it).</summary>
    public int ExitCode => _process.ExitCode;

    public static bool MosquittoInstalled => File.Exists(MosquittoPath);

    /// <summary>Clock ticks per second of /proc/&lt;pid&gt;/stat times (<c>getconf CLK_TCK</c>, 100 on Linux).</summary>
    public static int ClockTicksPerSecond => s_clockTicks.Value;

    /// <summary>Starts <paramref name="fileName"/> with <paramref name="arguments"/> under a raised file descriptor limit.</summary>
    public static BrokerProcess Start(string fileName, IEnumerable<string> arguments, string logPath, IPEndPoint endPoint,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        // sh raises the soft descriptor limit to the hard one (Mosquitto does not do it itself; .NET does), then
        // setpriv sets the parent-death signal and execs the broker: the PID we get is the broker's own.
        ProcessStartInfo start = new("/bin/sh")
        {
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("ulimit -n \"$(ulimit -Hn)\" 2>/dev/null; log=\"$1\"; shift; exec setpriv --pdeathsig KILL -- \"$@\" >\"$log\" 2>&1 </dev/null");
        start.ArgumentList.Add("sh");
        start.ArgumentList.Add(logPath);
        start.ArgumentList.Add(fileName);
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // The broker reads OMNIBROKER_* variables as configuration and refuses unknown keys: the benchmark's own
        // switches are not for it.
        foreach (string name in start.Environment.Keys.Where(k => k.StartsWith("OMNIBROKER_BENCH", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(name);
        }

        foreach ((string name, string value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        Process process = StartFromLauncherThread(start) ?? throw new InvalidOperationException($"cannot start {fileName}");
        return new BrokerProcess(process, logPath, endPoint);
    }

    /// <summary>
    /// PR_SET_PDEATHSIG fires when the parent *thread* ends, not the parent process: a broker forked from a thread-pool
    /// thread was killed (SIGKILL, no log line) as soon as the pool retired that thread, e.g. after a reconnect storm
    /// had grown the pool. Every broker is therefore forked from one thread that lives as long as this process.
    /// </summary>
    private static Process? StartFromLauncherThread(ProcessStartInfo start)
    {
        TaskCompletionSource<Process?> started = new(TaskCreationOptions.RunContinuationsAsynchronously);
        s_launches.Add(() =>
        {
            try
            {
                started.SetResult(Process.Start(start));
            }
            catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or InvalidOperationException)
            {
                started.SetException(ex);
            }
        });
        _ = s_launcher.Value;
        return started.Task.GetAwaiter().GetResult();
    }

    private static readonly System.Collections.Concurrent.BlockingCollection<Action> s_launches = [];

    private static readonly Lazy<Thread> s_launcher = new(() =>
    {
        Thread thread = new(() =>
        {
            foreach (Action launch in s_launches.GetConsumingEnumerable())
            {
                launch();
            }
        })
        {
            IsBackground = true,
            Name = "broker launcher",
        };
        thread.Start();
        return thread;
    });

    /// <summary>utime + stime of the whole process (all threads, live and exited), in clock ticks.</summary>
    public long CpuTicks()
    {
        string stat = File.ReadAllText($"/proc/{Pid}/stat");
        // Fields after "pid (comm) ": state is field 3, utime field 14, stime field 15 (proc(5)).
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }

    /// <summary>Resident set size (VmRSS) in KiB.</summary>
    public long RssKiB()
    {
        foreach (string line in File.ReadLines($"/proc/{Pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException($"no VmRSS in /proc/{Pid}/status");
    }

    public string LogTail(int lines = 30)
    {
        if (!File.Exists(LogPath))
        {
            return "(no log)";
        }

        string[] all = File.ReadAllLines(LogPath);
        return string.Join(Environment.NewLine, all.Skip(Math.Max(0, all.Length - lines)));
    }

    /// <summary>A TCP port free on 127.0.0.1 right now (the broker binds it a moment later; a lost race shows as
    /// "address in use" and the fixture retries).</summary>
    public static int FreePort()
    {
        using Socket socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    /// <summary>SIGKILL by PID and reap; the brokers keep no state the benchmarks need.</summary>
    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: false);
            _process.WaitForExit(10_000);
        }

        _process.Dispose();
    }

    private static int ReadClockTicks()
    {
        ProcessStartInfo start = new("getconf", "CLK_TCK") { RedirectStandardOutput = true, UseShellExecute = false };
        using Process? getconf = Process.Start(start);
        if (getconf is null)
        {
            return 100;
        }

        string output = getconf.StandardOutput.ReadToEnd();
        getconf.WaitForExit(5_000);
        return int.TryParse(output.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int ticks) && ticks > 0 ? ticks : 100;
    }
}
