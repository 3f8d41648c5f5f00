using System.Security.Cryptography;
using System.Text;
using OmniBroker.Policy.Compilation;

namespace OmniBroker.Policy;

/// <summary>Outcome of loading a policy directory: a policy, or every error found.</summary>
internal sealed record PolicyLoadResult(CompiledPolicy? Policy, IReadOnlyList<PolicyError> Errors, int FileCount, string ContentHash)
{
    public bool Success => Policy is not null;
}

/// <summary>
/// Reads every *.yaml / *.yml file under a directory (recursively, sorted by relative path, skipping names that
/// start with '.', such as editor swap files and Kubernetes ConfigMap "..data" folders) and compiles them together.
/// </summary>
internal static class PolicyLoader
{
    public static PolicyLoadResult LoadDirectory(string directory, long generation = 1)
    {
        var errors = new List<PolicyError>();
        if (!Directory.Exists(directory))
        {
            errors.Add(new PolicyError(directory, 0, 0, "policy directory does not exist"));
            return new PolicyLoadResult(null, errors, 0, "");
        }

        List<string> files;
        try
        {
            files = EnumeratePolicyFiles(directory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            errors.Add(new PolicyError(directory, 0, 0, $"cannot list the policy directory: {ex.Message}"));
            return new PolicyLoadResult(null, errors, 0, "");
        }

        var sources = new List<PolicySource>();
        foreach (var relative in files)
        {
            var path = Path.Join(directory, relative);
            try
            {
                sources.Add(new PolicySource(path, File.ReadAllText(path, Encoding.UTF8)));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                errors.Add(new PolicyError(path, 0, 0, $"cannot read policy file: {ex.Message}"));
            }
        }

        if (sources.Count == 0 && errors.Count == 0)
        {
            errors.Add(new PolicyError(directory, 0, 0, "no policy files (*.yaml, *.yml) found: with no rules every client would be denied"));
        }

        return Load(sources, directory, generation, errors);
    }

    public static PolicyLoadResult Load(IReadOnlyList<PolicySource> sources, string directory, long generation = 1, List<PolicyError>? errors = null)
    {
        errors ??= [];
        var hash = ContentHash(sources, directory);
        var policy = PolicyCompiler.Compile(sources, directory, new PolicyVersion(generation, hash), errors);
        return new PolicyLoadResult(errors.Count == 0 ? policy : null, errors, sources.Count, hash);
    }

    /// <summary>Relative paths of the policy files, in the order they are compiled.</summary>
    public static List<string> EnumeratePolicyFiles(string directory)
    {
        var files = new List<string>();
        var pending = new Stack<DirectoryInfo>();
        var visited = new HashSet<string>(StringComparer.Ordinal);
        pending.Push(new DirectoryInfo(directory));
        while (pending.Count > 0)
        {
            var current = pending.Pop();

            // A symbolic link back to an ancestor must not loop forever.
            if (!visited.Add(current.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? current.FullName))
            {
                continue;
            }

            foreach (var entry in current.EnumerateFileSystemInfos())
            {
                if (entry.Name.StartsWith('.'))
                {
                    continue;
                }

                if (entry is DirectoryInfo subdirectory)
                {
                    pending.Push(subdirectory);
                }
                else if (entry.Name.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase)
                    || entry.Name.EndsWith(".yml", StringComparison.OrdinalIgnoreCase))
                {
                    files.Add(Path.GetRelativePath(directory, entry.FullName));
                }
            }
        }

        files.Sort(StringComparer.Ordinal);
        return files;
    }

    /// <summary>SHA-256 over (relative path, content) of every file, so renaming a file changes the version too.</summary>
    private static string ContentHash(IReadOnlyList<PolicySource> sources, string directory)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var source in sources)
        {
            var relative = Path.GetRelativePath(directory, source.Path).Replace('\\', '/');
            hash.AppendData(Encoding.UTF8.GetBytes(relative));
            hash.AppendData([0]);
            hash.AppendData(Encoding.UTF8.GetBytes(source.Text));
            hash.AppendData([0]);
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset())[..16];
    }
}
