using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text;
using OmniBroker.Mqtt.Abstractions;

namespace OmniBroker.Cluster;

/// <summary>
/// Share groups across nodes (5.0 §4.8.2: each message to one member of the group [MQTT-4.8.2-3]). The node that accepts
/// a message chooses, per matching group, one node among those with members (itself included), round-robin per group,
/// so a group spread over n nodes gets one copy instead of n. The choice travels with the forwarded message as the
/// inbox header <c>Omni-Share</c>, per target node: the groups that node delivers the message to (the others it has
/// members of are served elsewhere). A message without the header comes from a node that does not choose: all groups.
/// Then that node picks one of its own members as on a single node (connected members first).
/// </summary>
internal sealed class SharedGroupRouting
{
    public const string Header = "Omni-Share";
    private const string None = "-";

    // One counter per group ever forwarded for: as many as there are groups (their names are chosen by the operator's
    // applications, and subscribing to them is authorized).
    private readonly ConcurrentDictionary<SharedGroupKey, StrongBox<int>> _next = new();

    /// <summary>
    /// <paramref name="remote"/>: (group, node) pairs of other nodes with members matching the message;
    /// <paramref name="localGroups"/>: this node's matching groups, on return only those this node serves;
    /// <paramref name="assigned"/>: filled with the groups each other node serves (targets to add).
    /// </summary>
    public void Choose(List<(SharedGroupKey Group, string Node)> remote, List<SharedGroupKey> localGroups,
        Dictionary<string, List<SharedGroupKey>> assigned)
    {
        if (remote.Count == 0)
        {
            return;
        }
        // Candidates per group, in a stable order (node ids sorted) so the round-robin visits every node in turn.
        remote.Sort(static (a, b) =>
        {
            var byGroup = string.CompareOrdinal(a.Group.Group, b.Group.Group);
            if (byGroup != 0)
            {
                return byGroup;
            }
            var byFilter = string.CompareOrdinal(a.Group.TopicFilter, b.Group.TopicFilter);
            return byFilter != 0 ? byFilter : string.CompareOrdinal(a.Node, b.Node);
        });
        for (var i = 0; i < remote.Count;)
        {
            var group = remote[i].Group;
            var end = i;
            while (end < remote.Count && remote[end].Group == group)
            {
                end++;
            }
            var local = localGroups.Contains(group);
            var candidates = end - i + (local ? 1 : 0);
            var turn = (int)((uint)Interlocked.Increment(ref _next.GetOrAdd(group, static _ => new StrongBox<int>(-1)).Value) % (uint)candidates);
            // Turn 0..remote-1: that node; the last turn (when this node has members): this node.
            if (turn < end - i)
            {
                localGroups.Remove(group);
                var node = remote[i + turn].Node;
                if (!assigned.TryGetValue(node, out var groups))
                {
                    assigned[node] = groups = [];
                }
                groups.Add(group);
            }
            i = end;
        }
    }

    /// <summary>The header value for a target: its groups, or "-" for none (plain subscribers only).</summary>
    public static string Encode(List<SharedGroupKey>? groups)
    {
        if (groups is null || groups.Count == 0)
        {
            return None;
        }
        var text = new StringBuilder();
        foreach (var group in groups)
        {
            text.Append(group.Group).Append('\0').Append(group.TopicFilter).Append('\0');
        }
        // Base64: header values must be printable ASCII; group names and filters are any UTF-8.
        return Convert.ToBase64String(Encoding.UTF8.GetBytes(text.ToString()));
    }

    /// <summary>The groups a received message is for: null when the header is absent (all groups), empty for "-";
    /// false when the value does not decode.</summary>
    public static bool TryDecode(string? value, out IReadOnlySet<SharedGroupKey>? groups)
    {
        groups = null;
        if (value is null)
        {
            return true;
        }
        var set = new HashSet<SharedGroupKey>();
        groups = set;
        if (value == None)
        {
            return true;
        }
        var bytes = new byte[value.Length];
        if (!Convert.TryFromBase64String(value, bytes, out var length))
        {
            return false;
        }
        var parts = Encoding.UTF8.GetString(bytes, 0, length).Split('\0');
        // group \0 filter \0 ... with a trailing separator: an odd number of parts, the last empty.
        if (parts.Length % 2 != 1 || parts[^1].Length != 0)
        {
            return false;
        }
        for (var i = 0; i + 1 < parts.Length; i += 2)
        {
            set.Add(new SharedGroupKey(parts[i], parts[i + 1]));
        }
        return true;
    }
}
