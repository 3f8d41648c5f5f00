using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using OmniBroker.Enrollment.Inventory;
using OmniBroker.Host.Configuration;

namespace OmniBroker.Host.Cli;

/// <summary>
/// <c>omnibroker pki token ...</c> makes a one-time EST enrollment token bound to a subject (stored hashed in the
/// inventory file, &lt;DataDirectory&gt;/certificates.db); <c>omnibroker pki list ...</c> prints the certificate
/// inventory (issued by EST or seen at CONNECT).
/// </summary>
public static class PkiEnrollmentCommands
{
    public static Command CreateToken()
    {
        var cn = new Option<string>("--cn") { Description = "Common name the certificate will carry", Required = true };
        var o = new Option<string>("--o") { Description = "Organization (O)", Required = true };
        var ou = new Option<string>("--ou") { Description = "Organizational unit (OU)", Required = true };
        var deviceType = new Option<string>("--device-type") { Description = "Device type (extension 1.3.6.1.4.1.59999.1.1)", Required = true };
        var country = new Option<string>("--c") { Description = "Country (C, default DE)", DefaultValueFactory = _ => "DE" };
        var locality = new Option<string>("--l") { Description = "Locality (L)" };
        var expires = new Option<string>("--expires") { Description = "Lifetime (30m, 24h, 7d) or an absolute UTC time (2026-12-31T00:00:00Z); default Est:TokenLifetimeHours" };
        var command = new Command("token", "Make a one-time EST enrollment token (HTTP Basic id:secret) bound to a subject.");
        foreach (var option in new Option[] { cn, o, ou, deviceType, country, locality, expires })
        {
            command.Options.Add(option);
        }
        PkiCommands.AddCommonOptions(command);
        command.SetAction(async parseResult =>
        {
            var output = CliCommands.Out(parseResult);
            var error = CliCommands.Error(parseResult);
            if (!TryOpen(parseResult, error, out var settings, out var store))
            {
                return CliCommands.ExitBadConfiguration;
            }
            await using (store!)
            {
                var now = DateTimeOffset.UtcNow;
                var expiresText = parseResult.GetValue(expires);
                DateTimeOffset until;
                if (expiresText is null)
                {
                    until = now.AddHours(settings!.Est.TokenLifetimeHours);
                }
                else if (!TryParseExpiry(expiresText, now, out until) || until <= now)
                {
                    error.WriteLine($"omnibroker: pki token: --expires '{expiresText}' must be a lifetime (30m, 24h, 7d) or a future UTC time");
                    return CliCommands.ExitBadConfiguration;
                }
                var subject = new EnrollmentTokenSubject(parseResult.GetValue(cn)!, parseResult.GetValue(o)!, parseResult.GetValue(ou)!,
                    parseResult.GetValue(deviceType)!, parseResult.GetValue(country), parseResult.GetValue(locality));
                var token = store!.Create(subject, until);
                output.WriteLine(token);
                error.WriteLine($"One-time token for CN={subject.CommonName}, OU={subject.OrganizationalUnit}, O={subject.Organization}, device type {subject.DeviceType}; expires {until:u}. Use it once as HTTP Basic credentials (curl -u '<token>').");
                return CliCommands.ExitOk;
            }
        });
        return command;
    }

    public static Command CreateList()
    {
        var expiring = new Option<int?>("--expiring-days") { Description = "Only certificates expiring within N days" };
        var status = new Option<string>("--status") { Description = "active, superseded or revoked" };
        var cn = new Option<string>("--cn") { Description = "Subject CN" };
        var o = new Option<string>("--o") { Description = "Subject O" };
        var ou = new Option<string>("--ou") { Description = "Subject OU" };
        var json = new Option<bool>("--json") { Description = "JSON output (as GET /api/certificates)" };
        var command = new Command("list", "List the certificate inventory: certificates issued over EST/MQTT and seen at CONNECT.");
        foreach (var option in new Option[] { expiring, status, cn, o, ou, json })
        {
            command.Options.Add(option);
        }
        PkiCommands.AddCommonOptions(command);
        command.SetAction(async parseResult =>
        {
            var output = CliCommands.Out(parseResult);
            var error = CliCommands.Error(parseResult);
            if (parseResult.GetValue(status) is { } s && s is not (CertificateStatus.Active or CertificateStatus.Superseded or CertificateStatus.Revoked))
            {
                error.WriteLine($"omnibroker: pki list: --status '{s}' must be active, superseded or revoked");
                return CliCommands.ExitBadConfiguration;
            }
            if (!TryOpen(parseResult, error, out _, out var store))
            {
                return CliCommands.ExitBadConfiguration;
            }
            await using (store!)
            {
                var rows = store!.Query(new CertificateQuery(parseResult.GetValue(expiring), parseResult.GetValue(status), parseResult.GetValue(cn),
                    parseResult.GetValue(o), parseResult.GetValue(ou), 100_000));
                if (parseResult.GetValue(json))
                {
                    output.WriteLine(JsonSerializer.Serialize(rows, new JsonSerializerOptions(JsonSerializerDefaults.Web) { WriteIndented = true }));
                    return CliCommands.ExitOk;
                }
                output.WriteLine($"{"SERIAL",-34} {"STATUS",-10} {"NOT AFTER",-20} {"VIA",-10} {"LAST SEEN",-20} SUBJECT");
                foreach (var row in rows)
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{row.Serial,-34} {row.Status,-10} {row.NotAfter:yyyy-MM-dd HH:mm:ss}  {row.IssuedVia ?? "seen",-10} {(row.LastSeen is { } seen ? seen.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) : "-"),-20} {row.Subject}"));
                }
                output.WriteLine($"{rows.Count} certificate(s)");
                return CliCommands.ExitOk;
            }
        });
        return command;
    }

    private static bool TryOpen(ParseResult parseResult, TextWriter error, out BrokerSettings? settings, out SqliteCertificateStore? store)
    {
        settings = null;
        store = null;
        try
        {
            var configuration = BrokerConfiguration.Build(ServeCommand.ConfigurationArguments(parseResult));
            var errors = new List<string>();
            var est = OmniBroker.Enrollment.EstOptions.Load(configuration, errors);
            if (errors.Count > 0)
            {
                throw new BrokerConfigurationException(errors);
            }
            var dataDirectory = BrokerSettings.ReadDataDirectory(configuration);
            settings = new BrokerSettings { MqttAddress = System.Net.IPAddress.Any, MqttPort = 0, Mqtt = new(), DataDirectory = dataDirectory, Est = est };
            store = new SqliteCertificateStore(Enrollment.EstHostExtensions.InventoryPath(settings));
            return true;
        }
        catch (BrokerConfigurationException ex)
        {
            error.WriteLine($"omnibroker: {ex.Message}");
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            error.WriteLine($"omnibroker: {ex.Message}");
        }
        return false;
    }

    private static bool TryParseExpiry(string text, DateTimeOffset now, out DateTimeOffset until)
    {
        until = default;
        if (text.Length >= 2 && double.TryParse(text[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var amount) && amount > 0)
        {
            TimeSpan? span = text[^1] switch { 'm' => TimeSpan.FromMinutes(amount), 'h' => TimeSpan.FromHours(amount), 'd' => TimeSpan.FromDays(amount), _ => null };
            if (span is { } s)
            {
                until = now + s;
                return true;
            }
        }
        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out until);
    }
}
