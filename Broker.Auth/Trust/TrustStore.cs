using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OmniBroker.Auth;

/// <summary>
/// The configured trust: anchors (root CAs) a client chain must end in, and intermediates the broker
/// may use to complete a chain the client sent incomplete. Nothing from the operating system store is trusted.
/// </summary>
public sealed class TrustStore
{
    public TrustStore(IEnumerable<X509Certificate2> anchors, IEnumerable<X509Certificate2>? intermediates = null)
    {
        ArgumentNullException.ThrowIfNull(anchors);
        Anchors = new X509Certificate2Collection(anchors.ToArray());
        Intermediates = new X509Certificate2Collection((intermediates ?? []).ToArray());
        if (Anchors.Count == 0)
        {
            throw new ArgumentException("at least one trust anchor is required", nameof(anchors));
        }
    }

    public X509Certificate2Collection Anchors { get; }

    public X509Certificate2Collection Intermediates { get; }

    /// <summary>Loads anchors and intermediates from PEM files (each file may hold several certificates).</summary>
    public static TrustStore LoadFromPemFiles(IEnumerable<string> anchorFiles, IEnumerable<string>? intermediateFiles = null)
    {
        var anchors = anchorFiles.SelectMany(PemCertificates.LoadAll).ToList();
        var intermediates = (intermediateFiles ?? []).SelectMany(PemCertificates.LoadAll).ToList();
        return new TrustStore(anchors, intermediates);
    }
}

/// <summary>PEM helpers shared by trust configuration and the development PKI.</summary>
public static class PemCertificates
{
    /// <summary>Every certificate in a PEM file, in file order.</summary>
    /// <exception cref="InvalidDataException">the file holds no certificate or a malformed one.</exception>
    public static IReadOnlyList<X509Certificate2> LoadAll(string path)
    {
        var collection = new X509Certificate2Collection();
        try
        {
            collection.ImportFromPemFile(path);
        }
        catch (CryptographicException ex)
        {
            throw new InvalidDataException($"{path}: not a valid PEM certificate file ({ex.Message})", ex);
        }
        if (collection.Count == 0)
        {
            throw new InvalidDataException($"{path}: contains no PEM certificate");
        }
        return collection.ToArray();
    }

    /// <summary>Loads a certificate (first in <paramref name="certificatePath"/>) with its private key; further
    /// certificates in the file are returned as <paramref name="chain"/> (the issuers to send with it).</summary>
    public static X509Certificate2 LoadWithKey(string certificatePath, string keyPath, out X509Certificate2Collection chain)
    {
        var all = LoadAll(certificatePath);
        X509Certificate2 withKey;
        try
        {
            withKey = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
        }
        catch (CryptographicException ex)
        {
            throw new InvalidDataException($"{keyPath}: private key cannot be loaded for {certificatePath} ({ex.Message})", ex);
        }
        chain = new X509Certificate2Collection(all.Skip(1).ToArray());
        return withKey;
    }

    public static string ToPem(X509Certificate2 certificate) =>
        new string(PemEncoding.Write("CERTIFICATE", certificate.RawData)) + "\n";
}
