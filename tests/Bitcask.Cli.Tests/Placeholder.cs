namespace Bitcask.CliTests.Placeholder;
// Filled in by the issue that owns this project.
internal static class Placeholder { }
