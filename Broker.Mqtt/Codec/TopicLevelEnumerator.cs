namespace OmniBroker.Mqtt.Codec;

/// <summary>Splits a topic or filter into levels without allocating (MQTT 5.0 §4.7.1: '/' separates levels;
/// empty levels are levels).</summary>
public ref struct TopicLevelEnumerator
{
    private ReadOnlySpan<char> _rest;
    private bool _done;

    public TopicLevelEnumerator(ReadOnlySpan<char> topic)
    {
        _rest = topic;
        _done = false;
        Current = default;
    }

    public ReadOnlySpan<char> Current { get; private set; }

    public bool MoveNext()
    {
        if (_done)
        {
            return false;
        }

        int i = _rest.IndexOf('/');
        if (i < 0)
        {
            Current = _rest;
            _done = true;
        }
        else
        {
            Current = _rest[..i];
            _rest = _rest[(i + 1)..];
        }

        return true;
    }
}
