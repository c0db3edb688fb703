namespace OpenPool.Engine.Clusters;

internal sealed record InstanceType(
    string Name, string GpuModel, int GpuCount, int GpuMemoryGb, int Vcpus, int RamGb, decimal PricePerHourUsd, bool MultiNode);

/// <summary>
/// The instance types an operator offers. Defaults are TensorPool's H100/H200/B200 shapes in 1, 2, 4
/// and 8 GPUs; the prices are placeholders for an operator to set (<c>Catalog:InstanceTypes</c>).
/// </summary>
internal sealed class InstanceCatalog
{
    private readonly Dictionary<string, InstanceType> _types;

    public InstanceCatalog(IEnumerable<InstanceType> types, int maxNodes)
    {
        _types = types.ToDictionary(t => t.Name, StringComparer.OrdinalIgnoreCase);
        MaxNodes = maxNodes;
    }

    public int MaxNodes { get; }
    public IReadOnlyCollection<InstanceType> All => _types.Values;
    public string Names => string.Join(", ", _types.Keys);

    public InstanceType? Find(string name) => _types.GetValueOrDefault(name);

    public static InstanceCatalog From(IConfiguration configuration)
    {
        var configured = configuration.GetSection("Catalog:InstanceTypes").Get<List<InstanceType>>();
        var maxNodes = configuration.GetValue("Catalog:MaxNodes", 16);
        return new InstanceCatalog(configured is { Count: > 0 } ? configured : Defaults(), maxNodes);
    }

    public static IEnumerable<InstanceType> Defaults()
    {
        (string Gpu, string Model, int MemoryGb, decimal PricePerGpu)[] gpus =
        [
            ("H100", "NVIDIA H100", 80, 2.49m),
            ("H200", "NVIDIA H200", 141, 3.29m),
            ("B200", "NVIDIA B200", 192, 4.99m),
        ];
        foreach (var (gpu, model, memory, price) in gpus)
            foreach (var count in new[] { 1, 2, 4, 8 })
                yield return new InstanceType($"{count}x{gpu}", model, count, memory, 26 * count, 225 * count, price * count, MultiNode: count == 8);
    }
}
