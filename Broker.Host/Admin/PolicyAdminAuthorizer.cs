using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using OmniBroker.Policy;

namespace OmniBroker.Host.Admin;

/// <summary>
/// The policy's answer to "may this certificate use the admin API": a rule granting the <c>admin</c> action.
/// Resolves the <see cref="PolicyAuthorizer"/> on first use, so mapping the admin API does not load the policy
/// before the host starts (an invalid policy then fails start-up, not endpoint mapping).
/// </summary>
internal sealed class PolicyAdminAuthorizer(IServiceProvider services) : IAdminAuthorizer
{
    private PolicyAuthorizer? _policy;

    public bool IsAdmin(X509Certificate2 certificate)
    {
        var policy = _policy ??= services.GetRequiredService<PolicyAuthorizer>();
        return policy.IsAllowed(certificate, "admin");
    }

    /// <summary>Whether a <see cref="PolicyAuthorizer"/> is registered, without resolving (loading) it.</summary>
    public static bool IsAvailable(IServiceProvider services) =>
        services.GetService<IServiceProviderIsService>()?.IsService(typeof(PolicyAuthorizer)) ?? false;
}
