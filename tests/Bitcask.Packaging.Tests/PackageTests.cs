using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using System.Xml.Linq;

namespace Bitcask.Packaging.Tests;

/// <summary>
/// The proof that the packages work: what `.ci/run` packed is inspected, consumed by a fresh project through a local
/// package source (no project reference), and the tool is installed from the same folder.
/// </summary>
public sealed class PackageTests : IDisposable
{
    private static readonly TimeSpan Slow = TimeSpan.FromMinutes(5);
    private readonly string _work = Directory.CreateTempSubdirectory("bitcask-pkg-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_work, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    [PackagesFact]
    public void Every_package_has_its_readme_license_repository_description_and_a_symbols_package()
    {
        foreach (var id in PackageFolder.Libraries.Append(PackageFolder.Tool))
        {
            var nupkg = PackageFolder.Nupkg(id);
            Assert.True(File.Exists(nupkg), $"{nupkg} was not packed");
            using var zip = ZipFile.OpenRead(nupkg);
            var nuspec = XDocument.Load(zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open());
            var meta = nuspec.Root!.Elements().Single(e => e.Name.LocalName == "metadata");
            string? Field(string name) => meta.Elements().SingleOrDefault(e => e.Name.LocalName == name)?.Value;
            XElement? Element(string name) => meta.Elements().SingleOrDefault(e => e.Name.LocalName == name);

            Assert.Equal(id, Field("id"));
            Assert.Equal(PackageFolder.Version, Field("version"));
            Assert.Equal("MIT", Field("license"));
            Assert.Equal("expression", Element("license")!.Attribute("type")!.Value);
            Assert.Equal("README.md", Field("readme"));
            var readme = new StreamReader(zip.GetEntry("README.md")!.Open()).ReadToEnd();
            Assert.Contains(id, readme);
            Assert.Contains(id == PackageFolder.Tool ? "dotnet tool install" : "dotnet add package", readme);
            var description = Field("description");
            Assert.False(string.IsNullOrWhiteSpace(description));
            Assert.NotEqual("Package Description", description);
            Assert.Contains("bitcask", Field("tags") ?? "");
            var repository = Element("repository");
            Assert.NotNull(repository);
            Assert.StartsWith("https://", repository!.Attribute("url")!.Value);

            if (id != PackageFolder.Tool)
            {
                // IntelliSense: the XML documentation ships beside the assembly.
                Assert.Contains(zip.Entries, e => e.FullName == $"lib/net10.0/{id}.dll");
                var docs = zip.Entries.Single(e => e.FullName == $"lib/net10.0/{id}.xml");
                var members = XDocument.Load(docs.Open()).Descendants("member").Count();
                Assert.True(members > 10, $"{id}.xml documents {members} members");
            }
            else
            {
                Assert.Contains(zip.Entries, e => e.FullName == "tools/net10.0/any/DotnetToolSettings.xml");
                Assert.Contains("DotnetTool", Element("packageTypes")?.ToString() ?? "");
            }

            var snupkg = PackageFolder.Snupkg(id);
            Assert.True(File.Exists(snupkg), $"{snupkg} (symbols) was not packed");
            using var symbols = ZipFile.OpenRead(snupkg);
            Assert.Contains(symbols.Entries, e => e.FullName.EndsWith($"{(id == PackageFolder.Tool ? "Bitcask.Cli" : id)}.pdb", StringComparison.Ordinal));
        }
    }

    [PackagesFact]
    public void A_consumer_project_restores_the_packed_nupkg_files_from_a_local_source_and_runs()
    {
        var app = Path.Combine(_work, "consumer");
        Directory.CreateDirectory(app);
        WriteNuGetConfig(_work);
        File.WriteAllText(Path.Combine(app, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                <WarningsNotAsErrors>NU1603</WarningsNotAsErrors>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Bitcask" Version="[{PackageFolder.Version}]" />
                <PackageReference Include="Bitcask.Extensions.Hosting" Version="[{PackageFolder.Version}]" />
                <PackageReference Include="Microsoft.Extensions.Hosting" Version="10.0.5" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), ConsumerProgram);

        var data = Path.Combine(_work, "data");
        var (code, output) = Dotnet.Run(app, Slow, IsolatedNuGet(), "run", "-c", "Release", "--", data);
        Assert.True(code == 0, $"the consumer failed (exit {code}):\n{output}");
        Assert.Contains("read back: hello from a package", output);
        Assert.Contains("hosted store: 2 keys, health Healthy", output);
        Assert.Contains("stopped: reopened with 2 keys", output);

        // Restored from the local folder: exactly the bytes .ci/run packed, not a project reference or another copy.
        var assets = JsonDocument.Parse(File.ReadAllText(Path.Combine(app, "obj", "project.assets.json")));
        var libraries = assets.RootElement.GetProperty("libraries");
        foreach (var id in PackageFolder.Libraries)
        {
            var entry = libraries.GetProperty($"{id}/{PackageFolder.Version}");
            Assert.Equal("package", entry.GetProperty("type").GetString());
            var expected = Convert.ToBase64String(SHA512.HashData(File.ReadAllBytes(PackageFolder.Nupkg(id))));
            Assert.Equal(expected, entry.GetProperty("sha512").GetString());
        }
    }

    [PackagesFact]
    public void The_tool_installs_from_the_package_folder_and_answers_version_with_the_package_version()
    {
        WriteNuGetConfig(_work);
        var tools = Path.Combine(_work, "tools");
        var (code, output) = Dotnet.Run(_work, Slow, IsolatedNuGet(), "tool", "install", "--tool-path", tools,
            "--configfile", Path.Combine(_work, "nuget.config"), "--add-source", PackageFolder.Path,
            PackageFolder.Tool, "--version", PackageFolder.Version);
        Assert.True(code == 0, $"dotnet tool install failed (exit {code}):\n{output}");

        var bitcask = Path.Combine(tools, OperatingSystem.IsWindows() ? "bitcask.exe" : "bitcask");
        Assert.True(File.Exists(bitcask), $"no command 'bitcask' in {tools}:\n{output}");
        var (vcode, version) = Dotnet.RunProgram(bitcask, _work, Slow, IsolatedNuGet(), "--version");
        Assert.Equal(0, vcode);
        Assert.Equal(PackageFolder.Version, version.Trim());

        // The installed tool works on a store, not just its version switch.
        var data = Path.Combine(_work, "data");
        Assert.Equal(0, Dotnet.RunProgram(bitcask, _work, Slow, IsolatedNuGet(), "put", data, "k", "installed").ExitCode);
        var (gcode, value) = Dotnet.RunProgram(bitcask, _work, Slow, IsolatedNuGet(), "get", data, "k");
        Assert.True(gcode == 0, value);
        Assert.Equal("installed", value.Trim());
    }

    /// <summary>
    /// The local folder plus the machine's normal sources (no &lt;clear/&gt;), restored into a fresh packages folder so
    /// that a copy of the same version cached earlier can never stand in; the user's cache serves the third-party
    /// dependencies offline.
    /// </summary>
    private void WriteNuGetConfig(string directory)
    {
        var userCache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p
            ? p : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var fallback = Directory.Exists(userCache)
            ? $"""<fallbackPackageFolders><add key="user-cache" value="{userCache}" /></fallbackPackageFolders>""" : "";
        File.WriteAllText(Path.Combine(directory, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config><add key="globalPackagesFolder" value="{Path.Combine(_work, "packages")}" /></config>
              <packageSources><add key="bitcask-local" value="{PackageFolder.Path}" /></packageSources>
              {fallback}
            </configuration>
            """);
    }

    private static Dictionary<string, string?> IsolatedNuGet() => new() { ["NUGET_PACKAGES"] = null };

    private const string ConsumerProgram = """
        using Bitcask;
        using Bitcask.Extensions.Hosting;
        using Microsoft.Extensions.DependencyInjection;
        using Microsoft.Extensions.Diagnostics.HealthChecks;
        using Microsoft.Extensions.Hosting;

        var dir = args[0];
        using (var store = BitcaskStore.Open(dir, new BitcaskOptions { Durability = Durability.Synced }))
            store.Put("greeting", "hello from a package");
        using (var store = BitcaskStore.Open(dir, new BitcaskOptions { ReadOnly = true }))
            Console.WriteLine($"read back: {store.GetString("greeting")}");

        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddBitcask(o => o.Path = dir);
        using (var host = builder.Build())
        {
            await host.StartAsync();
            var hosted = host.Services.GetRequiredService<BitcaskStore>();
            hosted.Put("second", "key");
            var check = new BitcaskHealthCheck(hosted);
            var health = await check.CheckHealthAsync(new HealthCheckContext
            {
                Registration = new HealthCheckRegistration("bitcask", check, null, null),
            });
            Console.WriteLine($"hosted store: {hosted.Count} keys, health {health.Status}");
            await host.StopAsync();
        }
        using (var store = BitcaskStore.Open(dir))
            Console.WriteLine($"stopped: reopened with {store.Count} keys");
        """;
}
