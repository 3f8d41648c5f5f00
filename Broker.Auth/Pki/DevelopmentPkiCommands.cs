using System.Numerics;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using OmniBroker.Auth.Revocation;

namespace OmniBroker.Auth.Pki;

/// <summary>A development PKI CRL as <c>omnibroker pki revoke</c> reports it.</summary>
public sealed record DevelopmentCrlSummary(string Path, BigInteger? Number, int RevokedCount, DateTimeOffset? NextUpdate);

/// <summary>
/// What the host's command line and start-up do with the development PKI beyond issuing certificates: revoke,
/// describe the regenerated CRL, log how the PKI was opened. The CRL and OCSP machinery behind them stays internal.
/// </summary>
public static class DevelopmentPkiCommands
{
    /// <summary>
    /// Marks the certificate with <paramref name="serial"/> (any kind) or the active device certificates with common
    /// name <paramref name="commonName"/> revoked in index.json and regenerates the issuing CA's CRL (cRLNumber + 1).
    /// </summary>
    /// <exception cref="InvalidOperationException">nothing matches, or it is revoked already.</exception>
    public static IReadOnlyList<IssuedCertificate> Revoke(DevelopmentPki pki, string? serial, string? commonName,
        X509RevocationReason reason, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(pki);
        return DevelopmentPkiRevocation.Revoke(pki, serial, commonName, reason, time);
    }

    /// <summary>Reads the current CRL of the root (<paramref name="root"/>) or intermediate CA.</summary>
    /// <exception cref="InvalidDataException">the file is not a CRL.</exception>
    public static DevelopmentCrlSummary DescribeCrl(DevelopmentPki pki, bool root)
    {
        ArgumentNullException.ThrowIfNull(pki);
        string path = root ? DevelopmentPkiRevocation.RootCrlPath(pki.Directory) : DevelopmentPkiRevocation.IntermediateCrlPath(pki.Directory);
        ParsedCrl crl;
        try
        {
            crl = ParsedCrl.Parse(File.ReadAllBytes(path));
        }
        catch (RevocationFormatException ex)
        {
            throw new InvalidDataException($"{path}: {ex.Message}", ex);
        }

        return new DevelopmentCrlSummary(path, crl.Number, crl.RevokedCount, crl.NextUpdate);
    }

    /// <summary>Logs (events 2020/2021) that the broker created or loaded the development PKI.</summary>
    public static void LogOpened(DevelopmentPki pki, ILogger logger, bool created)
    {
        ArgumentNullException.ThrowIfNull(pki);
        if (created)
        {
            AuthLog.DevelopmentPkiCreated(logger, pki.Directory);
        }
        else
        {
            AuthLog.DevelopmentPkiLoaded(logger, pki.Directory);
        }
    }
}
