using System.Globalization;
using System.Net;

namespace OpenPool.Engine.Providers.Simulated.Ssh;

/// <summary>SSH logins into simulated nodes (configuration section <c>Simulated</c>, keys <c>Ssh…</c>).</summary>
internal sealed class SimulatedSshOptions
{
    /// <summary>The host name or address that <c>GET /ssh</c> puts in its command: one the users' machines reach this host by.</summary>
    public string SshHost { get; set; } = "127.0.0.1";

    /// <summary>
    /// The local address node ports listen on. Unset: <see cref="SshHost"/> when it is an address,
    /// otherwise every address of the host.
    /// </summary>
    public string? SshListen { get; set; }

    /// <summary>
    /// The TCP ports nodes get, <c>FIRST-LAST</c>, one per running node. The default holds 10,000
    /// nodes below Linux's ephemeral range (32768–60999), so outgoing connections never take them.
    /// </summary>
    public string SshPorts { get; set; } = "20000-29999";

    /// <summary>OpenSSH's server (Debian's <c>openssh-server</c>); it must live under <c>/usr</c>, the only host tree a node sees.</summary>
    public string Sshd { get; set; } = "/usr/sbin/sshd";

    /// <summary>
    /// Logins a node serves at once (connections beyond it are closed at once): <c>sshd -i</c> has
    /// no MaxStartups of its own, so this bounds what unauthenticated connections can make the host start.
    /// </summary>
    public int SshMaxSessionsPerNode { get; set; } = 32;

    /// <summary>The configured port range, or null with the reason when it is not one.</summary>
    public (int First, int Last)? PortRange(out string? problem)
    {
        problem = null;
        var parts = SshPorts.Split('-', 2, StringSplitOptions.TrimEntries);
        if (parts.Length == 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var first)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var last)
            && first is >= 1024 and <= 65535 && last >= first && last <= 65535)
            return (first, last);
        problem = $"Simulated:SshPorts must be FIRST-LAST with 1024 <= FIRST <= LAST <= 65535 (it is '{SshPorts}')";
        return null;
    }

    /// <summary>The address node ports are bound to.</summary>
    public IPAddress ListenAddress() =>
        IPAddress.TryParse(SshListen ?? SshHost, out var address) ? address : IPAddress.Any;
}
