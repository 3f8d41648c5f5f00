using FluentAssertions;
using OmniBroker.Mqtt.Engine;
using Xunit;

namespace OmniBroker.Tests.Engine;

public sealed class WriterSignalTests
{
    [Fact]
    public async Task WaitAsync_SetBefore_CompletesAtOnceAndConsumesTheSignal()
    {
        var signal = new WriterSignal();
        signal.Set();
        signal.Set();

        signal.WaitAsync(CancellationToken.None).IsCompleted.Should().BeTrue();
        var second = signal.WaitAsync(CancellationToken.None);
        second.IsCompleted.Should().BeFalse("two sets before one wait coalesce into one wake-up");
        signal.Set();
        await second.AsTask().WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task WaitAsync_SetFromAnotherThread_Completes()
    {
        var signal = new WriterSignal();
        for (var i = 0; i < 1000; i++)
        {
            var wait = signal.WaitAsync(CancellationToken.None);
            _ = Task.Run(signal.Set);
            await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        }
    }

    [Fact]
    public async Task WaitAsync_Reset_ForgetsPendingSignal()
    {
        var signal = new WriterSignal();
        signal.Set();
        signal.Reset();

        var wait = signal.WaitAsync(CancellationToken.None);
        wait.IsCompleted.Should().BeFalse();
        signal.Set();
        await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task WaitAsync_TokenCanceledWhileWaiting_ThrowsAndNextWaitWorks()
    {
        var signal = new WriterSignal();
        using var cts = new CancellationTokenSource();
        var wait = signal.WaitAsync(cts.Token);
        cts.Cancel();

        var act = async () => await wait;
        await act.Should().ThrowAsync<OperationCanceledException>();
        var next = signal.WaitAsync(CancellationToken.None);
        signal.Set();
        await next.AsTask().WaitAsync(TimeSpan.FromSeconds(5));
    }
}
