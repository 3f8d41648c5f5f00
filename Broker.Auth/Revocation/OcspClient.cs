using System.Diagnostics;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace OmniBroker.Auth.Revocation;

/// <summary>Outcome of one OCSP exchange: a validated <see cref="Answer"/>, or why there is none.</summary>
internal sealed record OcspLookup(OcspRequestResult Result, OcspAnswer? Answer, string? Error, Uri Responder)
{
    public bool Succeeded => Answer is not null;
}

/// <summary>
/// Asks an OCSP responder about one certificate (RFC 6960 Appendix A: POST application/ocsp-request, or GET
/// with the URL-encoded base64 request appended to the responder URL). Each exchange is bounded by
/// <see cref="RevocationOptions.OcspTimeout"/>; failures are returned, never thrown.
/// </summary>
internal sealed class OcspClient
{
    internal const int MaxResponseBytes = 64 * 1024;

    // RFC 5019 §5: GET only while the encoded request stays short enough for caches and proxies.
    private const int MaxGetRequestChars = 255;

    private readonly HttpClient _http;
    private readonly RevocationOptions _options;
    private readonly RevocationMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;

    public OcspClient(HttpClient http, RevocationOptions options, RevocationMetrics metrics, ILogger logger, TimeProvider time)
    {
        _http = http;
        _options = options;
        _metrics = metrics;
        _logger = logger;
        _time = time;
    }

    public async Task<OcspLookup> QueryAsync(Uri responder, X509Certificate2 certificate, X509Certificate2 issuer, CancellationToken cancellationToken)
    {
        HashAlgorithmName hash = _options.HashAlgorithm == OcspHashAlgorithm.Sha1 ? HashAlgorithmName.SHA1 : HashAlgorithmName.SHA256;
        OcspCertId certId = OcspCertId.Create(certificate, issuer, hash);
        byte[] nonce = _options.UseNonce ? RandomNumberGenerator.GetBytes(16) : [];
        byte[]? nonceExtension = _options.UseNonce ? OcspRequest.EncodeNonce(nonce) : null;
        byte[] request = OcspRequest.Build(certId, nonce);
        string serial = certId.SerialHex;

        long started = Stopwatch.GetTimestamp();
        using CancellationTokenSource timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.OcspTimeout);
        OcspLookup lookup;
        try
        {
            using HttpResponseMessage response = await SendAsync(responder, request, timeout.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                lookup = new OcspLookup(OcspRequestResult.HttpError, null, $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}", responder);
            }
            else
            {
                byte[] body = await HttpBodyReader.ReadLimitedAsync(response.Content, MaxResponseBytes, timeout.Token).ConfigureAwait(false);
                OcspAnswer answer = OcspResponseParser.Validate(body, certificate, issuer, nonceExtension, _time.GetUtcNow(),
                    _options.ClockSkew, _options.OcspCacheTtl);
                OcspRequestResult result = answer.Status switch
                {
                    OcspCertStatus.Good => OcspRequestResult.Good,
                    OcspCertStatus.Revoked => OcspRequestResult.Revoked,
                    _ => OcspRequestResult.Unknown,
                };
                lookup = new OcspLookup(result, answer, null, responder);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            lookup = new OcspLookup(OcspRequestResult.Timeout, null, $"no answer within {_options.OcspTimeout.TotalMilliseconds:0} ms (timed out)", responder);
        }
        catch (HttpRequestException ex)
        {
            lookup = new OcspLookup(OcspRequestResult.NetworkError, null, ex.Message, responder);
        }
        catch (IOException ex)
        {
            lookup = new OcspLookup(OcspRequestResult.NetworkError, null, ex.Message, responder);
        }
        catch (RevocationFormatException ex)
        {
            lookup = new OcspLookup(OcspRequestResult.InvalidResponse, null, ex.Message, responder);
        }

        TimeSpan latency = Stopwatch.GetElapsedTime(started);
        _metrics.OcspRequest(lookup.Result, latency);
        if (lookup.Answer is { } a)
        {
            RevocationLog.OcspAnswered(_logger, responder.ToString(), serial, a.Status, a.ThisUpdate, a.NextUpdate, (long)latency.TotalMilliseconds);
        }
        else
        {
            RevocationLog.OcspFailed(_logger, responder.ToString(), serial, lookup.Result, lookup.Error ?? "");
        }

        return lookup;
    }

    /// <summary>
    /// Sends once more, within the same deadline, when the first send fails: simple responders (openssl ocsp among
    /// them) close a connection after one answer, and a pooled connection may be found dead only when reused.
    /// An OCSP request has no side effects, so repeating it is safe.
    /// </summary>
    private async Task<HttpResponseMessage> SendAsync(Uri responder, byte[] request, CancellationToken cancellationToken)
    {
        try
        {
            using HttpRequestMessage first = CreateMessage(responder, request);
            return await _http.SendAsync(first, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException)
        {
            using HttpRequestMessage second = CreateMessage(responder, request);
            return await _http.SendAsync(second, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
    }

    private HttpRequestMessage CreateMessage(Uri responder, byte[] request)
    {
        if (_options.RequestMethod == OcspRequestMethod.Get)
        {
            string encoded = Uri.EscapeDataString(Convert.ToBase64String(request));
            if (encoded.Length <= MaxGetRequestChars)
            {
                string baseUrl = responder.ToString();
                string url = baseUrl.EndsWith('/') ? baseUrl + encoded : baseUrl + "/" + encoded;
                HttpRequestMessage get = new(HttpMethod.Get, url);
                get.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/ocsp-response"));
                return get;
            }
        }

        HttpRequestMessage post = new(HttpMethod.Post, responder)
        {
            Content = new ByteArrayContent(request),
        };
        post.Content.Headers.ContentType = new MediaTypeHeaderValue("application/ocsp-request");
        post.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/ocsp-response"));
        return post;
    }
}

internal static class HttpBodyReader
{
    /// <summary>Reads at most <paramref name="limit"/> bytes; a larger body is an error, not a truncation.</summary>
    public static async Task<byte[]> ReadLimitedAsync(HttpContent content, int limit, CancellationToken cancellationToken)
    {
        if (content.Headers.ContentLength is long declared && declared > limit)
        {
            throw new RevocationFormatException($"response of {declared} bytes exceeds the {limit}-byte limit");
        }

        using Stream stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        using MemoryStream buffer = new();
        byte[] chunk = new byte[16 * 1024];
        int read;
        while ((read = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + read > limit)
            {
                throw new RevocationFormatException($"response exceeds the {limit}-byte limit");
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    public static HttpClient CreateClient()
    {
        SocketsHttpHandler handler = new()
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            AllowAutoRedirect = true,
            MaxAutomaticRedirections = 3,
            AutomaticDecompression = System.Net.DecompressionMethods.None,
        };
        HttpClient client = new(handler) { Timeout = Timeout.InfiniteTimeSpan };
        client.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("OmniBroker", "1.0"));
        return client;
    }
}
