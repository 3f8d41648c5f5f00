using System.Globalization;

namespace OmniBroker.Host.Configuration;

/// <summary>
/// The one duration format of every configuration key: a number with a unit — <c>500ms</c>, <c>30s</c>, <c>5m</c>,
/// <c>1h</c>, <c>7d</c> —, a .NET time span <c>hh:mm:ss[.fff]</c> or <c>d.hh:mm:ss</c> (<c>00:00:30</c>), or a plain
/// number of seconds (<c>10</c>, <c>2.5</c>), the form documented for Tls:HandshakeTimeout before units existed.
/// </summary>
public static class Durations
{
    public const string Grammar = "a duration such as 500ms, 30s, 5m, 1h, 7d, 00:00:30 or a number of seconds";

    private static readonly (string Suffix, double Milliseconds)[] s_units =
        [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)];

    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }
        text = text.Trim();
        if (text.Contains(':', StringComparison.Ordinal))
        {
            return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value) && value >= TimeSpan.Zero;
        }
        foreach (var (suffix, milliseconds) in s_units)
        {
            if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                return TryFromMilliseconds(text[..^suffix.Length], milliseconds, out value);
            }
        }
        return TryFromMilliseconds(text, 1000, out value);
    }

    private static bool TryFromMilliseconds(string number, double unit, out TimeSpan value)
    {
        value = default;
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n < 0 || double.IsInfinity(n)
            || n * unit > TimeSpan.MaxValue.TotalMilliseconds)
        {
            return false;
        }
        value = TimeSpan.FromMilliseconds(n * unit);
        return true;
    }
}
