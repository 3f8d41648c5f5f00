using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using OmniBroker.Auth.Revocation;
using OmniBroker.Host.Configuration;

namespace OmniBroker.Host.Revocation;

/// <summary>Host wiring of revocation checking (configuration section <c>Revocation</c>).</summary>
public static class RevocationHostExtensions
{
    public const string Section = "Revocation";

    /// <summary>
    /// Registers the revocation checker, CRL refresh and connected-client monitor. With the development PKI, its
    /// CRL files are created/re-issued at start and watched (mode crl-then-ocsp, hard-fail, monitor every 10 s)
    /// unless the <c>Revocation</c> section says otherwise.
    /// </summary>
    /// <exception cref="BrokerConfigurationException">the Revocation section is invalid.</exception>
    public static void AddOmniBrokerRevocation(this WebApplicationBuilder builder, BrokerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(settings);
        try
        {
            if (settings.UsesDevelopmentPki)
            {
                builder.Services.AddDevelopmentPkiRevocation(builder.Configuration.GetSection(Section), settings.DevelopmentPkiDirectory);
            }
            else
            {
                builder.Services.AddOmniBrokerRevocation(builder.Configuration.GetSection(Section));
            }
        }
        catch (RevocationConfigurationException ex)
        {
            throw new BrokerConfigurationException(ex.Errors);
        }
    }
}
