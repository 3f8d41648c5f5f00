using System.Net;
using System.Security.Cryptography.X509Certificates;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OmniBroker.Auth;
using OmniBroker.Auth.Pki;
using OmniBroker.Auth.Revocation;

namespace OmniBroker.Benchmarks;

/// <summary>
/// Revocation cost on the handshake path. Warm: the answer is in the CRL store / OCSP cache, so the check completes
/// synchronously without the network (target: a few microseconds, no more than a few small allocations). Cold: the
/// OCSP cache is empty, so the check builds a request, POSTs it to a loopback responder (the development PKI's own,
/// signing with ECDSA P-256), and verifies the signed answer.
///   dotnet run -c Release --project Broker.Benchmarks -- --filter '*RevocationBenchmarks*'
/// </summary>
[MemoryDiagnoser]
public class RevocationBenchmarks
{
    private string _directory = null!;
    private DevelopmentPki _pki = null!;
    private WebApplication _responder = null!;
    private RevocationRuntime _crl = null!;
    private RevocationRuntime _ocsp = null!;
    private IReadOnlyList<X509Certificate2> _chain = null!;

    [GlobalSetup]
    public void Setup()
    {
        _directory = Path.Combine(Path.GetTempPath(), "omnibroker-revocation-bench-" + Guid.NewGuid().ToString("N"));

        // The responder starts first so its URL can be baked into the PKI's AIA extensions, as the broker's is.
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        _responder = builder.Build();
        DevelopmentOcspResponder? responder = null;
        _responder.MapPost("/pki/ocsp", async (HttpContext context) =>
        {
            using MemoryStream body = new();
            await context.Request.Body.CopyToAsync(body);
            return Results.Bytes(responder!.Respond(body.ToArray()), "application/ocsp-response");
        });
        _responder.StartAsync().GetAwaiter().GetResult();
        string address = _responder.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        _pki = DevelopmentPki.Create(Path.Combine(_directory, "pki"), new Uri(address.TrimEnd('/') + "/"));
        responder = new DevelopmentOcspResponder(_pki, TimeProvider.System, NullLogger.Instance);
        DevelopmentPkiRevocation.EnsureCrls(_pki, TimeProvider.System);
        X509Certificate2 leaf = PemCertificates.LoadAll(_pki.GetDeviceCertificatePath("sensor-001"))[0];
        _chain = [leaf, _pki.IntermediateCertificate, _pki.RootCertificate];

        RevocationOptions crlOptions = new() { Mode = RevocationMode.Crl };
        crlOptions.CrlFiles.AddRange(DevelopmentPkiRevocation.CrlPaths(_pki.Directory));
        _crl = new RevocationRuntime(crlOptions);
        _crl.Crls.ReloadFiles(force: true);

        _ocsp = new RevocationRuntime(new RevocationOptions { Mode = RevocationMode.Ocsp, UseNonce = true });

        Require(CheckWarmCrl(), "warm CRL");
        Require(CheckColdOcsp(), "cold OCSP");
        Require(CheckWarmOcsp(), "warm OCSP");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _crl.Dispose();
        _ocsp.Dispose();
        _responder.StopAsync().GetAwaiter().GetResult();
        _responder.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _pki.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>Handshake check answered by the CRL store (leaf and intermediate).</summary>
    [Benchmark(Baseline = true)]
    public RevocationStatus CheckWarmCrl() => _crl.Checker.CheckAsync(_chain, CancellationToken.None).GetAwaiter().GetResult().Status;

    /// <summary>Handshake check answered by the OCSP cache (leaf and intermediate).</summary>
    [Benchmark]
    public RevocationStatus CheckWarmOcsp() => _ocsp.Checker.CheckAsync(_chain, CancellationToken.None).GetAwaiter().GetResult().Status;

    /// <summary>Empty cache: OCSP exchanges with the loopback responder for the leaf and the intermediate (in parallel),
    /// each response's signature, CertID, times and nonce verified.</summary>
    [Benchmark]
    public RevocationStatus CheckColdOcsp()
    {
        _ocsp.OcspCache.Clear();
        return _ocsp.Checker.CheckAsync(_chain, CancellationToken.None).AsTask().GetAwaiter().GetResult().Status;
    }

    private static void Require(RevocationStatus status, string what)
    {
        if (status != RevocationStatus.Good)
        {
            throw new InvalidOperationException($"{what}: expected Good, got {status}");
        }
    }
}
