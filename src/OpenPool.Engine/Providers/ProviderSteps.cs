using OpenPool.Engine.Requests;

namespace OpenPool.Engine.Providers;

/// <summary>Turns a provider's progress into a request step's outcome, the same way for every resource.</summary>
internal static class ProviderSteps
{
    public static StepOutcome Outcome(ProviderProgress progress, Func<StepOutcome> done, ResourceUpdate? onPermanentFailure = null) =>
        progress.State switch
        {
            ProgressState.InProgress => new StepOutcome.Wait(progress.Remaining,
                $"{progress.Message}: about {Math.Ceiling(progress.Remaining.TotalSeconds)}s left"),
            ProgressState.TransientFailure => new StepOutcome.Retry(progress.Message),
            ProgressState.PermanentFailure => new StepOutcome.Fail(progress.Message, onPermanentFailure),
            _ => done(),
        };
}
