using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace OmniBroker.Cluster.Replica;

/// <summary>
/// The JetStream side of the session replica: stream <c>OMNI_SESSIONS</c>, one subject per client
/// (<c>omni.sessions.{sha256(client id)}</c>). Every entry names the node that wrote it (header <c>Omni-Owner</c>) and
/// is published with the subject's last sequence as expected by the writer (<c>Nats-Expected-Last-Subject-Sequence</c>):
/// that sequence is the fencing token. A node whose session was taken over by another node (which wrote a rollup
/// since) gets "wrong last sequence" and writes nothing more. A rollup (<c>Nats-Rollup: sub</c>) replaces the subject's
/// earlier entries, which keeps a session's history as long as its live state.
/// </summary>
internal sealed class ReplicaStream(INatsJSContext js, string nodeId, int replicas)
{
    public const string StreamName = "OMNI_SESSIONS";
    public const string OwnerHeader = "Omni-Owner";
    public const string ClaimHeader = "Omni-Claim";
    private const int WrongLastSequence = 10071;
    private long _messageIds;
    private readonly string _idPrefix = nodeId + "-" + Guid.NewGuid().ToString("N")[..12] + "-";

    public static string Subject(string clientId) => "omni.sessions." + ClusterNames.Hash(clientId);

    // The stream's handle, fetched once: every write of a client not yet written in this run asks for its last entry.
    private INatsJSStream? _stream;

    public async Task EnsureAsync(CancellationToken cancellationToken) =>
        _stream = await js.CreateOrUpdateStreamAsync(new StreamConfig(StreamName, ["omni.sessions.>"])
        {
            Storage = StreamConfigStorage.File,
            NumReplicas = replicas,
            AllowRollupHdrs = true,
            DuplicateWindow = TimeSpan.FromMinutes(2),
        }, cancellationToken).ConfigureAwait(false);

    /// <summary>A new message id: a retry of the same entry keeps its id (JetStream's duplicate window drops a second
    /// copy whose first attempt was stored after all).</summary>
    public string NextMessageId() => _idPrefix + Interlocked.Increment(ref _messageIds).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The subject's last sequence, the node that wrote it and the client-id claim (revision in the
    /// <c>omni_clients</c> bucket) it wrote under; (0, null, 0) when the subject is empty.</summary>
    public async Task<(ulong Sequence, string? Owner, ulong Claim)> LastAsync(string clientId, CancellationToken cancellationToken)
    {
        try
        {
            var stream = _stream ??= await js.GetStreamAsync(StreamName, cancellationToken: cancellationToken).ConfigureAwait(false);
            var last = await stream.GetAsync(new StreamMsgGetRequest { LastBySubj = Subject(clientId) }, cancellationToken).ConfigureAwait(false);
            var owner = Header(last.Message.Hdrs, OwnerHeader);
            _ = ulong.TryParse(Header(last.Message.Hdrs, ClaimHeader), System.Globalization.NumberStyles.None,
                System.Globalization.CultureInfo.InvariantCulture, out var claim);
            return (last.Message.Seq, owner, claim);
        }
        catch (NatsJSApiException ex) when (ex.Error.Code == 404)
        {
            return (0, null, 0);
        }
    }

    /// <summary>Publishes one entry expecting <paramref name="expectedLast"/>; the stored sequence, or null when the
    /// subject moved on (another node wrote: fenced). Other failures throw (NATS down, no stream leader).</summary>
    public async Task<ulong?> PublishAsync(string clientId, byte[] entry, bool rollup, ulong expectedLast, ulong claim, string messageId,
        CancellationToken cancellationToken)
    {
        var headers = new NatsHeaders { [OwnerHeader] = nodeId, [ClaimHeader] = claim.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        if (rollup)
        {
            headers["Nats-Rollup"] = "sub";
        }
        var ack = await js.PublishAsync(Subject(clientId), entry, headers: headers,
            opts: new NatsJSPubOpts { MsgId = messageId, ExpectedLastSubjectSequence = expectedLast }, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (ack.Error is { } error)
        {
            if (error.ErrCode == WrongLastSequence)
            {
                return null;
            }
            throw new NatsJSApiException(error);
        }
        return ack.Seq;
    }

    /// <summary>Every entry of the client's subject, in order, with the writer of the last one; each entry's bytes.</summary>
    public async Task<(List<byte[]> Entries, string? Owner, ulong LastSequence)> ReadAsync(string clientId, CancellationToken cancellationToken)
    {
        var entries = new List<byte[]>();
        var (last, owner, _) = await LastAsync(clientId, cancellationToken).ConfigureAwait(false);
        if (last == 0)
        {
            return (entries, null, 0);
        }
        var consumer = await js.CreateOrderedConsumerAsync(StreamName, new NatsJSOrderedConsumerOpts { FilterSubjects = [Subject(clientId)] },
            cancellationToken).ConfigureAwait(false);
        ulong seen = 0;
        while (seen < last)
        {
            var any = false;
            await foreach (var message in consumer.FetchNoWaitAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = 1000 }, cancellationToken: cancellationToken)
                .ConfigureAwait(false))
            {
                any = true;
                seen = message.Metadata?.Sequence.Stream ?? seen;
                if (seen > last)
                {
                    // Written after we looked: read again from the start for a consistent view.
                    return await ReadAsync(clientId, cancellationToken).ConfigureAwait(false);
                }
                entries.Add(message.Data ?? []);
            }
            if (!any)
            {
                break;
            }
        }
        return (entries, owner, last);
    }

    /// <summary>A header of a message read through the stream API: the NATS header block
    /// (<c>NATS/1.0</c>, then <c>Name: value</c> lines), base64-encoded in the API's JSON.</summary>
    private static string? Header(string? headers, string name)
    {
        if (string.IsNullOrEmpty(headers))
        {
            return null;
        }
        var buffer = new byte[headers.Length];
        var text = Convert.TryFromBase64String(headers, buffer, out var length)
            ? System.Text.Encoding.UTF8.GetString(buffer, 0, length)
            : headers;
        foreach (var line in text.Split("\r\n"))
        {
            if (line.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase))
            {
                return line[(name.Length + 1)..].Trim();
            }
        }
        return null;
    }
}
