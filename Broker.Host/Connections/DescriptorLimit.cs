using System.Globalization;

namespace OmniBroker.Host.Connections;

/// <summary>
/// The process's file descriptor budget on Linux: the soft RLIMIT_NOFILE (read from <c>/proc/self/limits</c>, after
/// the .NET runtime has raised it to the hard limit at start) and the descriptors already open (<c>/proc/self/fd</c>:
/// mostly the loaded assemblies, two each). Null elsewhere or when unreadable: then no cap is derived.
/// </summary>
internal static class DescriptorLimit
{
    /// <summary>The soft limit on open files; null when unknown or unlimited.</summary>
    public static long? SoftLimit()
    {
        try
        {
            // "Max open files            20000                20000                files"
            foreach (var line in File.ReadLines("/proc/self/limits"))
            {
                if (line.StartsWith("Max open files", StringComparison.Ordinal))
                {
                    var fields = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return fields.Length > 0 && long.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var soft) ? soft : null;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
        return null;
    }

    /// <summary>Descriptors open now; null when unknown.</summary>
    public static int? OpenNow()
    {
        try
        {
            return Directory.EnumerateFileSystemEntries("/proc/self/fd").Count();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
