namespace OpenPool.Engine.Billing;

/// <summary>What happens when an account's balance is used up while its resources run.</summary>
internal enum ExhaustionPolicy
{
    /// <summary>Resources keep running and the balance goes negative; the operator settles it (default).</summary>
    Continue,
    /// <summary>The account's running clusters are released (volumes are kept).</summary>
    ReleaseClusters,
}

/// <summary>Prices and rules for money (configuration section <c>Billing</c>).</summary>
internal sealed class BillingOptions
{
    /// <summary>The balance a new account (a new organization, or a user without one) starts with.</summary>
    public decimal InitialBalanceUsd { get; set; } = 1000m;
    public decimal StoragePricePerGbMonthUsd { get; set; } = 0.10m;
    /// <summary>Hours in a billing month, for per-GB-month prices (730 = 365 × 24 / 12).</summary>
    public int HoursPerMonth { get; set; } = 730;
    /// <summary>A claim needs a balance covering this many hours of the cluster's price.</summary>
    public decimal ClusterMinimumHours { get; set; } = 1;
    /// <summary>A new volume needs a balance covering this many hours of its cost (TensorPool: 24 h).</summary>
    public decimal StorageMinimumHours { get; set; } = 24;
    public ExhaustionPolicy OnExhausted { get; set; } = ExhaustionPolicy.Continue;
    /// <summary>How often running usage is written to the ledger.</summary>
    public double SweepSeconds { get; set; } = 60;
}
