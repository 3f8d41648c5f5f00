using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using FluentAssertions;
using Microsoft.AspNetCore.Http;
using OmniBroker.Auth;
using OmniBroker.Auth.Revocation;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Revocation;

/// <summary>OCSP against a real `openssl ocsp` responder (an independent implementation of RFC 6960) on loopback,
/// and against hostile responders (replayed, forged, malformed, silent).</summary>
public sealed class OcspRevocationTests : IAsyncLifetime, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("omni-ocsp").FullName;
    private readonly int _port = OpensslOcspResponder.FreePort();
    private RevocationTestPki _pki = null!;
    private X509Certificate2 _good = null!;
    private X509Certificate2 _revoked = null!;
    private X509Certificate2 _notInIndex = null!;
    private readonly List<IDisposable> _cleanup = [];
    private readonly List<IAsyncDisposable> _asyncCleanup = [];

    private string OcspUrl => $"http://127.0.0.1:{_port}/";

    public Task InitializeAsync()
    {
        _pki = RevocationTestPki.Create("Ocsp");
        _good = _pki.IssueLeaf("good-device", ocspUrl: OcspUrl);
        _revoked = _pki.IssueLeaf("revoked-device", ocspUrl: OcspUrl);
        _notInIndex = _pki.IssueLeaf("stranger", ocspUrl: OcspUrl);
        File.WriteAllText(Path.Combine(_dir, "index.txt"), RevocationTestPki.OpensslIndex([_good], [_revoked]));
        RevocationTestPki.WritePem(Path.Combine(_dir, "ca.pem"), _pki.Intermediate);
        RevocationTestPki.WriteKey(Path.Combine(_dir, "ca.key"), _pki.IntermediateKey);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (IAsyncDisposable d in _asyncCleanup)
        {
            await d.DisposeAsync();
        }
    }

    public void Dispose()
    {
        foreach (IDisposable d in _cleanup)
        {
            d.Dispose();
        }

        _pki.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task<OpensslOcspResponder> StartOpensslAsync(string? signerPem = null, string? signerKey = null, params string[] extra)
    {
        OpensslOcspResponder responder = await OpensslOcspResponder.StartAsync(_port, Path.Combine(_dir, "index.txt"), Path.Combine(_dir, "ca.pem"),
            signerPem ?? Path.Combine(_dir, "ca.pem"), signerKey ?? Path.Combine(_dir, "ca.key"), extra);
        _cleanup.Add(responder);
        return responder;
    }

    private (string Pem, string Key) WriteSigner(string name, X509Certificate2 cert, ECDsa key)
    {
        string pem = Path.Combine(_dir, name + ".pem");
        string keyPath = Path.Combine(_dir, name + ".key");
        RevocationTestPki.WritePem(pem, cert);
        RevocationTestPki.WriteKey(keyPath, key);
        return (pem, keyPath);
    }

    [Theory]
    [InlineData(OcspRequestMethod.Post, OcspHashAlgorithm.Sha256, true)]
    [InlineData(OcspRequestMethod.Post, OcspHashAlgorithm.Sha1, false)]
    [InlineData(OcspRequestMethod.Get, OcspHashAlgorithm.Sha256, false)]
    [InlineData(OcspRequestMethod.Get, OcspHashAlgorithm.Sha1, true)]
    public async Task OpensslResponder_GoodAndRevokedLeaves_AdmittedAndRefused(OcspRequestMethod method, OcspHashAlgorithm hash, bool nonce)
    {
        await StartOpensslAsync(extra: ["-nmin", "5"]);
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Ocsp;
            o.RequestMethod = method;
            o.HashAlgorithm = hash;
            o.UseNonce = nonce;
        });

        RevocationCheckResult good = await harness.CheckAsync(_pki.Chain(_good));
        RevocationCheckResult revoked = await harness.CheckAsync(_pki.Chain(_revoked));

        good.Status.Should().Be(RevocationStatus.Good, harness.LogText);
        good.Admit.Should().BeTrue();
        revoked.Status.Should().Be(RevocationStatus.Revoked, harness.LogText);
        revoked.Admit.Should().BeFalse();
        revoked.Detail.Should().Contain("OCSP").And.Contain("KeyCompromise");
        harness.Metrics.OcspRequests(OcspRequestResult.Good).Should().Be(1);
        harness.Metrics.OcspRequests(OcspRequestResult.Revoked).Should().Be(1);
    }

    [Fact]
    public async Task OpensslResponder_SecondCheck_AnsweredFromCacheSynchronously()
    {
        await StartOpensslAsync(extra: ["-nmin", "5"]);
        using RevocationHarness harness = new(o => o.Mode = RevocationMode.Ocsp);

        (await harness.CheckAsync(_pki.Chain(_good))).Status.Should().Be(RevocationStatus.Good, harness.LogText);
        ValueTask<RevocationCheckResult> second = harness.Checker.CheckAsync(_pki.Chain(_good), CancellationToken.None);

        second.IsCompletedSuccessfully.Should().BeTrue();
        (await second).Status.Should().Be(RevocationStatus.Good);
        harness.Metrics.OcspRequestsTotal.Should().Be(1);
        harness.Metrics.OcspCacheHits.Should().Be(1);
        harness.Metrics.OcspCacheMisses.Should().Be(1);
    }

    [Fact]
    public async Task OpensslResponder_DelegatedResponderWithOcspSigning_Accepted()
    {
        (X509Certificate2 cert, ECDsa key) = _pki.IssueResponder("Delegated OCSP Responder", ocspSigning: true);
        using (key)
        {
            (string pem, string keyPath) = WriteSigner("delegated", cert, key);
            await StartOpensslAsync(pem, keyPath, "-nmin", "5");
        }

        using RevocationHarness harness = new(o => o.Mode = RevocationMode.Ocsp);
        (await harness.CheckAsync(_pki.Chain(_good))).Status.Should().Be(RevocationStatus.Good, harness.LogText);
        (await harness.CheckAsync(_pki.Chain(_revoked))).Status.Should().Be(RevocationStatus.Revoked, harness.LogText);
    }

    [Fact]
    public async Task OpensslResponder_SignerWithoutOcspSigningUsage_Rejected()
    {
        (X509Certificate2 cert, ECDsa key) = _pki.IssueResponder("Not A Responder", ocspSigning: false);
        using (key)
        {
            (string pem, string keyPath) = WriteSigner("unauthorized", cert, key);
            await StartOpensslAsync(pem, keyPath);
        }

        using RevocationHarness harness = new(o => o.Mode = RevocationMode.Ocsp);
        RevocationCheckResult result = await harness.CheckAsync(_pki.Chain(_revoked));

        result.Status.Should().Be(RevocationStatus.Unknown);
        result.Admit.Should().BeFalse();
        harness.Metrics.OcspRequests(OcspRequestResult.InvalidResponse).Should().Be(1);
        harness.Logs.WithEventId(4010).Should().ContainSingle().Which.Message.Should().Contain("lacks id-kp-OCSPSigning");
    }

    [Fact]
    public async Task OpensslResponder_SignerFromAnotherCa_Rejected()
    {
        using RevocationTestPki other = RevocationTestPki.Create("Other");
        (X509Certificate2 cert, ECDsa key) = other.IssueResponder("Foreign Responder", ocspSigning: true);
        using (key)
        {
            (string pem, string keyPath) = WriteSigner("foreign", cert, key);
            await StartOpensslAsync(pem, keyPath);
        }

        using RevocationHarness harness = new(o => o.Mode = RevocationMode.Ocsp);
        RevocationCheckResult result = await harness.CheckAsync(_pki.Chain(_good));

        result.Status.Should().Be(RevocationStatus.Unknown);
        result.Admit.Should().BeFalse();
        harness.Logs.WithEventId(4010).Should().ContainSingle().Which.Message.Should().Contain("was not issued by");
    }

    [Theory]
    [InlineData(OcspUnknownPolicy.Refuse, RevocationFailurePolicy.SoftFail, false)]
    [InlineData(OcspUnknownPolicy.Fallback, RevocationFailurePolicy.SoftFail, true)]
    [InlineData(OcspUnknownPolicy.Fallback, RevocationFailurePolicy.HardFail, false)]
    public async Task OpensslResponder_StatusUnknown_HandledExplicitly(OcspUnknownPolicy unknown, RevocationFailurePolicy failure, bool admitted)
    {
        await StartOpensslAsync();
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Ocsp;
            o.OcspUnknown = unknown;
            o.FailurePolicy = failure;
        });

        RevocationCheckResult result = await harness.CheckAsync(_pki.Chain(_notInIndex));

        result.Status.Should().Be(RevocationStatus.Unknown);
        result.Admit.Should().Be(admitted);
        result.Detail.Should().Contain("does not know the certificate");
        harness.Logs.WithEventId(4012).Should().ContainSingle();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task OcspThenCrl_ResponderSaysUnknown_CrlDecides(bool listedInCrl)
    {
        await StartOpensslAsync();
        await using LoopbackHttpServer crlServer = await LoopbackHttpServer.StartAsync();
        X509Certificate2 leaf = _pki.IssueLeaf("dual-" + listedInCrl, crlUrl: crlServer.Url("/intermediate.crl"), ocspUrl: OcspUrl);
        crlServer.Serve("/intermediate.crl", _pki.BuildCrl(root: false, listedInCrl ? [leaf] : [], 1));
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.OcspThenCrl;
            o.OcspUnknown = OcspUnknownPolicy.Fallback;
        });

        RevocationCheckResult result = await harness.CheckAsync(_pki.Chain(leaf));

        result.Status.Should().Be(listedInCrl ? RevocationStatus.Revoked : RevocationStatus.Good, harness.LogText);
        result.Detail.Should().Contain("CRL");
        harness.Logs.WithEventId(4012).Should().ContainSingle("OCSP was asked first and said unknown");
        crlServer.Requests("/intermediate.crl").Should().Be(1);
    }

    [Theory]
    [InlineData(RevocationFailurePolicy.HardFail, false)]
    [InlineData(RevocationFailurePolicy.SoftFail, true)]
    public async Task ResponderDown_FailurePolicyDecides(RevocationFailurePolicy policy, bool admitted)
    {
        // Nothing listens on _port: connection refused.
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Ocsp;
            o.FailurePolicy = policy;
        });

        RevocationCheckResult result = await harness.CheckAsync(_pki.Chain(_good));

        result.Status.Should().Be(RevocationStatus.Unknown);
        result.Admit.Should().Be(admitted);
        harness.Metrics.OcspRequests(OcspRequestResult.NetworkError).Should().Be(1);
        harness.Metrics.SoftFailAdmissions.Should().Be(admitted ? 1 : 0);
    }

    [Fact]
    public async Task ResponderDown_BackoffAnswersNextHandshakesWithoutWaiting()
    {
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Ocsp;
            o.OcspFailureBackoff = TimeSpan.FromMinutes(1);
        });

        (await harness.CheckAsync(_pki.Chain(_good))).Status.Should().Be(RevocationStatus.Unknown);
        ValueTask<RevocationCheckResult> next = harness.Checker.CheckAsync(_pki.Chain(_revoked), CancellationToken.None);

        next.IsCompletedSuccessfully.Should().BeTrue("a responder that just failed is not asked again during the backoff");
        (await next).Detail.Should().Contain("failed moments ago");
        harness.Metrics.OcspRequestsTotal.Should().Be(1);
    }

    [Fact]
    public async Task ResponderNeverAnswers_TimeoutHonoured()
    {
        using SilentTcpServer silent = new();
        X509Certificate2 leaf = _pki.IssueLeaf("patient", ocspUrl: silent.Url);
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Ocsp;
            o.OcspTimeout = TimeSpan.FromMilliseconds(500);
        });

        Task<RevocationCheckResult> check = harness.CheckAsync(_pki.Chain(leaf));
        Task finished = await Task.WhenAny(check, Task.Delay(TimeSpan.FromSeconds(20)));

        finished.Should().BeSameAs(check, "the lookup must give up after the configured timeout, not hang");
        RevocationCheckResult result = await check;
        result.Status.Should().Be(RevocationStatus.Unknown);
        result.Admit.Should().BeFalse();
        result.Detail.Should().Contain("timed out");
        silent.Accepted.Should().BeGreaterThan(0);
        harness.Metrics.OcspRequests(OcspRequestResult.Timeout).Should().Be(1);
    }

    [Fact]
    public async Task OpensslResponse_PastNextUpdate_RejectedAsStale()
    {
        await StartOpensslAsync(extra: ["-nmin", "1"]);
        ManualTimeProvider clock = new(DateTimeOffset.UtcNow.AddMinutes(10));
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Ocsp;
            o.ClockSkew = TimeSpan.FromMinutes(5);
        }, clock);

        RevocationCheckResult result = await harness.CheckAsync(_pki.Chain(_revoked));

        result.Status.Should().Be(RevocationStatus.Unknown);
        harness.Logs.WithEventId(4010).Should().ContainSingle().Which.Message.Should().Contain("stale");
    }

    [Fact]
    public async Task ReplayedResponse_WrongNonce_Rejected()
    {
        await StartOpensslAsync(extra: ["-nmin", "5"]);
        await using LoopbackHttpServer replay = await LoopbackHttpServer.StartAsync();
        byte[] captured = await CaptureOpensslResponseAsync(_revoked);
        replay.Serve("/ocsp", captured, "application/ocsp-response");
        X509Certificate2 leaf = _revoked;
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Ocsp;
            o.UseNonce = true;
            o.PerAnchor[_pki.Root.Thumbprint] = new AnchorRevocationOptions { OcspResponder = new Uri(replay.Url("/ocsp")) };
        });

        RevocationCheckResult result = await harness.CheckAsync(_pki.Chain(leaf));

        result.Status.Should().Be(RevocationStatus.Unknown);
        harness.Logs.WithEventId(4010).Should().ContainSingle().Which.Message.Should().Contain("nonce does not match");

        // The same bytes are a fine answer about that certificate when the nonce matches.
        Action validate = () => OcspResponseParser.Validate(captured, _revoked, _pki.Intermediate, s_captureNonce, DateTimeOffset.UtcNow,
            TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(5));
        validate.Should().NotThrow();
    }

    [Fact]
    public async Task ReplayedResponse_ForAnotherCertificate_RejectedAsCertIdMismatch()
    {
        await StartOpensslAsync(extra: ["-nmin", "5"]);
        await using LoopbackHttpServer replay = await LoopbackHttpServer.StartAsync();
        replay.Serve("/ocsp", await CaptureOpensslResponseAsync(_good, nonce: false), "application/ocsp-response");
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Ocsp;
            o.UseNonce = false;
            o.PerAnchor[_pki.Root.Subject] = new AnchorRevocationOptions { OcspResponder = new Uri(replay.Url("/ocsp")) };
        });

        RevocationCheckResult result = await harness.CheckAsync(_pki.Chain(_revoked));

        result.Status.Should().Be(RevocationStatus.Unknown);
        result.Admit.Should().BeFalse();
        harness.Logs.WithEventId(4010).Should().ContainSingle().Which.Message.Should().Contain("CertID mismatch");
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("truncated")]
    [InlineData("tryLater")]
    [InlineData("http500")]
    public async Task HostileResponder_MalformedOrErrorAnswers_ClearLogNoCrash(string kind)
    {
        await using LoopbackHttpServer hostile = await LoopbackHttpServer.StartAsync();
        switch (kind)
        {
            case "garbage":
                hostile.Serve("/ocsp", RandomNumberGenerator.GetBytes(200), "application/ocsp-response");
                break;
            case "truncated":
                await StartOpensslAsync(extra: ["-nmin", "5"]);
                byte[] real = await CaptureOpensslResponseAsync(_good, nonce: false);
                hostile.Serve("/ocsp", real[..(real.Length / 2)], "application/ocsp-response");
                break;
            case "tryLater":
                hostile.Serve("/ocsp", OcspResponseBuilder.BuildError(OcspResponseStatus.TryLater), "application/ocsp-response");
                break;
            default:
                hostile.Fail("/ocsp", 500);
                break;
        }

        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Ocsp;
            o.UseNonce = false;
            o.PerAnchor[_pki.Root.Thumbprint] = new AnchorRevocationOptions { OcspResponder = new Uri(hostile.Url("/ocsp")) };
        });

        RevocationCheckResult result = await harness.CheckAsync(_pki.Chain(_good));

        result.Status.Should().Be(RevocationStatus.Unknown);
        result.Admit.Should().BeFalse();
        string expected = kind switch
        {
            "garbage" or "truncated" => "not valid DER",
            "tryLater" => "TryLater",
            _ => "HTTP 500",
        };
        harness.Logs.WithEventId(4010).Should().ContainSingle().Which.Message.Should().Contain(expected);
    }

    [Fact]
    public async Task ConcurrentColdLookups_ShareOneRequest()
    {
        await StartOpensslAsync(extra: ["-nmin", "5"]);
        await using LoopbackHttpServer proxy = await LoopbackHttpServer.StartAsync();
        TaskCompletionSource release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        using HttpClient http = new() { Timeout = TimeSpan.FromSeconds(15) };
        proxy.Handle("/ocsp", async context =>
        {
            await release.Task;
            using MemoryStream body = new();
            await context.Request.Body.CopyToAsync(body);
            using ByteArrayContent content = new(body.ToArray());
            content.Headers.ContentType = new("application/ocsp-request");
            using HttpResponseMessage response = await http.PostAsync(OcspUrl, content);
            context.Response.ContentType = "application/ocsp-response";
            await context.Response.Body.WriteAsync(await response.Content.ReadAsByteArrayAsync());
        });
        using RevocationHarness harness = new(o =>
        {
            o.Mode = RevocationMode.Ocsp;
            o.PerAnchor[_pki.Root.Thumbprint] = new AnchorRevocationOptions { OcspResponder = new Uri(proxy.Url("/ocsp")) };
        });

        Task<RevocationCheckResult>[] checks = Enumerable.Range(0, 8).Select(_ => harness.CheckAsync(_pki.Chain(_good))).ToArray();
        await WaitUntilAsync(() => proxy.Requests("/ocsp") >= 1);
        release.SetResult();
        RevocationCheckResult[] results = await Task.WhenAll(checks);

        results.Should().OnlyContain(r => r.Status == RevocationStatus.Good);
        proxy.Requests("/ocsp").Should().Be(1);
        harness.Metrics.OcspRequestsTotal.Should().Be(1);
    }

    private static readonly byte[] s_captureNonce = OcspRequest.EncodeNonce(Enumerable.Range(1, 16).Select(i => (byte)i).ToArray());

    /// <summary>Asks the openssl responder directly (our request builder, fixed nonce) and returns the raw response.</summary>
    private async Task<byte[]> CaptureOpensslResponseAsync(X509Certificate2 leaf, bool nonce = true)
    {
        OcspCertId id = OcspCertId.Create(leaf, _pki.Intermediate, HashAlgorithmName.SHA256);
        byte[] request = OcspRequest.Build(id, nonce ? Enumerable.Range(1, 16).Select(i => (byte)i).ToArray() : []);
        using HttpClient http = new() { Timeout = TimeSpan.FromSeconds(15) };
        using ByteArrayContent content = new(request);
        content.Headers.ContentType = new("application/ocsp-request");
        using HttpResponseMessage response = await http.PostAsync(OcspUrl, content);
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadAsByteArrayAsync();
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            DateTime.UtcNow.Should().BeBefore(deadline, "the condition should hold within 10 s");
            await Task.Delay(10);
        }
    }
}
