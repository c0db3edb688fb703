using System.Net;
using Microsoft.AspNetCore.Routing.Matching;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace OpenPool.Engine.ObjectStorage.S3;

/// <summary>
/// Where the S3 endpoint listens once Kestrel has bound it (with port 0, the port it was given). The
/// endpoint's routes answer only on connections this listener accepted, and the TensorPool API only
/// on the others: the match is on the connection's local address, never on the Host header a client
/// chooses.
/// </summary>
internal sealed class S3EndpointAddress
{
    private ListenOptions? _listen;
    private string _scheme = "http";

    /// <summary>The bound URL (<c>http://127.0.0.1:PORT</c>), or null before binding (or in process, without Kestrel).</summary>
    public string? BoundUrl { get; private set; }

    /// <summary>The port the S3 listener is bound to, or -1.</summary>
    public int Port { get; private set; } = -1;

    private IPAddress? _specificAddress;

    internal void Listening(ListenOptions listen, string scheme)
    {
        _listen = listen;
        _scheme = scheme;
    }

    /// <summary>Reads the bound endpoint back from Kestrel once the server has started.</summary>
    internal void Bound()
    {
        if (_listen?.EndPoint is not IPEndPoint endpoint)
            return;
        Port = endpoint.Port;
        if (!endpoint.Address.Equals(IPAddress.Any) && !endpoint.Address.Equals(IPAddress.IPv6Any))
            _specificAddress = endpoint.Address;
        var host = endpoint.Address.Equals(IPAddress.Any) || endpoint.Address.Equals(IPAddress.IPv6Any)
            ? "localhost"
            : endpoint.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{endpoint.Address}]" : endpoint.Address.ToString();
        BoundUrl = $"{_scheme}://{host}:{endpoint.Port}";
    }

    /// <summary>Whether a request came in on the S3 listener.</summary>
    public bool IsS3Connection(ConnectionInfo connection)
    {
        if (Port < 0 || connection.LocalPort != Port)
            return false;
        if (_specificAddress is null)
            return true;
        var local = connection.LocalIpAddress;
        return local is not null && (local.Equals(_specificAddress) || (local.IsIPv4MappedToIPv6 && local.MapToIPv4().Equals(_specificAddress)));
    }

    /// <summary>
    /// Adds the S3 listener to Kestrel. <c>localhost</c> binds the IPv4 loopback only, so the bound
    /// address is one address; a host name other than an IP binds every interface (as Kestrel does).
    /// </summary>
    public void Listen(KestrelServerOptions kestrel, string url)
    {
        var address = BindingAddress.Parse(url);
        var ip = address.Host switch
        {
            "localhost" => IPAddress.Loopback,
            "*" or "+" or "0.0.0.0" => IPAddress.Any,
            "[::]" => IPAddress.IPv6Any,
            var host when IPAddress.TryParse(host.Trim('[', ']'), out var parsed) => parsed,
            _ => IPAddress.Any,
        };
        var https = address.Scheme.Equals("https", StringComparison.OrdinalIgnoreCase);
        kestrel.Listen(ip, address.Port, listen =>
        {
            if (https)
                listen.UseHttps();
            Listening(listen, https ? "https" : "http");
        });
    }
}

/// <summary>Marks the S3 endpoint's routes.</summary>
internal sealed class S3EndpointMetadata
{
    public static readonly S3EndpointMetadata Instance = new();
}

/// <summary>
/// Splits every route by listener before the HTTP method is looked at: connections to the S3
/// listener see only S3 routes, others only the rest. Running first keeps the API's 405s (a known
/// path with another method) intact, which a later filter would turn into 404s.
/// </summary>
internal sealed class S3ListenerPolicy(S3EndpointAddress address) : MatcherPolicy, INodeBuilderPolicy
{
    public override int Order => -2000; // before HttpMethodMatcherPolicy (-1000)

    // Every node, even one without S3 routes: on the S3 listener such a node must find nothing.
    public bool AppliesToEndpoints(IReadOnlyList<Endpoint> endpoints) => true;

    public IReadOnlyList<PolicyNodeEdge> GetEdges(IReadOnlyList<Endpoint> endpoints) =>
    [
        new PolicyNodeEdge(true, endpoints.Where(e => e.Metadata.GetMetadata<S3EndpointMetadata>() is not null).ToList()),
        new PolicyNodeEdge(false, endpoints.Where(e => e.Metadata.GetMetadata<S3EndpointMetadata>() is null).ToList()),
    ];

    public PolicyJumpTable BuildJumpTable(int exitDestination, IReadOnlyList<PolicyJumpTableEdge> edges)
    {
        int s3 = exitDestination, api = exitDestination;
        foreach (var edge in edges)
        {
            if ((bool)edge.State)
                s3 = edge.Destination;
            else
                api = edge.Destination;
        }
        return new JumpTable(address, s3, api);
    }

    private sealed class JumpTable(S3EndpointAddress address, int s3, int api) : PolicyJumpTable
    {
        public override int GetDestination(HttpContext httpContext) => address.IsS3Connection(httpContext.Connection) ? s3 : api;
    }
}
