using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace OmniBroker.Tests.Revocation;

/// <summary>A Kestrel server on 127.0.0.1 with per-path handlers the test can swap, counting requests per path.</summary>
internal sealed class LoopbackHttpServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, RequestDelegate> _handlers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _counts = new(StringComparer.Ordinal);

    private LoopbackHttpServer(WebApplication app)
    {
        _app = app;
    }

    public Uri BaseUrl { get; private set; } = null!;

    public static async Task<LoopbackHttpServer> StartAsync()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        WebApplication app = builder.Build();
        LoopbackHttpServer server = new(app);
        app.Run(async context =>
        {
            string path = context.Request.Path.Value ?? "/";
            string key = server._handlers.Keys.Where(k => path.StartsWith(k, StringComparison.Ordinal)).OrderByDescending(k => k.Length).FirstOrDefault() ?? path;
            server._counts.AddOrUpdate(key, 1, (_, n) => n + 1);
            if (server._handlers.TryGetValue(key, out RequestDelegate? handler))
            {
                await handler(context);
            }
            else
            {
                context.Response.StatusCode = 404;
            }
        });
        await app.StartAsync();
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.BaseUrl = new Uri(address.TrimEnd('/') + "/");
        return server;
    }

    public string Url(string path) => new Uri(BaseUrl, path.TrimStart('/')).ToString();

    public void Serve(string path, byte[] body, string contentType = "application/octet-stream", int status = 200) =>
        _handlers[path] = async context =>
        {
            context.Response.StatusCode = status;
            context.Response.ContentType = contentType;
            await context.Response.Body.WriteAsync(body);
        };

    public void Handle(string path, RequestDelegate handler) => _handlers[path] = handler;

    public void Fail(string path, int status = 503) => _handlers[path] = context =>
    {
        context.Response.StatusCode = status;
        return Task.CompletedTask;
    };

    public int Requests(string path) => _counts.TryGetValue(path, out int n) ? n : 0;

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>
/// A real `openssl ocsp` responder on a free port, reached at 127.0.0.1 and killed by PID on dispose. OpenSSL 3.0's
/// -port takes only a number (it listens on every interface), so the port is picked free and the process short-lived.
/// </summary>
internal sealed class OpensslOcspResponder : IDisposable
{
    private readonly Process _process;
    private readonly StringWriter _stderr = new();

    private OpensslOcspResponder(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public string Url => $"http://127.0.0.1:{Port}/";

    public string Errors
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <param name="port">a port reserved with <see cref="FreePort"/> (certificates carry the URL before the responder starts).</param>
    public static async Task<OpensslOcspResponder> StartAsync(int port, string indexPath, string caPem, string signerPem, string signerKeyPem,
        params string[] extraArgs)
    {
        ProcessStartInfo start = new("openssl")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(indexPath)!,
        };
        foreach (string arg in (string[])["ocsp", "-index", indexPath, "-port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-rsigner", signerPem, "-rkey", signerKeyPem,
            "-CA", caPem, "-ignore_err", .. extraArgs])
        {
            start.ArgumentList.Add(arg);
        }

        Process process = Process.Start(start) ?? throw new InvalidOperationException("openssl did not start");
        OpensslOcspResponder responder = new(process, port);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (responder._stderr)
                {
                    responder._stderr.WriteLine(e.Data);
                }
            }
        };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();

        // A bare TCP probe would wedge the single-threaded responder on a connection that never sends a request,
        // so readiness is its own "waiting for OCSP client connections" line (printed once it listens).
        DateTime deadline = DateTime.UtcNow.AddSeconds(10);
        while (!responder.Errors.Contains("waiting for OCSP client connections", StringComparison.Ordinal))
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"openssl ocsp exited with {process.ExitCode}: {responder.Errors}");
            }

            if (DateTime.UtcNow > deadline)
            {
                responder.Dispose();
                throw new TimeoutException($"openssl ocsp did not start listening on port {port}: {responder.Errors}");
            }

            await Task.Delay(20);
        }

        return responder;
    }

    public static int FreePort()
    {
        using TcpListener listener = new(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // already gone
        }

        _process.Dispose();
    }
}

/// <summary>Accepts TCP connections on 127.0.0.1 and never answers: a responder that hangs.</summary>
internal sealed class SilentTcpServer : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly List<TcpClient> _accepted = [];
    private readonly CancellationTokenSource _stop = new();

    public SilentTcpServer()
    {
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = AcceptLoopAsync();
    }

    public int Port { get; }

    public string Url => $"http://127.0.0.1:{Port}/ocsp";

    public int Accepted
    {
        get
        {
            lock (_accepted)
            {
                return _accepted.Count;
            }
        }
    }

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client = await _listener.AcceptTcpClientAsync(_stop.Token);
                lock (_accepted)
                {
                    _accepted.Add(client);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
        catch (SocketException)
        {
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_accepted)
        {
            foreach (TcpClient client in _accepted)
            {
                client.Dispose();
            }
        }

        _stop.Dispose();
    }
}
