namespace OpenPool.Engine.Http;

/// <summary>
/// The Idempotency-Key of the call being handled, visible to the stores through the async flow, so
/// the transaction that creates requests also records them against the key.
/// </summary>
internal static class IdempotencyScope
{
    private static readonly AsyncLocal<(string UserId, string Key)?> CurrentScope = new();

    public static (string UserId, string Key)? Current => CurrentScope.Value;

    public static IDisposable Enter(string userId, string key)
    {
        CurrentScope.Value = (userId, key);
        return new Exit();
    }

    private sealed class Exit : IDisposable
    {
        public void Dispose() => CurrentScope.Value = null;
    }
}
