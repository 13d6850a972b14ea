using Microsoft.Extensions.Options;

namespace Bitcask.Extensions.Hosting;

/// <summary>Checks a store's options when the host starts (ValidateOnStart): the message names the store, the option and the bad value.</summary>
internal sealed class BitcaskStoreOptionsValidator(BitcaskStoreRegistration registration) : IValidateOptions<BitcaskStoreOptions>
{
    public ValidateOptionsResult Validate(string? name, BitcaskStoreOptions options)
    {
        if ((name ?? Options.DefaultName) != registration.Name) return ValidateOptionsResult.Skip;
        var section = registration.SectionPath;
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.Path))
            failures.Add($"{section}:Path is required (the store's directory) but is {(options.Path is null ? "not set" : $"'{options.Path}'")}.");
        if (options.Engine is null)
            failures.Add($"{section}: Engine (the BitcaskOptions) is null.");
        else
        {
            try
            {
                options.Engine.Validate();
            }
            catch (ArgumentException e)
            {
                failures.Add($"{section}: {e.Message}");
            }
        }
        if (double.IsNaN(options.DegradedFragmentation) || options.DegradedFragmentation is < 0 or > 1)
            failures.Add($"{section}:DegradedFragmentation must be between 0 and 1 but is {options.DegradedFragmentation}.");
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
