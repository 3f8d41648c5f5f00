using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading.Channels;
using Microsoft.Data.Sqlite;

namespace OmniBroker.Enrollment.Inventory;

/// <summary>
/// The inventory and the enrollment tokens in one SQLite file (default &lt;DataDirectory&gt;/certificates.db, WAL).
/// One connection behind a lock: writes are tiny and SQLite serialises writers anyway. CONNECT sightings are
/// queued and written in batches off the connection's thread; inactive (superseded/revoked) serials are also held
/// in memory so CONNECT never waits for the file.
/// </summary>
public sealed class SqliteCertificateStore : ICertificateInventory, IEnrollmentTokenStore, IAsyncDisposable
{
    private const string Schema = """
        PRAGMA journal_mode=WAL;
        PRAGMA synchronous=NORMAL;
        CREATE TABLE IF NOT EXISTS certificates (
            serial TEXT PRIMARY KEY, subject TEXT NOT NULL, cn TEXT NOT NULL, o TEXT, ou TEXT, issuer TEXT NOT NULL,
            not_before TEXT NOT NULL, not_after TEXT NOT NULL, status TEXT NOT NULL, issued_via TEXT, issued_at TEXT,
            first_seen TEXT, last_seen TEXT, client_ids TEXT NOT NULL DEFAULT '', superseded_by TEXT, superseded_at TEXT);
        CREATE INDEX IF NOT EXISTS certificates_not_after ON certificates(not_after);
        CREATE INDEX IF NOT EXISTS certificates_cn ON certificates(cn);
        CREATE TABLE IF NOT EXISTS tokens (
            id TEXT PRIMARY KEY, secret_sha256 TEXT NOT NULL, cn TEXT NOT NULL, o TEXT NOT NULL, ou TEXT NOT NULL,
            device_type TEXT NOT NULL, c TEXT, l TEXT, created_at TEXT NOT NULL, expires_at TEXT NOT NULL, used_at TEXT);
        """;

