using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Storage;

/// <summary>
/// Drops the rows a batch would insert and delete again: a message queued and acknowledged (PUBACK, PUBCOMP) within one
/// group commit never needs to reach the file. With an online subscriber most QoS 1 messages take this path, so a
/// commit writes little more than the messages still owed. Only a delete that follows its insert in the same batch
/// cancels it; anything across a session's end is kept as it is.
/// </summary>
internal sealed class BatchCoalescer
{
    private readonly Dictionary<(string ClientId, long Sequence), List<int>> _open = new();
    private readonly List<StoreOperation> _result = new();
    private bool[] _skip = new bool[256];

    public List<StoreOperation> Coalesce(List<StoreOperation> batch)
    {
        if (_skip.Length < batch.Count)
        {
            _skip = new bool[Math.Max(batch.Count, 2 * _skip.Length)];
        }
        Array.Clear(_skip, 0, batch.Count);
        _open.Clear();
        var skipped = 0;
        for (var i = 0; i < batch.Count; i++)
        {
            switch (batch[i])
            {
                case MessageQueued q:
                    _open[(q.ClientId, q.Sequence)] = [i];
                    break;
                case MessageStateChanged c when _open.TryGetValue((c.ClientId, c.Sequence), out var rows):
                    rows.Add(i);
                    break;
                case MessageDeleted d when _open.Remove((d.ClientId, d.Sequence), out var rows):
                    foreach (var row in rows)
                    {
                        _skip[row] = true;
                    }
                    _skip[i] = true;
                    skipped += rows.Count + 1;
                    break;
                case SessionDeleted s when _open.Count > 0:
                    foreach (var key in _open.Keys.Where(k => k.ClientId == s.ClientId).ToArray())
                    {
                        _open.Remove(key);
                    }
                    break;
            }
        }
        if (skipped == 0)
        {
            return batch;
        }
        _result.Clear();
        for (var i = 0; i < batch.Count; i++)
        {
            if (!_skip[i])
            {
                _result.Add(batch[i]);
            }
        }
        return _result;
    }
}
