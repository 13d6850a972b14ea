using System.Diagnostics;
using Bitcask.Server.Tests.Infrastructure;

namespace Bitcask.Server.Tests;

/// <summary>'bitcask serve' as a program: the password never comes from the command line, a non-loopback bind needs
/// one, and the password from the environment or a file is what clients must AUTH with.</summary>
public class ServeCommandTests
{
    private static (int Exit, string Output, string Error) Serve(string[] args, Dictionary<string, string>? environment = null, Func<string, bool>? untilLine = null)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Tools.CliDll());
        psi.ArgumentList.Add("serve");
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("BITCASK_REQUIREPASS");
        foreach (var (k, v) in environment ?? []) psi.Environment[k] = v;
        using var process = Process.Start(psi)!;
        var error = process.StandardError.ReadToEndAsync();
        var output = new System.Text.StringBuilder();
        string? line;
        try
        {
            while ((line = process.StandardOutput.ReadLine()) is not null)
            {
                output.AppendLine(line);
                if (untilLine?.Invoke(line) == true) break;
            }
        }
        catch
        {
            process.Kill(entireProcessTree: true); // never leave a server behind
            throw;
        }
        if (!process.HasExited)
        {
            Process.Start("kill", ["-TERM", process.Id.ToString()])!.WaitForExit();
            output.Append(process.StandardOutput.ReadToEnd());
        }
        Assert.True(process.WaitForExit(60_000));
        return (process.ExitCode, output.ToString(), error.Result);
    }

    private static string NewDir() => Path.Combine(Path.GetTempPath(), "bitcask-serve-" + Guid.NewGuid().ToString("N")[..8]);

    [Fact]
    public void A_non_loopback_bind_without_a_password_exits_2_naming_the_fix_and_a_password_option_on_the_command_line_does_not_exist()
    {
        var (exit, _, error) = Serve([NewDir(), "--bind", "0.0.0.0", "--port", "0"]);
        Assert.Equal(2, exit);
        Assert.Contains("refusing to listen on 0.0.0.0 without a password", error);
        var (exit2, _, error2) = Serve([NewDir(), "--requirepass", "visible-in-ps", "--port", "0"]);
        Assert.Equal(2, exit2);
        Assert.Contains("--requirepass", error2);
    }

    [Fact]
    public void The_password_from_the_environment_or_a_file_is_required_and_a_sigterm_stops_the_server_cleanly()
    {
        var file = Path.GetTempFileName();
        File.WriteAllText(file, "from-file\n");
        try
        {
            foreach (var (args, environment, password) in new[]
            {
                (new[] { NewDir(), "--port", "0", "--bind", "0.0.0.0" }, new Dictionary<string, string> { ["BITCASK_REQUIREPASS"] = "from-env" }, "from-env"),
                (new[] { NewDir(), "--port", "0", "--requirepass-file", file }, new Dictionary<string, string>(), "from-file"),
            })
            {
                object? before = null, after = null;
                var (exit, output, _) = Serve(args, environment, line =>
                {
                    if (!line.StartsWith("Ready to accept connections on ", StringComparison.Ordinal)) return false;
                    var port = int.Parse(line.Split(' ')[5].Split(':')[^1]);
                    using var client = RespConnection.Open(port);
                    before = client.Call("GET", "k");
                    client.Call("AUTH", password);
                    after = client.Call("SET", "k", "v");
                    return true;
                });
                Assert.Equal(new RespError("NOAUTH Authentication required."), before);
                Assert.Equal(new RespSimple("OK"), after);
                Assert.Equal(0, exit);
                Assert.Contains("Stopped; every acknowledged write is on disk", output);
            }
        }
        finally
        {
            File.Delete(file);
        }
    }
}
