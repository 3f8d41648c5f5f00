using System.CommandLine;
using System.Globalization;
using OmniBroker.Auth.Pki;
using OmniBroker.Host.Configuration;

namespace OmniBroker.Host.Cli;

/// <summary><c>omnibroker pki ...</c>: the development PKI in &lt;DataDirectory&gt;/pki. Subcommands of other
/// features (revoke) are added in <see cref="CliCommands.Create"/>.</summary>
public static class PkiCommands
{
    public static Command Create()
    {
        var pki = new Command("pki", "Development PKI in <DataDirectory>/pki (created on first use).");
        pki.Subcommands.Add(CreateIssue());
        return pki;
    }

    /// <summary>Opens (creating if needed) the development PKI of the configuration given by a pki subcommand's
    /// --data-dir/--http-url options and unmatched --Key=value tokens. For other pki subcommands (revoke).</summary>
    /// <exception cref="BrokerConfigurationException">bad configuration.</exception>
    public static DevelopmentPki OpenDevelopmentPki(ParseResult parseResult, out bool created)
    {
        var configuration = BrokerConfiguration.Build(ServeCommand.ConfigurationArguments(parseResult));
        var errors = new List<string>();
        var dataDirectory = BrokerSettings.ReadDataDirectory(configuration);
        var httpUrl = configuration[BrokerSettings.HttpUrlKey] ?? BrokerSettings.DefaultHttpUrl;
        var http = string.IsNullOrWhiteSpace(httpUrl) ? null : HttpListenerSettings.Parse(httpUrl.Trim(), BrokerSettings.HttpUrlKey, errors);
        if (errors.Count > 0)
        {
            throw new BrokerConfigurationException(errors);
        }
        try
        {
            return DevelopmentPki.LoadOrCreate(Path.Combine(dataDirectory, "pki"), http?.PublicBaseUrl ?? new Uri(BrokerSettings.DefaultHttpUrl), out created);
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or InvalidOperationException or UnauthorizedAccessException)
        {
            throw new BrokerConfigurationException([$"{BrokerSettings.DataDirectoryKey}: development PKI in {Path.Combine(dataDirectory, "pki")} cannot be used: {ex.Message}"]);
        }
    }

    /// <summary>Adds the options every pki subcommand shares (--data-dir, --http-url) and lets --Key=value through.</summary>
    public static void AddCommonOptions(Command command)
    {
        command.Options.Add(new Option<string>("--data-dir") { Description = "Data directory (DataDirectory; default ./data)" });
        command.Options.Add(new Option<string>("--http-url") { Description = "HTTP listener URL baked into CRL/OCSP URLs when the PKI is created" });
        command.TreatUnmatchedTokensAsErrors = false;
    }

    private static Command CreateIssue()
    {
        var cn = new Option<string>("--cn") { Description = "Common name (also the file name: devices/<cn>.crt/.key)", Required = true };
        var o = new Option<string>("--o") { Description = "Organization (O)", Required = true };
        var ou = new Option<string>("--ou") { Description = "Organizational unit (OU)", Required = true };
        var deviceType = new Option<string>("--device-type") { Description = "Device type (extension 1.3.6.1.4.1.59999.1.1)", Required = true };
        var days = new Option<int>("--days") { Description = "Validity in days (default 365)", DefaultValueFactory = _ => 365 };
        var locality = new Option<string>("--l") { Description = "Locality (L)" };
        var country = new Option<string>("--c") { Description = "Country (C, default DE)", DefaultValueFactory = _ => "DE" };
        var uris = new Option<string[]>("--uri") { Description = "Extra SAN URI (repeatable)", AllowMultipleArgumentsPerToken = false };

        var command = new Command("issue", "Issue a device certificate (clientAuth, 1 year) signed by the development intermediate CA.");
        foreach (var option in new Option[] { cn, o, ou, deviceType, days, locality, country, uris })
        {
            command.Options.Add(option);
        }
        AddCommonOptions(command);
        command.SetAction(parseResult =>
        {
            var output = CliCommands.Out(parseResult);
            var error = CliCommands.Error(parseResult);
            DevelopmentPki pki;
            bool created;
            try
            {
                pki = OpenDevelopmentPki(parseResult, out created);
            }
            catch (BrokerConfigurationException ex)
            {
                error.WriteLine($"omnibroker: {ex.Message}");
                return CliCommands.ExitBadConfiguration;
            }

            using (pki)
            {
                if (created)
                {
                    output.WriteLine($"Created the development PKI in {pki.Directory}");
                }
                var request = new DeviceCertificateRequest(parseResult.GetValue(cn)!, parseResult.GetValue(o)!, parseResult.GetValue(ou)!, parseResult.GetValue(deviceType)!)
                {
                    Days = parseResult.GetValue(days),
                    Locality = string.IsNullOrWhiteSpace(parseResult.GetValue(locality)) ? null : parseResult.GetValue(locality),
                    Country = string.IsNullOrWhiteSpace(parseResult.GetValue(country)) ? null : parseResult.GetValue(country),
                    Uris = parseResult.GetValue(uris) ?? [],
                };
                IssuedCertificate issued;
                try
                {
                    issued = pki.IssueDevice(request);
                }
                catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or IOException)
                {
                    error.WriteLine($"omnibroker: pki issue: {ex.Message}");
                    return CliCommands.ExitBadConfiguration;
                }
                output.WriteLine($"Issued {issued.Subject}");
                output.WriteLine($"  serial:      {issued.Serial}");
                output.WriteLine($"  not after:   {issued.NotAfter.ToString("u", CultureInfo.InvariantCulture)}");
                output.WriteLine($"  certificate: {pki.GetDeviceCertificatePath(request.CommonName)} (with the intermediate CA)");
                output.WriteLine($"  key:         {pki.GetDeviceKeyPath(request.CommonName)}");
                output.WriteLine($"  CA bundle:   {pki.CaChainPath}");
                return CliCommands.ExitOk;
            }
        });
        return command;
    }
}
