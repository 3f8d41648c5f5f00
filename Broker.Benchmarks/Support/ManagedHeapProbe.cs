using System.Diagnostics.Tracing;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Parsers;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

namespace OmniBroker.Benchmarks.Support;

/// <summary>
/// Reads the live managed heap of another .NET process, to split its RSS into managed and native parts: an EventPipe
/// session with the GCHeapCollect keyword makes the runtime run a blocking full GC (as dotnet-gcdump does), and the
/// GCHeapStats event that follows gives the size of every generation after it.
/// </summary>
internal static class ManagedHeapProbe
{
    /// <summary>GC heap bytes (gen0 + gen1 + gen2 + LOH + POH) right after an induced full GC, or null when the
    /// process did not answer within <paramref name="timeout"/>.</summary>
    public static long? HeapAfterFullGc(int pid, TimeSpan timeout)
    {
        long keywords = (long)(ClrTraceEventParser.Keywords.GC | ClrTraceEventParser.Keywords.GCHeapCollect);
        DiagnosticsClient client = new(pid);
        using EventPipeSession session = client.StartEventPipeSession(
            [new EventPipeProvider(ClrTraceEventParser.ProviderName, EventLevel.Informational, keywords)], requestRundown: false);
        using EventPipeEventSource source = new(session.EventStream);
        long? result = null;
        bool induced = false;
        source.Clr.GCStart += e => induced |= e.Depth == 2 && e.Reason == GCReason.Induced;
        source.Clr.GCHeapStats += e =>
        {
            if (induced && result is null)
            {
                result = e.GenerationSize0 + e.GenerationSize1 + e.GenerationSize2 + e.GenerationSize3 + e.GenerationSize4;
                session.Stop();
            }
        };

        Task processing = Task.Run(source.Process);
        if (!processing.Wait(timeout))
        {
            session.Stop();
            processing.Wait(TimeSpan.FromSeconds(5));
        }

        return result;
    }
}
