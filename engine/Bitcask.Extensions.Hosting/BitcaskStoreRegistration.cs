using Microsoft.Extensions.Options;

namespace Bitcask.Extensions.Hosting;

/// <summary>One store registered with <c>AddBitcask</c>: its name ("" for the default store) and configuration section.</summary>
internal sealed class BitcaskStoreRegistration(string name)
{
    public string Name { get; } = name;

    /// <summary>"Bitcask" for the default store, "Bitcask:{name}" for a named one.</summary>
    public string SectionPath => Name == Options.DefaultName ? BitcaskServiceCollectionExtensions.SectionName : $"{BitcaskServiceCollectionExtensions.SectionName}:{Name}";

    public string Display => Name == Options.DefaultName ? "the default Bitcask store" : $"Bitcask store '{Name}'";
}
