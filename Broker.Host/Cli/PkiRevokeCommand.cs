using System.CommandLine;
using System.Security.Cryptography.X509Certificates;
using OmniBroker.Auth.Pki;
using OmniBroker.Host.Configuration;

namespace OmniBroker.Host.Cli;

/// <summary>
/// <c>omnibroker pki revoke (--serial S | --cn CN) [--reason R] [--data-dir D]</c>: marks a development PKI
/// certificate revoked in pki/index.json and regenerates its CA's CRL (cRLNumber + 1). A running broker on the same
/// data directory sees the CRL file change and drops the device within its monitor interval.
/// </summary>
public static class PkiRevokeCommand
{
    public static Command Create()
    {
        Option<string> serial = new("--serial") { Description = "Serial number (hex, as printed by `pki issue`)" };
        Option<string> cn = new("--cn") { Description = "Common name of the device (revokes its active certificates)" };
        Option<string> reason = new("--reason")
        {
            Description = "RFC 5280 reason: keyCompromise (default), unspecified, affiliationChanged, superseded, cessationOfOperation, certificateHold, privilegeWithdrawn",
            DefaultValueFactory = _ => "keyCompromise",
        };

        Command command = new("revoke", "Revoke a development PKI certificate and regenerate the CRL.");
        command.Options.Add(serial);
        command.Options.Add(cn);
        command.Options.Add(reason);
        PkiCommands.AddCommonOptions(command);
        command.Validators.Add(result =>
        {
            bool hasSerial = result.GetResult(serial) is not null;
            bool hasCn = result.GetResult(cn) is not null;
            if (hasSerial == hasCn)
            {
                result.AddError("give exactly one of --serial or --cn");
            }
        });
        command.SetAction(parseResult =>
        {
            TextWriter output = CliCommands.Out(parseResult);
            TextWriter error = CliCommands.Error(parseResult);
            string reasonText = parseResult.GetValue(reason) ?? "keyCompromise";
            if (!Enum.TryParse(reasonText, ignoreCase: true, out X509RevocationReason revocationReason)
                || !Enum.IsDefined(revocationReason) || int.TryParse(reasonText, out _))
            {
                error.WriteLine($"omnibroker: pki revoke: '{reasonText}' is not a revocation reason");
                return CliCommands.ExitBadConfiguration;
            }

            DevelopmentPki pki;
            try
            {
                pki = PkiCommands.OpenDevelopmentPki(parseResult, out bool created);
                if (created)
                {
                    output.WriteLine($"Created the development PKI in {pki.Directory}");
                }
            }
            catch (BrokerConfigurationException ex)
            {
                error.WriteLine($"omnibroker: {ex.Message}");
                return CliCommands.ExitBadConfiguration;
            }

            using (pki)
            {
                try
                {
                    IReadOnlyList<IssuedCertificate> revoked = DevelopmentPkiCommands.Revoke(pki, parseResult.GetValue(serial), parseResult.GetValue(cn),
                        revocationReason, TimeProvider.System);
                    foreach (IssuedCertificate row in revoked)
                    {
                        output.WriteLine($"Revoked {row.Subject}");
                        output.WriteLine($"  serial: {row.Serial}");
                        output.WriteLine($"  reason: {row.RevocationReason}");
                    }

                    foreach (bool root in revoked.Select(r => r.Issuer == "root").Distinct())
                    {
                        DevelopmentCrlSummary crl = DevelopmentPkiCommands.DescribeCrl(pki, root);
                        output.WriteLine($"  CRL:    {crl.Path} (number {crl.Number}, {crl.RevokedCount} revoked, next update {crl.NextUpdate:u})");
                    }

                    return CliCommands.ExitOk;
                }
                catch (InvalidOperationException ex)
                {
                    error.WriteLine($"omnibroker: pki revoke: {ex.Message}");
                    return CliCommands.ExitFailure;
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
                {
                    error.WriteLine($"omnibroker: pki revoke: {ex.Message}");
                    return CliCommands.ExitFailure;
                }
            }
        });
        return command;
    }
}
