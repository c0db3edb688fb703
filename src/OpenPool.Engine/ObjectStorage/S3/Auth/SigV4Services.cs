namespace OpenPool.Engine.ObjectStorage.S3.Auth;

internal static class SigV4Services
{
    /// <summary>
    /// Registers the "SigV4" scheme (<see cref="S3Claims.Scheme"/>). It is never the default: S3
    /// routes name it in their authorization policy, e.g.
    /// <c>RequireAuthorization(p =&gt; p.AddAuthenticationSchemes(S3Claims.Scheme).RequireAuthenticatedUser())</c>.
    /// </summary>
    public static void AddSigV4Authentication(this WebApplicationBuilder builder) =>
        builder.Services.AddAuthentication().AddScheme<SigV4Options, SigV4Handler>(S3Claims.Scheme, _ => { });
}