    private readonly SqliteConnection _connection;
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, (string Status, DateTimeOffset? Since, string? SupersededBy)> _inactive = new(StringComparer.Ordinal);
    private readonly Channel<(X509Certificate2 Certificate, string ClientId, DateTimeOffset At)> _seen =
        Channel.CreateBounded<(X509Certificate2, string, DateTimeOffset)>(new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    private readonly Task _seenWriter;

    public SqliteCertificateStore(string path, TimeProvider? time = null)
    {
        Path = System.IO.Path.GetFullPath(path);
        _time = time ?? TimeProvider.System;
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path, Pooling = false }.ToString());
        try
        {
            _connection.Open();
            Execute(Schema);
            using var command = Command("SELECT serial, status, superseded_at, superseded_by FROM certificates WHERE status <> 'active'");
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                _inactive[reader.GetString(0)] = (reader.GetString(1), reader.IsDBNull(2) ? null : Parse(reader.GetString(2)), reader.IsDBNull(3) ? null : reader.GetString(3));
            }
        }
        catch (SqliteException ex)
        {
            _connection.Dispose();
            throw new InvalidDataException($"{Path}: not a usable certificate inventory ({ex.Message})", ex);
        }
        _seenWriter = Task.Run(WriteSeenAsync);
    }

    public string Path { get; }

    public void RecordIssued(X509Certificate2 certificate, string via, X509Certificate2? supersedes)
    {
        var now = Text(_time.GetUtcNow());
        lock (_lock)
        {
            using var transaction = _connection.BeginTransaction();
            using (var insert = Command("""
                INSERT INTO certificates (serial, subject, cn, o, ou, issuer, not_before, not_after, status, issued_via, issued_at)
                VALUES ($serial, $subject, $cn, $o, $ou, $issuer, $nb, $na, 'active', $via, $now)
                ON CONFLICT(serial) DO UPDATE SET issued_via = $via, issued_at = $now
                """, transaction))
            {
                AddCertificate(insert, certificate);
                insert.Parameters.AddWithValue("$via", via);
                insert.Parameters.AddWithValue("$now", now);
                insert.ExecuteNonQuery();
            }
            if (supersedes is not null)
            {
                // The old certificate may not be known yet (issued elsewhere, never seen): add it as superseded.
                using var update = Command("""
                    INSERT INTO certificates (serial, subject, cn, o, ou, issuer, not_before, not_after, status, superseded_by, superseded_at)
                    VALUES ($serial, $subject, $cn, $o, $ou, $issuer, $nb, $na, 'superseded', $by, $now)
                    ON CONFLICT(serial) DO UPDATE SET status = 'superseded', superseded_by = $by, superseded_at = $now WHERE status = 'active'
                    """, transaction);
                AddCertificate(update, supersedes);
                update.Parameters.AddWithValue("$by", certificate.SerialNumber);
                update.Parameters.AddWithValue("$now", now);
                update.ExecuteNonQuery();
            }
            transaction.Commit();
        }
        if (supersedes is not null)
        {
            _inactive[supersedes.SerialNumber] = (CertificateStatus.Superseded, _time.GetUtcNow(), certificate.SerialNumber);
        }
    }

    public void RecordSeen(X509Certificate2 certificate, string clientId) => _seen.Writer.TryWrite((certificate, clientId, _time.GetUtcNow()));

    public (string Status, DateTimeOffset? Since, string? SupersededBy)? FindInactive(string serial) =>
        _inactive.TryGetValue(serial, out var value) ? value : null;

    public void MarkRevoked(string serial)
    {
        lock (_lock)
        {
            using var update = Command("UPDATE certificates SET status = 'revoked' WHERE serial = $serial");
            update.Parameters.AddWithValue("$serial", serial);
            update.ExecuteNonQuery();
        }
        _inactive[serial] = (CertificateStatus.Revoked, _time.GetUtcNow(), null);
    }

    public CertificateRecord? Find(string serial)
    {
        lock (_lock)
        {
            using var command = Command("SELECT * FROM certificates WHERE serial = $serial");
            command.Parameters.AddWithValue("$serial", serial.ToUpperInvariant());
            using var reader = command.ExecuteReader();
            return reader.Read() ? Read(reader) : null;
        }
    }

    public IReadOnlyList<CertificateRecord> Query(CertificateQuery query)
    {
        var sql = new StringBuilder("SELECT * FROM certificates WHERE 1=1");
        lock (_lock)
        {
            using var command = _connection.CreateCommand();
            if (query.ExpiringWithinDays is { } days)
            {
                sql.Append(" AND not_after <= $before");
                command.Parameters.AddWithValue("$before", Text(_time.GetUtcNow().AddDays(days)));
            }
            Filter(sql, command, "status", query.Status);
            Filter(sql, command, "cn", query.CommonName);
            Filter(sql, command, "o", query.Organization);
            if (query.OrganizationalUnit is not null)
            {
                sql.Append(" AND (',' || ou || ',') LIKE $ou");
                command.Parameters.AddWithValue("$ou", "%," + query.OrganizationalUnit.Replace("%", "", StringComparison.Ordinal) + ",%");
            }
            sql.Append(" ORDER BY not_after, serial LIMIT $limit");
            command.Parameters.AddWithValue("$limit", query.Limit);
            command.CommandText = sql.ToString();
            using var reader = command.ExecuteReader();
            var result = new List<CertificateRecord>();
            while (reader.Read())
            {
                result.Add(Read(reader));
            }
            return result;
        }
    }

    public (IReadOnlyDictionary<string, long> ByStatus, long Expiring) Summary(int days)
    {
        lock (_lock)
        {
            var byStatus = new Dictionary<string, long>(StringComparer.Ordinal)
            {
                [CertificateStatus.Active] = 0, [CertificateStatus.Superseded] = 0, [CertificateStatus.Revoked] = 0,
            };
            using (var command = Command("SELECT status, COUNT(*) FROM certificates GROUP BY status"))
            using (var reader = command.ExecuteReader())
            {
                while (reader.Read())
                {
                    byStatus[reader.GetString(0)] = reader.GetInt64(1);
                }
            }
            using var expiring = Command("SELECT COUNT(*) FROM certificates WHERE status = 'active' AND not_after <= $before");
            expiring.Parameters.AddWithValue("$before", Text(_time.GetUtcNow().AddDays(days)));
            return (byStatus, (long)expiring.ExecuteScalar()!);
        }
    }

    public string Create(EnrollmentTokenSubject subject, DateTimeOffset expires)
    {
        var id = Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant();
        var secret = Base64Url(RandomNumberGenerator.GetBytes(24));
        lock (_lock)
        {
            using var insert = Command("""
                INSERT INTO tokens (id, secret_sha256, cn, o, ou, device_type, c, l, created_at, expires_at)
                VALUES ($id, $hash, $cn, $o, $ou, $type, $c, $l, $now, $expires)
                """);
            insert.Parameters.AddWithValue("$id", id);
            insert.Parameters.AddWithValue("$hash", Hash(secret));
            insert.Parameters.AddWithValue("$cn", subject.CommonName);
            insert.Parameters.AddWithValue("$o", subject.Organization);
            insert.Parameters.AddWithValue("$ou", subject.OrganizationalUnit);
            insert.Parameters.AddWithValue("$type", subject.DeviceType);
            insert.Parameters.AddWithValue("$c", (object?)subject.Country ?? DBNull.Value);
            insert.Parameters.AddWithValue("$l", (object?)subject.Locality ?? DBNull.Value);
            insert.Parameters.AddWithValue("$now", Text(_time.GetUtcNow()));
            insert.Parameters.AddWithValue("$expires", Text(expires));
            insert.ExecuteNonQuery();
        }
        return id + ":" + secret;
    }

    public bool TryPeek(string id, string secret, out EnrollmentTokenSubject? subject, out string reason) => Check(id, secret, consume: false, out subject, out reason);

    public bool TryConsume(string id, string secret, out EnrollmentTokenSubject? subject, out string reason) => Check(id, secret, consume: true, out subject, out reason);

    private bool Check(string id, string secret, bool consume, out EnrollmentTokenSubject? subject, out string reason)
    {
        subject = null;
        lock (_lock)
        {
            using var select = Command("SELECT secret_sha256, cn, o, ou, device_type, c, l, expires_at, used_at FROM tokens WHERE id = $id");
            select.Parameters.AddWithValue("$id", id);
            using (var reader = select.ExecuteReader())
            {
                if (!reader.Read() || !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(reader.GetString(0)), Encoding.ASCII.GetBytes(Hash(secret))))
                {
                    reason = "unknown enrollment token";
                    return false;
                }
                if (!reader.IsDBNull(8))
                {
                    reason = $"enrollment token {id} was already used at {reader.GetString(8)}";
                    return false;
                }
                if (Parse(reader.GetString(7)) <= _time.GetUtcNow())
                {
                    reason = $"enrollment token {id} expired at {reader.GetString(7)}";
                    return false;
                }
                subject = new EnrollmentTokenSubject(reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4),
                    reader.IsDBNull(5) ? null : reader.GetString(5), reader.IsDBNull(6) ? null : reader.GetString(6));
            }
            if (consume)
            {
                // Under the lock and conditional on used_at: a token is used exactly once even with racing requests.
                using var use = Command("UPDATE tokens SET used_at = $now WHERE id = $id AND used_at IS NULL");
                use.Parameters.AddWithValue("$now", Text(_time.GetUtcNow()));
                use.Parameters.AddWithValue("$id", id);
                if (use.ExecuteNonQuery() != 1)
                {
                    subject = null;
                    reason = $"enrollment token {id} was already used";
                    return false;
                }
            }
        }
        reason = "";
        return true;
    }

    private async Task WriteSeenAsync()
    {
        var batch = new List<(X509Certificate2 Certificate, string ClientId, DateTimeOffset At)>();
        while (await _seen.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (batch.Count < 500 && _seen.Reader.TryRead(out var item))
            {
                batch.Add(item);
            }
            lock (_lock)
            {
                using var transaction = _connection.BeginTransaction();
                foreach (var (certificate, clientId, at) in batch)
                {
                    using var upsert = Command("""
                        INSERT INTO certificates (serial, subject, cn, o, ou, issuer, not_before, not_after, status, first_seen, last_seen, client_ids)
                        VALUES ($serial, $subject, $cn, $o, $ou, $issuer, $nb, $na, 'active', $at, $at, $client)
                        ON CONFLICT(serial) DO UPDATE SET first_seen = COALESCE(first_seen, $at), last_seen = $at,
                            client_ids = CASE WHEN (',' || client_ids || ',') LIKE ('%,' || $client || ',%') THEN client_ids
                                              WHEN client_ids = '' THEN $client ELSE client_ids || ',' || $client END
                        """, transaction);
                    AddCertificate(upsert, certificate);
                    upsert.Parameters.AddWithValue("$at", Text(at));
                    upsert.Parameters.AddWithValue("$client", clientId.Replace(",", "%2C", StringComparison.Ordinal));
                    upsert.ExecuteNonQuery();
                }
                transaction.Commit();
            }
            batch.Clear();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _seen.Writer.TryComplete();
        await _seenWriter.ConfigureAwait(false);
        lock (_lock)
        {
            _connection.Dispose();
        }
    }

    private static void AddCertificate(SqliteCommand command, X509Certificate2 certificate)
    {
        command.Parameters.AddWithValue("$serial", certificate.SerialNumber);
        command.Parameters.AddWithValue("$subject", certificate.Subject);
        command.Parameters.AddWithValue("$cn", certificate.GetNameInfo(X509NameType.SimpleName, false));
        command.Parameters.AddWithValue("$o", NamePart(certificate.SubjectName, "2.5.4.10"));
        command.Parameters.AddWithValue("$ou", NamePart(certificate.SubjectName, "2.5.4.11"));
        command.Parameters.AddWithValue("$issuer", certificate.Issuer);
        command.Parameters.AddWithValue("$nb", Text(new DateTimeOffset(certificate.NotBefore.ToUniversalTime())));
        command.Parameters.AddWithValue("$na", Text(new DateTimeOffset(certificate.NotAfter.ToUniversalTime())));
    }

    private static string NamePart(X500DistinguishedName name, string oid) => string.Join(",", name.EnumerateRelativeDistinguishedNames()
        .Where(r => !r.HasMultipleElements && r.GetSingleElementType().Value == oid)
        .Select(r => r.GetSingleElementValue() ?? ""));

    private static CertificateRecord Read(SqliteDataReader r)
    {
        string? S(string column) => r.IsDBNull(r.GetOrdinal(column)) ? null : r.GetString(r.GetOrdinal(column));
        DateTimeOffset? D(string column) => S(column) is { } text ? Parse(text) : null;
        return new CertificateRecord(S("serial")!, S("subject")!, S("cn")!, S("issuer")!, D("not_before")!.Value, D("not_after")!.Value,
            S("status")!, S("issued_via"), D("issued_at"), D("first_seen"), D("last_seen"),
            (S("client_ids") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries), S("superseded_by"), D("superseded_at"));
    }

    private static void Filter(StringBuilder sql, SqliteCommand command, string column, string? value)
    {
        if (value is not null)
        {
            sql.Append(CultureInfo.InvariantCulture, $" AND {column} = ${column}");
            command.Parameters.AddWithValue("$" + column, value);
        }
    }

    private SqliteCommand Command(string sql, SqliteTransaction? transaction = null)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        return command;
    }

    private void Execute(string sql)
    {
        using var command = Command(sql);
        command.ExecuteNonQuery();
    }

    // ISO 8601 UTC with a fixed width: compares correctly as text.
    private static string Text(DateTimeOffset value) => value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private static DateTimeOffset Parse(string text) => DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    private static string Hash(string secret) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
