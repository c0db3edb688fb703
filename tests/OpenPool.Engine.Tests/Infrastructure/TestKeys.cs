namespace OpenPool.Engine.Tests.Infrastructure;

/// <summary>
/// Public keys made with ssh-keygen for these tests (the private halves were thrown away), with the
/// fingerprints ssh-keygen -lf printed for them: an oracle independent of the engine's code.
/// </summary>
public static class TestKeys
{
    public const string Ed25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA2gZUJtj1J1ZDeyQ2pRFrgEvhMbFUv+RxpjKccZ2G+n ada@lab";
    public const string Ed25519Fingerprint = "SHA256:UWoC+ThPmXwkL6I6f4TFIC+UFk8FH0C8Wo/5NHr4vB4";

    public const string Rsa2048 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC13QOXqm8kXuicHb1iPzsQII4naRWesne3SQRFZh6kl3TzDk03i7j0tGYC+q7c8JpLsxmGMD+dvDBz2Otu7gEpnkcZI+cCIdRtUEZtfvkUfg3mqoSXIf7P9/iUUdLIE3BDWwaG0I7gWqULPSTZPOchquW/QBSVc6gnc6lYkIEmCbJxeAih3uletSTy1sU5vk9uKzkf2l7I4kg6VPpif4n0Ue0Amr5odXtgWSOqs8yKJn+sqv1dSTmmKTHVCsf3oj0b5FNHWLRu2siGtYiTMRjcKCEujVrneqy5OLj/rN5fEJkI7p3W3w9FUR7pNybzXr1wLwOahiKMB9iRvUjalaon rsa@lab";
    public const string Rsa2048Fingerprint = "SHA256:jAvd05jhaJq/0bRmSfAXzMQUzPTzLe1vvuQ08fHyEbo";

    public const string EcdsaP256 = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBIaBpcRpe79MnNr7/SGjhDQUJALHv+7IeyXC7+sqqHR8pNxRfMmD5O3dMgVVVF5COzfO34MPF+R6ef41Nsb4qnM= ec@lab";
    public const string EcdsaP256Fingerprint = "SHA256:DLJV1yilQP85BhAr/Az0KFnEAwWPHj4caEy5D4pisYE";

    public const string EcdsaP384 = "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBD2SpNQ/3sLkF2rQJSAdTFX9jgS6y1wT3w/nStAJS2c/Q5UZDD3W78poAgbEhrUZmXGfWvhHf5/rclxEXvrhb8TLGndWGH6D6Q7mt7rfIWdZuKE7jep3OLmkiKD1E1D+vg== ec384";
    public const string EcdsaP384Fingerprint = "SHA256:Spxgu+gFzMpeMzzRnj6+n9+rTSsUFJgyFZSMuSlKH9c";

    /// <summary>Well-formed but only 1024 bits: too weak to accept.</summary>
    public const string Rsa1024 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDWv+WxfXQ4+noLDjAEN/pa1tOAwvtbcvwj/iZgc0QtHo+jqgr0InbSSMCt/Tkj5TGH5CXUBWOuyvtaXsFvH3x3CoCDN7N7Vp2+bXwcZxgFKhXpxoS7WKa9mls/0Ns+DnMTIw41YS9ONXaT69EUNWtl/zwYtyPFujYP9f8opYCFPQ== root@vm";
}
