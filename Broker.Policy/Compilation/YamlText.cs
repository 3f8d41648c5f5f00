namespace OmniBroker.Policy.Compilation;

/// <summary>
/// YAML 1.2 §5.1 allows only printable characters in a stream (c-printable: tab, LF, CR, U+0020-U+007E, U+0085,
/// U+00A0-U+D7FF, U+E000-U+FFFD and the supplementary planes). YamlDotNet does not refuse the others itself: a NUL in
/// a comment made its loader throw ArgumentException (found by fuzzing, docs/fuzzing.md). Checked before parsing so
/// the error names the character and where it is.
/// </summary>
internal static class YamlText
{
    /// <summary>False with the 1-based line and column of the first character YAML does not allow.</summary>
    public static bool IsPrintable(string text, out int line, out int column, out int codePoint)
    {
        line = 1;
        column = 1;
        codePoint = 0;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            bool surrogatePair = char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]);
            if (!surrogatePair && !IsPrintable(c))
            {
                codePoint = c;
                return false;
            }
            if (c == '\n')
            {
                line++;
                column = 1;
            }
            else
            {
                column++;
            }
            if (surrogatePair)
            {
                i++;
            }
        }
        return true;
    }

    private static bool IsPrintable(char c) =>
        c is '\t' or '\n' or '\r' or (>= '\u0020' and <= '\u007E') or '\u0085' or (>= '\u00A0' and <= '\uD7FF') or (>= '\uE000' and <= '\uFFFD');
}
