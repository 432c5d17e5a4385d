//! CI provider presets: per-provider defaults and shape checks for CI OIDC ID tokens.
//!
//! A preset tells the rest of the engine what a provider's tokens look like: the issuer to use
//! when the config gives none, which issuer URLs have the provider's shape, where the JWKS lives,
//! which algorithms the provider signs with, which claims every token carries, whether the issuer
//! is shared by every tenant of the platform (so a valid signature proves only the platform), which
//! claims pin a tenant, the documented token lifetime, and any extra claim checks.
//!
//! Every provider fact here comes from the provider's public documentation, cited below as
//! "ref §N" for entry N of this list:
//!
//! 1. GitHub Actions: <https://docs.github.com/en/actions/reference/security/oidc>,
//!    <https://docs.github.com/en/actions/concepts/security/openid-connect>.
//! 2. GitLab CI/CD `id_tokens`: <https://docs.gitlab.com/ci/secrets/id_token_authentication/>.
//! 3. CircleCI: <https://circleci.com/docs/openid-connect-tokens/>.
//! 4. Buildkite: <https://buildkite.com/docs/agent/v3/cli-oidc>,
//!    <https://buildkite.com/docs/pipelines/security/oidc>.
//! 5. Bitbucket Pipelines: <https://support.atlassian.com/bitbucket-cloud/docs/integrate-pipelines-with-resource-servers-using-oidc/>.
//! 6. Azure DevOps: <https://learn.microsoft.com/en-us/azure/devops/pipelines/release/configure-workload-identity>
//!    and Teleport RFD 211 "Azure DevOps Joining" (real tokens and discovery document,
//!    <https://github.com/gravitational/teleport/blob/master/rfd/0211-azure-devops-joining.md>).
//! 7. Google ID tokens: <https://cloud.google.com/docs/authentication/get-id-token>,
//!    <https://accounts.google.com/.well-known/openid-configuration>.
//! 8. Jenkins oidc-provider plugin: <https://github.com/jenkinsci/oidc-provider-plugin>.
//! 9. HCP Terraform workload identity:
//!    <https://developer.hashicorp.com/terraform/cloud-docs/workspaces/dynamic-provider-credentials/workload-identity-tokens>.
//! 10. Codefresh: <https://codefresh.io/docs/docs/integrations/oidc-pipelines/>.
//! 11. SPIFFE JWT-SVID: <https://github.com/spiffe/spiffe/blob/main/standards/JWT-SVID.md>; SPIRE:
//!     <https://github.com/spiffe/spire/blob/main/support/oidc-discovery-provider/README.md>.
//!
//! Facts a single secondary source gives, or that are inferred, are marked "verify" where used.
//!
//! Issuers are compared exactly (OpenID Connect Core 1.0 §3.1.3.7 step 2): the checks here never
//! normalise, they reject a trailing `/`, `http://`, a query or fragment, user info, upper-case
//! hosts and hosts that merely start with a provider's host (`gitlab.com.evil.example`).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{Map, Value};

use crate::alg::Algorithm;

/// A CI provider preset: defaults and checks for one provider's OIDC tokens.
pub struct Preset {
    /// Preset name as written in config (`github-actions`, ...).
    pub name: &'static str,
    /// Human name for messages ("GitHub Actions").
    pub display_name: &'static str,
    /// The issuer used when the config gives none; None means the config must give `issuer`.
    pub default_issuer: Option<&'static str>,
    /// Checks that a configured issuer has this provider's shape; Err(reason) names what is wrong
    /// (e.g. circleci issuer must be `https://oidc.circleci.com/org/<uuid>`). Exact URLs only: no trailing slash.
    pub check_issuer: fn(&str) -> Result<(), String>,
    /// Where this provider serves its JWKS given the issuer, when known without discovery
    /// (e.g. github: `<iss>/.well-known/jwks`); None = use OIDC discovery.
    pub jwks_uri: fn(&str) -> Option<String>,
    /// Algorithms the provider signs with (the issuer's allow-list when the config gives none).
    /// Empty (only `generic`) means there is no default: the config must list the algorithms.
    pub algorithms: &'static [Algorithm],
    /// Claims every token from this provider must carry (beyond iss/aud/exp which the core always requires),
    /// e.g. github: sub, repository, repository_owner_id, ... Only claims the provider documents as always present.
    pub required_claims: &'static [&'static str],
    /// True when this issuer URL is shared by every organisation on the platform (github.com, gitlab.com,
    /// buildkite, ...): a valid signature then proves only the platform, not the tenant.
    ///
    /// Azure DevOps answers false: its JWKS is shared by every organisation, but each organisation
    /// has its own `iss` (`https://vstoken.dev.azure.com/<org-uuid>`), which the core matches exactly,
    /// so the configured issuer itself pins the tenant (ref §6).
    pub shared_issuer: fn(&str) -> bool,
    /// Claims that pin an organisation/tenant (e.g. repository_owner_id, repository_owner, namespace_id, ...):
    /// ids (ending in `_id` or `-id`) and names. Config validation warns when a shared-issuer
    /// preset's policy pins no id ([`Preset::org_pin_advice`]).
    pub org_pin_claims: &'static [&'static str],
    /// The provider's maximum documented token lifetime (exp - iat), used as the default max_lifetime_seconds
    /// when the config gives none; None when the provider documents none or it is unbounded (gitlab: job timeout).
    ///
    /// Where the provider documents only a configurable default (Buildkite `--lifetime`, Jenkins
    /// token lifetime, SPIRE `default_jwt_svid_ttl`, Codefresh TTL), that default is used: a longer
    /// lifetime then needs an explicit `max_lifetime_seconds`, which fails closed.
    pub max_lifetime_seconds: Option<u64>,
    /// Extra claim checks after signature and standard claims pass (e.g. spiffe: `sub` is a valid SPIFFE ID,
    /// `aud` present). Err(reason) names the claim and what is wrong. Must never panic on any JSON.
    pub check_claims: fn(&Map<String, Value>) -> Result<(), String>,
}

impl core::fmt::Debug for Preset {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Preset")
            .field("name", &self.name)
            .field("default_issuer", &self.default_issuer)
            .field("algorithms", &self.algorithms)
            .field("max_lifetime_seconds", &self.max_lifetime_seconds)
            .finish_non_exhaustive()
    }
}

/// Every preset, in documentation order (the order of the module docs' source list), `generic` last.
pub static PRESETS: &[Preset] = &[
    GITHUB_ACTIONS,
    GITLAB,
    CIRCLECI,
    BUILDKITE,
    BITBUCKET,
    AZURE_DEVOPS,
    GOOGLE_CLOUD_BUILD,
    JENKINS,
    TERRAFORM_CLOUD,
    CODEFRESH,
    SPIFFE,
    GENERIC,
];

/// Looks a preset up by its config name.
pub fn lookup(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// The preset names, for error messages ("unknown preset `x`; expected one of: ...").
pub fn names() -> impl Iterator<Item = &'static str> {
    PRESETS.iter().map(|p| p.name)
}

impl Preset {
    /// The warning for an issuer entry with this preset that trusts `iss`, when `iss` is shared
    /// by a whole platform and `mentions` pins no organisation id ([`Preset::org_pin_advice`]);
    /// None otherwise. Under `generic`, a known shared issuer is named with the preset that
    /// knows its claims. The caller says where the pin belongs ("in the policy", …).
    pub fn org_pin_warning(
        &'static self,
        iss: &str,
        mentions: &dyn Fn(&str) -> bool,
    ) -> Option<String> {
        if !(self.shared_issuer)(iss) {
            return None;
        }
        // `generic` has no claims of its own: the advice is the platform's.
        let platform = if self.org_pin_claims.is_empty() {
            known_shared_issuer(iss)?
        } else {
            self
        };
        let advice = platform.org_pin_advice(mentions)?;
        let preset_hint = if core::ptr::eq(platform, self) {
            String::new()
        } else {
            format!(" (preset \"{}\" knows its claims)", platform.name)
        };
        Some(format!(
            "{iss} issues tokens to every {} organisation{preset_hint}; {advice}",
            platform.display_name
        ))
    }

    /// For a shared issuer: None when `mentions` (which claims a policy pins) includes one of
    /// the tenant's **id** claims, else the warning's advice. Names alone do not count: an
    /// organisation can be renamed and its old name registered by someone else. Presence checks
    /// (`require`) do not count either: every token carries the claim.
    pub fn org_pin_advice(&self, mentions: &dyn Fn(&str) -> bool) -> Option<String> {
        let is_id = |c: &&str| c.ends_with("_id") || c.ends_with("-id");
        let ids: Vec<&str> = self.org_pin_claims.iter().copied().filter(is_id).collect();
        if ids.iter().any(|c| mentions(c)) {
            return None;
        }
        let by_name = self.org_pin_claims.iter().any(|c| !is_id(c) && mentions(c));
        Some(format!(
            "{}pin your organisation by an id claim (one of: {})",
            if by_name {
                "it is pinned by name only, and names can be re-registered: "
            } else {
                ""
            },
            ids.join(", ")
        ))
    }
}

/// The provider preset (never `generic`) whose shared, platform-wide issuer this is, if any:
/// e.g. `https://token.actions.githubusercontent.com` gives `github-actions`. Lets config validation
/// notice a `generic` issuer that is really a shared CI issuer and suggest the provider's preset.
pub fn known_shared_issuer(issuer: &str) -> Option<&'static Preset> {
    PRESETS
        .iter()
        .filter(|p| p.name != GENERIC.name)
        .find(|p| (p.shared_issuer)(issuer))
}

// ---------------------------------------------------------------------------------------------
// The presets
// ---------------------------------------------------------------------------------------------

const RS256_ONLY: &[Algorithm] = &[Algorithm::RS256];

/// github.com's shared issuer (ref §1).
const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
const GITHUB_HOST: &str = "token.actions.githubusercontent.com";

/// GitHub Actions (ref §1). RS256, `exp = iat + 300` (cannot be extended), `nbf = iat - 600`.
/// Every claim value except `exp`/`iat`/`nbf` is a JSON string, IDs included.
const GITHUB_ACTIONS: Preset = Preset {
    name: "github-actions",
    display_name: "GitHub Actions",
    default_issuer: Some(GITHUB_ISSUER),
    check_issuer: check_github_issuer,
    jwks_uri: github_jwks_uri,
    algorithms: RS256_ONLY,
    // Claims present on every job's token (ref §1 claim table and example). Left out: `environment`
    // (only with an environment), `enterprise*` (GHEC only), `check_run_id` (newer),
    // `ref_type` (PR tokens unconfirmed, ref §1), `ref_protected` (not in GitHub's own table).
    required_claims: &[
        "sub",
        "jti",
        "iat",
        "repository",
        "repository_id",
        "repository_owner",
        "repository_owner_id",
        "ref",
        "sha",
        "event_name",
        "workflow_ref",
        "job_workflow_ref",
    ],
    shared_issuer: github_shared_issuer,
    // Tenant pins (ref §1): IDs first; names are mutable and re-registrable (recycled names:
    // Astrix "Sub:jugation", https://astrix.security/learn/blog/subjugation-hijacking-cloud-identities-by-recycling).
    org_pin_claims: &[
        "repository_owner_id",
        "repository_owner",
        "repository_id",
        "repository",
        "enterprise_id",
        "enterprise",
    ],
    max_lifetime_seconds: Some(300),
    check_claims: no_extra_checks,
};

/// Accepts the four GitHub issuer forms of ref §1:
/// `https://token.actions.githubusercontent.com[/<enterprise-slug>]`,
/// `https://token.actions.<subdomain>.ghe.com[/<enterprise-slug>]` and
/// `https://<GHES host>/_services/token`.
fn check_github_issuer(iss: &str) -> Result<(), String> {
    let url = parse_https(iss)?;
    if url.host == GITHUB_HOST || ghe_com_subdomain(url.host).is_some() {
        if url.port.is_some() {
            return Err(format!("GitHub issuer `{iss}` must not give a port"));
        }
        return match url.path.strip_prefix('/') {
            None => Ok(()),
            Some(slug) => check_enterprise_slug(iss, slug),
        };
    }
    if url.path == "/_services/token" {
        if is_github_operated(url.host) {
            return Err(format!(
                "`{}` is (or looks like) a host GitHub runs, not a GitHub Enterprise Server \
                 host; a GHES issuer is `https://<GHES host>/_services/token`",
                url.host
            ));
        }
        return Ok(());
    }
    Err(format!(
        "a GitHub Actions issuer must be `{GITHUB_ISSUER}`, `{GITHUB_ISSUER}/<enterprise-slug>`, \
         `https://token.actions.<subdomain>.ghe.com[/<enterprise-slug>]` or \
         `https://<GHES host>/_services/token`; got `{iss}`"
    ))
}

/// The `<subdomain>` of a GHE.com (data residency) issuer host `token.actions.<subdomain>.ghe.com`.
fn ghe_com_subdomain(host: &str) -> Option<&str> {
    let sub = host
        .strip_prefix("token.actions.")?
        .strip_suffix(".ghe.com")?;
    (!sub.is_empty() && !sub.contains('.')).then_some(sub)
}

/// Enterprise slugs are one path segment of lower-case letters, digits and `-`.
fn check_enterprise_slug(iss: &str, slug: &str) -> Result<(), String> {
    if !slug.is_empty()
        && slug
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
    {
        Ok(())
    } else {
        Err(format!(
            "GitHub issuer `{iss}`: after the host only one enterprise slug \
             (lower-case letters, digits, `-`) may follow"
        ))
    }
}

/// Hosts GitHub itself runs (and lookalikes of them), which are never a GHES host.
fn is_github_operated(host: &str) -> bool {
    host.contains("githubusercontent")
        || is_or_under(host, "github.com")
        || is_or_under(host, "ghe.com")
}

/// Only the github.com issuer has a documented JWKS path; the other forms use discovery (ref §1).
fn github_jwks_uri(iss: &str) -> Option<String> {
    (iss == GITHUB_ISSUER).then(|| format!("{iss}/.well-known/jwks"))
}

/// Only the bare github.com issuer is shared by every account. The enterprise form exists to keep
/// other tenants out, and GHE.com and GHES issuers belong to one enterprise (ref §1).
fn github_shared_issuer(iss: &str) -> bool {
    iss == GITHUB_ISSUER
}

/// gitlab.com's shared issuer (ref §2).
const GITLAB_ISSUER: &str = "https://gitlab.com";
const GITLAB_HOST: &str = "gitlab.com";

/// GitLab CI/CD `id_tokens` (ref §2). RS256; `exp = iat + job timeout` (5 min when none is set),
/// so there is no fixed upper bound.
const GITLAB: Preset = Preset {
    name: "gitlab",
    display_name: "GitLab CI/CD",
    default_issuer: Some(GITLAB_ISSUER),
    check_issuer: check_gitlab_issuer,
    jwks_uri: gitlab_jwks_uri,
    algorithms: RS256_ONLY,
    // Claims the ref §2 table marks "always" (without a version note), plus `jti` (ref §2 claim list).
    required_claims: &[
        "sub",
        "jti",
        "iat",
        "namespace_id",
        "namespace_path",
        "project_id",
        "project_path",
        "pipeline_id",
        "pipeline_source",
        "job_id",
        "ref",
        "ref_type",
        "ref_protected",
        "sha",
    ],
    shared_issuer: gitlab_shared_issuer,
    // ref §2 "Claims to pin": `namespace_id`/`project_id`; `job_*` name the project the job ran in.
    org_pin_claims: &[
        "namespace_id",
        "namespace_path",
        "project_id",
        "project_path",
        "job_namespace_id",
        "job_namespace_path",
        "job_project_id",
        "job_project_path",
    ],
    max_lifetime_seconds: None,
    check_claims: no_extra_checks,
};

/// `https://gitlab.com` exactly, or a self-managed instance URL (which may carry a relative
/// URL root, e.g. `https://example.com/gitlab`).
fn check_gitlab_issuer(iss: &str) -> Result<(), String> {
    let url = parse_https(iss)?;
    if url.host == GITLAB_HOST && (url.port.is_some() || !url.path.is_empty()) {
        return Err(format!(
            "the gitlab.com issuer is exactly `{GITLAB_ISSUER}`; got `{iss}`"
        ));
    }
    reject_lookalike(url.host, GITLAB_HOST)
}

/// JWKS at `<iss>/oauth/discovery/keys` (ref §2).
fn gitlab_jwks_uri(iss: &str) -> Option<String> {
    Some(format!("{iss}/oauth/discovery/keys"))
}

/// On gitlab.com anyone can create a namespace (ref §2 pitfalls); self-managed instances are yours.
fn gitlab_shared_issuer(iss: &str) -> bool {
    iss == GITLAB_ISSUER
}

const CIRCLECI_ORG_PREFIX: &str = "https://oidc.circleci.com/org/";

/// CircleCI (ref §3). One issuer per organisation, so there is no default. RS256, `exp = iat + 3600`.
const CIRCLECI: Preset = Preset {
    name: "circleci",
    display_name: "CircleCI",
    default_issuer: None,
    check_issuer: check_circleci_issuer,
    jwks_uri: circleci_jwks_uri,
    algorithms: RS256_ONLY,
    // `vcs-origin`/`vcs-ref` are absent for custom-webhook triggers (ref §3), so not required.
    required_claims: &[
        "sub",
        "jti",
        "iat",
        "oidc.circleci.com/org-id",
        "oidc.circleci.com/project-id",
    ],
    shared_issuer: never_shared,
    org_pin_claims: &["oidc.circleci.com/org-id", "oidc.circleci.com/project-id"],
    max_lifetime_seconds: Some(3600),
    check_claims: no_extra_checks,
};

/// `https://oidc.circleci.com/org/<org-uuid>` with a lower-case UUID. The bare
/// `https://oidc.circleci.com` (ref §3; not confirmed for custom-`aud` tokens) is refused: it is unverified and
/// would not pin the organisation.
fn check_circleci_issuer(iss: &str) -> Result<(), String> {
    parse_https(iss)?;
    match iss.strip_prefix(CIRCLECI_ORG_PREFIX) {
        Some(org) => check_uuid(org)
            .map_err(|e| format!("CircleCI issuer `{iss}`: the organisation id `{org}` {e}")),
        None if iss == "https://oidc.circleci.com" => Err(String::from(
            "the bare CircleCI issuer `https://oidc.circleci.com` is not accepted: give the \
             organisation's issuer `https://oidc.circleci.com/org/<org-uuid>`",
        )),
        None => Err(format!(
            "a CircleCI issuer must be `{CIRCLECI_ORG_PREFIX}<org-uuid>`; got `{iss}`"
        )),
    }
}

/// JWKS at `<iss>/.well-known/jwks-pub.json` (ref §3).
fn circleci_jwks_uri(iss: &str) -> Option<String> {
    Some(format!("{iss}/.well-known/jwks-pub.json"))
}

const BUILDKITE_ISSUER: &str = "https://agent.buildkite.com";

/// Buildkite (ref §4). One issuer for every organisation. RS256; `exp = iat + 300` by default
/// (`buildkite-agent oidc request-token --lifetime` changes it).
const BUILDKITE: Preset = Preset {
    name: "buildkite",
    display_name: "Buildkite",
    default_issuer: Some(BUILDKITE_ISSUER),
    check_issuer: check_buildkite_issuer,
    jwks_uri: buildkite_jwks_uri,
    algorithms: RS256_ONLY,
    // Default claims (ref §4 table); `organization_id`, `pipeline_id`, ... appear only when
    // requested with `--claim`, and `build_tag`/`step_key` may be null.
    required_claims: &[
        "sub",
        "jti",
        "iat",
        "organization_slug",
        "pipeline_slug",
        "build_number",
        "build_commit",
        "job_id",
    ],
    shared_issuer: buildkite_shared_issuer,
    // ref §4 "Claims to pin": `organization_id` (request it) or at least `organization_slug`;
    // `pipeline_id` is a global UUID, so it pins the organisation too.
    org_pin_claims: &["organization_id", "organization_slug", "pipeline_id"],
    max_lifetime_seconds: Some(300),
    check_claims: no_extra_checks,
};

fn check_buildkite_issuer(iss: &str) -> Result<(), String> {
    check_exact(iss, BUILDKITE_ISSUER, "Buildkite")
}

/// JWKS at `https://agent.buildkite.com/.well-known/jwks` (ref §4).
fn buildkite_jwks_uri(iss: &str) -> Option<String> {
    Some(format!("{iss}/.well-known/jwks"))
}

fn buildkite_shared_issuer(iss: &str) -> bool {
    iss == BUILDKITE_ISSUER
}

const BITBUCKET_PREFIX: &str = "https://api.bitbucket.org/2.0/workspaces/";
const BITBUCKET_SUFFIX: &str = "/pipelines-config/identity/oidc";

/// Bitbucket Pipelines (ref §5). One issuer per workspace, keyed by the mutable workspace slug,
/// so there is no default. RS256. The lifetime is not documented (ref §5: verify).
const BITBUCKET: Preset = Preset {
    name: "bitbucket",
    display_name: "Bitbucket Pipelines",
    default_issuer: None,
    check_issuer: check_bitbucket_issuer,
    jwks_uri: bitbucket_jwks_uri,
    algorithms: RS256_ONLY,
    // The UUIDs every step's token carries (ref §5 claims and `sub` format). Bitbucket sets no
    // `jti` and no `nbf`; `deploymentEnvironmentUuid` is for deployment steps only.
    required_claims: &[
        "sub",
        "iat",
        "workspaceUuid",
        "repositoryUuid",
        "pipelineUuid",
        "stepUuid",
    ],
    shared_issuer: never_shared,
    // The slug in the issuer is mutable: pin `workspaceUuid` (ref §5).
    org_pin_claims: &["workspaceUuid", "repositoryUuid"],
    max_lifetime_seconds: None,
    check_claims: no_extra_checks,
};

/// `https://api.bitbucket.org/2.0/workspaces/<workspace-slug>/pipelines-config/identity/oidc`.
fn check_bitbucket_issuer(iss: &str) -> Result<(), String> {
    parse_https(iss)?;
    let slug = iss
        .strip_prefix(BITBUCKET_PREFIX)
        .and_then(|rest| rest.strip_suffix(BITBUCKET_SUFFIX))
        .ok_or_else(|| {
            format!(
                "a Bitbucket issuer must be `{BITBUCKET_PREFIX}<workspace-slug>{BITBUCKET_SUFFIX}`; \
                 got `{iss}`"
            )
        })?;
    let slug_ok = !slug.is_empty()
        && slug
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_'));
    if slug_ok {
        Ok(())
    } else {
        Err(format!(
            "Bitbucket issuer `{iss}`: the workspace slug `{slug}` must be lower-case letters, \
             digits, `-` and `_`"
        ))
    }
}

/// JWKS at `<iss>/keys.json` (ref §5).
fn bitbucket_jwks_uri(iss: &str) -> Option<String> {
    Some(format!("{iss}/keys.json"))
}

const AZURE_DEVOPS_PREFIX: &str = "https://vstoken.dev.azure.com/";

/// The one JWKS that signs every Azure DevOps organisation's tokens (ref §6).
pub const AZURE_DEVOPS_JWKS_URI: &str = "https://vstoken.dev.azure.com/.well-known/jwks";

/// Azure DevOps pipeline ID tokens (ref §6). One issuer per organisation (no default), one JWKS
/// for all. RS256, `exp = iat + 299`, `nbf = iat - 600`, `aud` fixed at `api://AzureADTokenExchange`
/// (so replay protection through a `jti` cache matters, ref §6 pitfalls).
const AZURE_DEVOPS: Preset = Preset {
    name: "azure-devops",
    display_name: "Azure DevOps Pipelines",
    default_issuer: None,
    check_issuer: check_azure_devops_issuer,
    jwks_uri: azure_devops_jwks_uri,
    algorithms: RS256_ONLY,
    // Service-connection tokens (same issuer) carry only standard claims, so the pipeline claims
    // (`org_id`, `prj_id`, `def_id`, ...) are not required. `jti` is required: with a fixed `aud`
    // it is the only replay handle (ref §6).
    required_claims: &["sub", "jti", "iat"],
    shared_issuer: never_shared,
    org_pin_claims: &["org_id", "prj_id"],
    max_lifetime_seconds: Some(300),
    check_claims: no_extra_checks,
};

/// `https://vstoken.dev.azure.com/<org-uuid>` with a lower-case UUID.
fn check_azure_devops_issuer(iss: &str) -> Result<(), String> {
    parse_https(iss)?;
    match iss.strip_prefix(AZURE_DEVOPS_PREFIX) {
        Some(org) if !org.is_empty() => check_uuid(org)
            .map_err(|e| format!("Azure DevOps issuer `{iss}`: the organisation id `{org}` {e}")),
        _ => Err(format!(
            "an Azure DevOps issuer must be `{AZURE_DEVOPS_PREFIX}<org-uuid>`; got `{iss}`"
        )),
    }
}

fn azure_devops_jwks_uri(_iss: &str) -> Option<String> {
    Some(String::from(AZURE_DEVOPS_JWKS_URI))
}

const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// Google service-account ID tokens minted in Cloud Build (ref §7). `accounts.google.com` issues
/// tokens for every Google identity. RS256, lifetime 1 h.
const GOOGLE_CLOUD_BUILD: Preset = Preset {
    name: "google-cloud-build",
    display_name: "Google Cloud Build (service-account ID token)",
    default_issuer: Some(GOOGLE_ISSUER),
    check_issuer: check_google_issuer,
    jwks_uri: google_jwks_uri,
    algorithms: RS256_ONLY,
    required_claims: &["sub", "iat"],
    shared_issuer: google_shared_issuer,
    // `sub` here is the service account's stable unique ID, the stable pin ref §7 names.
    org_pin_claims: &["sub", "email", "azp"],
    max_lifetime_seconds: Some(3600),
    check_claims: no_extra_checks,
};

fn check_google_issuer(iss: &str) -> Result<(), String> {
    check_exact(iss, GOOGLE_ISSUER, "Google")
}

/// JWKS at `https://www.googleapis.com/oauth2/v3/certs` (ref §7).
fn google_jwks_uri(_iss: &str) -> Option<String> {
    Some(String::from("https://www.googleapis.com/oauth2/v3/certs"))
}

fn google_shared_issuer(iss: &str) -> bool {
    iss == GOOGLE_ISSUER
}

/// Jenkins with the oidc-provider plugin (ref §8). The issuer is the instance's (`<root>/oidc`),
/// a folder's (`<root>/job/<f>/oidc`) or an admin-chosen static URL. RS256 (RSA-2048),
/// `exp = iat + 3600` by default, no `nbf`, no `jti`; `aud` only when the credential sets one
/// (the core requires it).
const JENKINS: Preset = Preset {
    name: "jenkins",
    display_name: "Jenkins (oidc-provider plugin)",
    default_issuer: None,
    check_issuer: check_any_https_issuer,
    jwks_uri: jenkins_jwks_uri,
    algorithms: RS256_ONLY,
    // `build_number` is absent outside builds (ref §8).
    required_claims: &["sub", "iat"],
    shared_issuer: never_shared,
    org_pin_claims: &[],
    max_lifetime_seconds: Some(3600),
    check_claims: no_extra_checks,
};

/// JWKS at `<iss>/jwks` for the plugin's own issuers (ending in `/oidc`); an external static
/// issuer's files are found by discovery.
fn jenkins_jwks_uri(iss: &str) -> Option<String> {
    iss.ends_with("/oidc").then(|| format!("{iss}/jwks"))
}

const TERRAFORM_CLOUD_ISSUER: &str = "https://app.terraform.io";
const TERRAFORM_CLOUD_HOST: &str = "app.terraform.io";

/// HCP Terraform (Terraform Cloud) and Terraform Enterprise workload identity (ref §9). RS256,
/// `nbf = iat - 5`; tokens live "until the end of the plan or apply timeout", so no fixed bound.
const TERRAFORM_CLOUD: Preset = Preset {
    name: "terraform-cloud",
    display_name: "HCP Terraform / Terraform Enterprise",
    default_issuer: Some(TERRAFORM_CLOUD_ISSUER),
    check_issuer: check_terraform_issuer,
    jwks_uri: terraform_jwks_uri,
    algorithms: RS256_ONLY,
    // Project claims are left out: older tokens had no project (ref §9).
    required_claims: &[
        "sub",
        "jti",
        "iat",
        "terraform_organization_id",
        "terraform_organization_name",
        "terraform_workspace_id",
        "terraform_workspace_name",
        "terraform_run_id",
        "terraform_run_phase",
    ],
    shared_issuer: terraform_shared_issuer,
    org_pin_claims: &[
        "terraform_organization_id",
        "terraform_organization_name",
        "terraform_project_id",
        "terraform_workspace_id",
        "terraform_full_workspace",
    ],
    max_lifetime_seconds: None,
    check_claims: no_extra_checks,
};

/// `https://app.terraform.io` or a TFE host `https://<tfe-host>[:port]`, without a path.
fn check_terraform_issuer(iss: &str) -> Result<(), String> {
    let url = parse_https(iss)?;
    if url.host == TERRAFORM_CLOUD_HOST && url.port.is_some() {
        return Err(format!(
            "the HCP Terraform issuer is exactly `{TERRAFORM_CLOUD_ISSUER}`; got `{iss}`"
        ));
    }
    if !url.path.is_empty() {
        return Err(format!(
            "a Terraform issuer is `{TERRAFORM_CLOUD_ISSUER}` or `https://<tfe-host>`, \
             without a path; got `{iss}`"
        ));
    }
    reject_lookalike(url.host, TERRAFORM_CLOUD_HOST)
}

/// JWKS at `<iss>/.well-known/jwks` (ref §9).
fn terraform_jwks_uri(iss: &str) -> Option<String> {
    Some(format!("{iss}/.well-known/jwks"))
}

/// app.terraform.io is one global issuer (ref §9; recycled names: Astrix "Sub:jugation"); a TFE
/// host is yours.
fn terraform_shared_issuer(iss: &str) -> bool {
    iss == TERRAFORM_CLOUD_ISSUER
}

const CODEFRESH_ISSUER: &str = "https://oidc.codefresh.io";

/// Codefresh (ref §10). One issuer for every account. The signing algorithm is not stated in the
/// docs (RS256 expected, verify): an allow-list that is wrong fails closed. Tokens expire
/// after 5 minutes per the docs (a TTL setting was added later). JWKS via discovery.
const CODEFRESH: Preset = Preset {
    name: "codefresh",
    display_name: "Codefresh",
    default_issuer: Some(CODEFRESH_ISSUER),
    check_issuer: check_codefresh_issuer,
    jwks_uri: use_discovery,
    algorithms: RS256_ONLY,
    // Present for every trigger type (ref §10 `sub` forms and claim list).
    required_claims: &["sub", "iat", "account_id", "pipeline_id", "workflow_id"],
    shared_issuer: codefresh_shared_issuer,
    org_pin_claims: &["account_id", "account_name", "pipeline_id"],
    max_lifetime_seconds: Some(300),
    check_claims: no_extra_checks,
};

fn check_codefresh_issuer(iss: &str) -> Result<(), String> {
    check_exact(iss, CODEFRESH_ISSUER, "Codefresh")
}

fn codefresh_shared_issuer(iss: &str) -> bool {
    iss == CODEFRESH_ISSUER
}

/// Every algorithm the JWT-SVID spec allows that Gateward can verify: RS/PS 256/384/512 and
/// ES256/ES384 (ES512 is allowed by the spec but not supported by [`Algorithm`]). A `spiffe`
/// config that lists algorithms should stay within this set (ref §11).
pub const JWT_SVID_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// SPIFFE JWT-SVIDs (ref §11). The spec defines no `iss` and SPIRE sets one only with
/// `jwt_issuer`, but Gateward needs an issuer to find keys, so the config must give one. The
/// default allow-list is SPIRE's default ES256 (ref §11); SPIRE's default lifetime is 5 minutes.
const SPIFFE: Preset = Preset {
    name: "spiffe",
    display_name: "SPIFFE JWT-SVID",
    default_issuer: None,
    check_issuer: check_any_https_issuer,
    // SPIRE's discovery provider serves `/keys` for its domains, but `jwt_issuer` may differ from
    // that domain, so use discovery.
    jwks_uri: use_discovery,
    algorithms: &[Algorithm::ES256],
    required_claims: &["sub"],
    shared_issuer: never_shared,
    // The trust domain is in `sub`.
    org_pin_claims: &["sub"],
    max_lifetime_seconds: Some(300),
    check_claims: check_spiffe_claims,
};

/// JWT-SVID claim rules (ref §11): `sub` is a workload SPIFFE ID, `aud` is present and holds
/// exactly one audience (multi-audience tokens can be replayed between audiences, so a
/// single `aud` is required), `exp` is present.
fn check_spiffe_claims(claims: &Map<String, Value>) -> Result<(), String> {
    match claims.get("sub") {
        Some(Value::String(sub)) => {
            let id = parse_spiffe_id(sub).map_err(|e| format!("`sub` is not a SPIFFE ID: {e}"))?;
            if id.path.is_empty() {
                return Err(format!(
                    "`sub` `{sub}` names only a trust domain; a workload's SPIFFE ID has a path"
                ));
            }
        }
        Some(_) => return Err(String::from("`sub` must be a string (a SPIFFE ID)")),
        None => {
            return Err(String::from(
                "`sub` is missing; a JWT-SVID's `sub` is its SPIFFE ID",
            ))
        }
    }
    match claims.get("aud") {
        Some(Value::String(aud)) if !aud.is_empty() => {}
        Some(Value::String(_)) => return Err(String::from("`aud` is empty")),
        Some(Value::Array(auds)) => match auds.as_slice() {
            [Value::String(aud)] if !aud.is_empty() => {}
            [] => return Err(String::from("`aud` is an empty array")),
            [_] => return Err(String::from("`aud` must hold a non-empty string")),
            _ => {
                return Err(format!(
                    "`aud` has {} values; a JWT-SVID must have a single audience",
                    auds.len()
                ))
            }
        },
        Some(_) => {
            return Err(String::from(
                "`aud` must be a string or an array of one string",
            ))
        }
        None => {
            return Err(String::from(
                "`aud` is missing; JWT-SVIDs must carry an audience",
            ))
        }
    }
    match claims.get("exp") {
        Some(Value::Number(_)) => Ok(()),
        Some(_) => Err(String::from("`exp` must be a number")),
        None => Err(String::from(
            "`exp` is missing; JWT-SVIDs must carry an expiry",
        )),
    }
}

/// A SPIFFE ID split into its parts (spiffe/spiffe `standards/SPIFFE-ID.md` §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpiffeId<'a> {
    /// The trust domain, e.g. `prod.acme.example`.
    pub trust_domain: &'a str,
    /// The path with its leading `/`, e.g. `/ns/payments/sa/deployer`; empty for a trust domain's
    /// own ID (`spiffe://prod.acme.example`).
    pub path: &'a str,
}

/// The longest SPIFFE ID, in bytes (SPIFFE-ID.md §2.3).
const SPIFFE_ID_MAX_LEN: usize = 2048;
/// The longest trust domain, in bytes (SPIFFE-ID.md §2.3, the RFC 3986 host limit).
const TRUST_DOMAIN_MAX_LEN: usize = 255;

/// Parses a SPIFFE ID strictly (SPIFFE-ID.md §2): the scheme is exactly `spiffe://`; the trust
/// domain is non-empty, at most 255 bytes, of `[a-z0-9._-]` (so no port, user info or upper case);
/// the path, if any, is `/`-separated segments of `[A-Za-z0-9._-]`, none empty, `.` or `..`, and no
/// trailing `/`; no query or fragment; at most 2048 bytes in all. Err names what is wrong.
pub fn parse_spiffe_id(id: &str) -> Result<SpiffeId<'_>, String> {
    if id.len() > SPIFFE_ID_MAX_LEN {
        return Err(format!(
            "is {} bytes long; the limit is {SPIFFE_ID_MAX_LEN}",
            id.len()
        ));
    }
    let rest = id
        .strip_prefix("spiffe://")
        .ok_or_else(|| format!("`{id}` does not start with `spiffe://`"))?;
    if rest.contains('?') {
        return Err(format!("`{id}` has a query (`?`)"));
    }
    if rest.contains('#') {
        return Err(format!("`{id}` has a fragment (`#`)"));
    }
    let (trust_domain, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    if trust_domain.is_empty() {
        return Err(format!("`{id}` has no trust domain"));
    }
    if trust_domain.len() > TRUST_DOMAIN_MAX_LEN {
        return Err(format!(
            "the trust domain is longer than {TRUST_DOMAIN_MAX_LEN} bytes"
        ));
    }
    if let Some(c) = trust_domain
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '-' | '_'))
    {
        return Err(if c.is_ascii_uppercase() {
            format!("trust domain `{trust_domain}` must be lower-case")
        } else {
            format!(
                "trust domain `{trust_domain}` has `{c}`; only a-z, 0-9, `.`, `-` and `_` are \
                 allowed (no port or user info)"
            )
        });
    }
    if let Some(segments) = path.strip_prefix('/') {
        let mut segments = segments.split('/').peekable();
        while let Some(segment) = segments.next() {
            if segment.is_empty() {
                return Err(if segments.peek().is_none() {
                    format!("`{id}` ends with `/`")
                } else {
                    format!("`{id}` has an empty path segment (`//`)")
                });
            }
            if segment == "." || segment == ".." {
                return Err(format!("`{id}` has a `{segment}` path segment"));
            }
            if let Some(c) = segment
                .chars()
                .find(|c| !matches!(c, 'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_'))
            {
                return Err(format!(
                    "path segment `{segment}` has `{c}`; only A-Z, a-z, 0-9, `.`, `-` and `_` \
                     are allowed"
                ));
            }
        }
    }
    Ok(SpiffeId { trust_domain, path })
}

/// Any OIDC issuer, with no defaults at all: the config gives the issuer and the algorithms.
const GENERIC: Preset = Preset {
    name: "generic",
    display_name: "generic OIDC issuer",
    default_issuer: None,
    check_issuer: check_any_https_issuer,
    jwks_uri: use_discovery,
    algorithms: &[],
    required_claims: &[],
    shared_issuer: generic_shared_issuer,
    org_pin_claims: &[],
    max_lifetime_seconds: None,
    check_claims: no_extra_checks,
};

/// A `generic` issuer is shared when it is one of the known shared CI issuers (someone
/// configured, say, github.com's issuer without the github-actions preset).
fn generic_shared_issuer(iss: &str) -> bool {
    known_shared_issuer(iss).is_some()
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

fn no_extra_checks(_claims: &Map<String, Value>) -> Result<(), String> {
    Ok(())
}

fn never_shared(_iss: &str) -> bool {
    false
}

fn use_discovery(_iss: &str) -> Option<String> {
    None
}

fn check_any_https_issuer(iss: &str) -> Result<(), String> {
    parse_https(iss).map(|_| ())
}

/// A well-formed https URL that is exactly `expected`.
fn check_exact(iss: &str, expected: &str, provider: &str) -> Result<(), String> {
    parse_https(iss)?;
    if iss == expected {
        Ok(())
    } else {
        Err(format!(
            "the {provider} issuer is exactly `{expected}`; got `{iss}`"
        ))
    }
}

/// Whether `host` is `domain` or a subdomain of it.
fn is_or_under(host: &str, domain: &str) -> bool {
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// Refuses hosts that start with a provider's SaaS host followed by a separator
/// (`gitlab.com.evil.example`, `gitlab.com-evil.example`): a self-hosted issuer never looks like that.
fn reject_lookalike(host: &str, saas_host: &str) -> Result<(), String> {
    match host.strip_prefix(saas_host) {
        Some(rest) if rest.starts_with('.') || rest.starts_with('-') => Err(format!(
            "host `{host}` looks like `{saas_host}` but is not it"
        )),
        _ => Ok(()),
    }
}

/// Checks a lower-case UUID (8-4-4-4-12 hex digits); Err completes "the id `x` ...".
fn check_uuid(s: &str) -> Result<(), String> {
    let shaped = s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    if !shaped {
        Err(String::from("is not a UUID (8-4-4-4-12 hex digits)"))
    } else if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Err(String::from(
            "must be lower-case, as the provider writes it",
        ))
    } else {
        Ok(())
    }
}

/// The parts of an issuer URL that the checks look at.
struct HttpsUrl<'a> {
    /// Lower-case DNS name or IPv4 address.
    host: &'a str,
    port: Option<u16>,
    /// Empty, or `/` followed by non-empty segments.
    path: &'a str,
}

/// The longest issuer accepted, in bytes.
const ISSUER_MAX_LEN: usize = 2048;

/// Parses an issuer as `https://host[:port][/path]` with no normalisation: refuses `http://` and
/// other schemes, a trailing `/`, a query or fragment, user info, an upper-case or malformed
/// host, empty, `.` or `..` path segments, and characters outside RFC 3986 `pchar`.
fn parse_https(iss: &str) -> Result<HttpsUrl<'_>, String> {
    if iss.is_empty() {
        return Err(String::from("the issuer is empty"));
    }
    if iss.len() > ISSUER_MAX_LEN {
        return Err(format!("the issuer is longer than {ISSUER_MAX_LEN} bytes"));
    }
    let rest = match iss.strip_prefix("https://") {
        Some(rest) => rest,
        None if iss.starts_with("http://") => {
            return Err(format!(
                "issuer `{iss}` uses http://; an OIDC issuer must be an https:// URL"
            ))
        }
        None => return Err(format!("issuer `{iss}` is not an https:// URL")),
    };
    if rest.is_empty() {
        return Err(format!("issuer `{iss}` has no host"));
    }
    if iss.ends_with('/') {
        return Err(format!(
            "issuer `{iss}` ends with `/`; issuers are compared exactly and providers write \
             theirs without a trailing slash"
        ));
    }
    if rest.contains('?') || rest.contains('#') {
        return Err(format!("issuer `{iss}` has a query or fragment"));
    }
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    if authority.contains('@') {
        return Err(format!("issuer `{iss}` has user info before the host"));
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(parse_port(iss, port)?)),
        None => (authority, None),
    };
    check_host(iss, host)?;
    if let Some(segments) = path.strip_prefix('/') {
        for segment in segments.split('/') {
            if segment.is_empty() {
                return Err(format!("issuer `{iss}` has an empty path segment (`//`)"));
            }
            if segment == "." || segment == ".." {
                return Err(format!("issuer `{iss}` has a `{segment}` path segment"));
            }
            if let Some(c) = segment.chars().find(|&c| !is_pchar(c)) {
                return Err(format!("issuer `{iss}` has `{c}` in its path"));
            }
        }
    }
    Ok(HttpsUrl { host, port, path })
}

/// RFC 3986 `pchar`: unreserved, sub-delims, `:`, `@`, and `%` for percent-encoding.
fn is_pchar(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.'
                | '_'
                | '~'
                | '!'
                | '$'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | '+'
                | ','
                | ';'
                | '='
                | ':'
                | '@'
                | '%'
        )
}

fn parse_port(iss: &str, port: &str) -> Result<u16, String> {
    let valid = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    match port.parse::<u16>() {
        Ok(n) if valid && n != 0 => Ok(n),
        _ => Err(format!("issuer `{iss}` has an invalid port `{port}`")),
    }
}

/// A lower-case DNS name (or IPv4 address): labels of `[a-z0-9-]`, 1 to 63 bytes, not starting
/// or ending with `-`, at most 253 bytes in all.
fn check_host(iss: &str, host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err(format!("issuer `{iss}` has no host"));
    }
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "issuer host `{host}` must be lower-case; issuers are compared exactly"
        ));
    }
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
    };
    if host.len() <= 253 && host.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!("issuer `{iss}` has an invalid host `{host}`"))
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;
    use serde_json::json;

    fn preset(name: &str) -> &'static Preset {
        lookup(name).unwrap_or_else(|| panic!("no preset {name}"))
    }

    fn accepts(name: &str, iss: &str) {
        let p = preset(name);
        if let Err(e) = (p.check_issuer)(iss) {
            panic!("{name} rejected `{iss}`: {e}");
        }
    }

    /// Rejects, and the reason contains `needle`.
    fn rejects(name: &str, iss: &str, needle: &str) {
        let p = preset(name);
        match (p.check_issuer)(iss) {
            Ok(()) => panic!("{name} accepted `{iss}`"),
            Err(e) => assert!(e.contains(needle), "{name} `{iss}`: `{e}` lacks `{needle}`"),
        }
    }

    fn jwks(name: &str, iss: &str) -> Option<String> {
        (preset(name).jwks_uri)(iss)
    }

    fn shared(name: &str, iss: &str) -> bool {
        (preset(name).shared_issuer)(iss)
    }

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    const ORG: &str = "c9035eb6-6eb2-4c85-8a81-d9ed6a1d1d1e";

    #[test]
    fn names_are_unique_and_looked_up() {
        let names: Vec<&str> = names().collect();
        assert_eq!(
            names,
            [
                "github-actions",
                "gitlab",
                "circleci",
                "buildkite",
                "bitbucket",
                "azure-devops",
                "google-cloud-build",
                "jenkins",
                "terraform-cloud",
                "codefresh",
                "spiffe",
                "generic",
            ]
        );
        for name in &names {
            assert_eq!(lookup(name).map(|p| p.name), Some(*name));
        }
        for unknown in [
            "",
            "github",
            "GitHub-Actions",
            "gitlab ",
            "hcp-terraform",
            "google",
        ] {
            assert!(lookup(unknown).is_none(), "{unknown}");
        }
    }

    #[test]
    fn preset_invariants() {
        for p in PRESETS {
            assert!(!p.display_name.is_empty());
            if let Some(iss) = p.default_issuer {
                assert_eq!((p.check_issuer)(iss), Ok(()), "{}", p.name);
            }
            for core in ["iss", "aud", "exp"] {
                assert!(!p.required_claims.contains(&core), "{} {core}", p.name);
            }
            if p.name != "generic" {
                assert!(!p.algorithms.is_empty(), "{}", p.name);
            }
            // A preset whose default issuer is shared must name claims that pin the tenant.
            if p.default_issuer.is_some_and(|iss| (p.shared_issuer)(iss)) {
                assert!(!p.org_pin_claims.is_empty(), "{}", p.name);
                assert_eq!(
                    known_shared_issuer(p.default_issuer.unwrap()).map(|q| q.name),
                    Some(p.name)
                );
            }
            // Trailing slash and http:// are refused by every preset.
            let iss = p.default_issuer.unwrap_or("https://issuer.example.com");
            let slash = format!("{iss}/");
            assert!((p.check_issuer)(&slash).is_err(), "{} {slash}", p.name);
            let http = iss.replacen("https://", "http://", 1);
            let err = (p.check_issuer)(&http).unwrap_err();
            assert!(err.contains("http://"), "{}: {err}", p.name);
        }
        assert_eq!(preset("generic").algorithms, &[] as &[Algorithm]);
        assert!(JWT_SVID_ALGORITHMS.iter().all(|a| *a != Algorithm::EdDSA));
        assert!(preset("spiffe")
            .algorithms
            .iter()
            .all(|a| JWT_SVID_ALGORITHMS.contains(a)));
    }

    #[test]
    fn generic_url_shape_is_strict() {
        for ok in [
            "https://issuer.example.com",
            "https://issuer.example.com:8443",
            "https://issuer.example.com/realms/ci",
            "https://10.0.0.5/oidc",
        ] {
            accepts("generic", ok);
        }
        let cases = [
            ("", "empty"),
            ("issuer.example.com", "not an https"),
            ("HTTPS://issuer.example.com", "not an https"),
            ("http://issuer.example.com", "http://"),
            ("https://issuer.example.com/", "ends with `/`"),
            ("https://issuer.example.com/a/", "ends with `/`"),
            ("https://issuer.example.com?x=1", "query"),
            ("https://issuer.example.com/a#f", "fragment"),
            ("https://user@issuer.example.com", "user info"),
            ("https://Issuer.example.com", "lower-case"),
            ("https://issuer.example.com:0", "port"),
            ("https://issuer.example.com:99999", "port"),
            ("https://issuer.example.com:", "port"),
            ("https://issuer.example.com:+80", "port"),
            ("https://", "no host"),
            ("https:///path", "no host"),
            ("https://-bad.example.com", "invalid host"),
            ("https://bad..example.com", "invalid host"),
            ("https://bad_host.example.com", "invalid host"),
            ("https://[::1]", "invalid"),
            ("https://issuer.example.com//a", "empty path segment"),
            ("https://issuer.example.com/a/../b", "`..`"),
            ("https://issuer.example.com/./b", "`.`"),
            ("https://issuer.example.com/a b", "` `"),
            ("https://issuer.example.com/a\\b", "`\\`"),
            ("https://issuer.example.com/é", "`é`"),
        ];
        for (iss, needle) in cases {
            rejects("generic", iss, needle);
        }
        let long = format!("https://issuer.example.com/{}", "a".repeat(3000));
        rejects("generic", &long, "longer than");
    }

    #[test]
    fn github_issuers() {
        let p = preset("github-actions");
        assert_eq!(
            p.default_issuer,
            Some("https://token.actions.githubusercontent.com")
        );
        assert_eq!(p.algorithms, &[Algorithm::RS256]);
        assert_eq!(p.max_lifetime_seconds, Some(300));
        for ok in [
            "https://token.actions.githubusercontent.com",
            "https://token.actions.githubusercontent.com/acme-ent",
            "https://token.actions.octocorp.ghe.com",
            "https://token.actions.octocorp.ghe.com/octocorp",
            "https://github.acme.example/_services/token",
            "https://github.acme.example:8443/_services/token",
        ] {
            accepts("github-actions", ok);
        }
        let form = "must be";
        for (iss, needle) in [
            (
                "https://token.actions.githubusercontent.com/",
                "ends with `/`",
            ),
            ("http://token.actions.githubusercontent.com", "http://"),
            (
                "https://token.actions.githubusercontent.com.evil.example",
                form,
            ),
            ("https://token.actions.githubusercontent.co", form),
            ("https://token-actions.githubusercontent.com", form),
            (
                "https://evil.example/token.actions.githubusercontent.com",
                form,
            ),
            (
                "https://token.actions.githubusercontent.com/acme/extra",
                "one enterprise slug",
            ),
            (
                "https://token.actions.githubusercontent.com/Acme",
                "one enterprise slug",
            ),
            (
                "https://token.actions.githubusercontent.com/acme/",
                "ends with `/`",
            ),
            ("https://token.actions.githubusercontent.com:443", "port"),
            ("https://token.actions.ghe.com", form),
            ("https://token.actions.a.b.ghe.com", form),
            (
                "https://token.actions.octocorp.ghe.com/octo/x",
                "one enterprise slug",
            ),
            (
                "https://github.com/_services/token",
                "not a GitHub Enterprise Server",
            ),
            (
                "https://token.actions.githubusercontent.com.evil.example/_services/token",
                "not a GitHub Enterprise Server",
            ),
            (
                "https://x.githubusercontent.com/_services/token",
                "not a GitHub Enterprise Server",
            ),
            (
                "https://octocorp.ghe.com/_services/token",
                "not a GitHub Enterprise Server",
            ),
            (
                "https://github.acme.example/_services/token/",
                "ends with `/`",
            ),
            ("https://github.acme.example/_services", form),
            ("https://github.acme.example", form),
        ] {
            rejects("github-actions", iss, needle);
        }
    }

    #[test]
    fn github_jwks_and_sharing() {
        assert_eq!(
            jwks(
                "github-actions",
                "https://token.actions.githubusercontent.com"
            )
            .as_deref(),
            Some("https://token.actions.githubusercontent.com/.well-known/jwks")
        );
        for discovered in [
            "https://token.actions.githubusercontent.com/acme-ent",
            "https://token.actions.octocorp.ghe.com",
            "https://github.acme.example/_services/token",
        ] {
            assert_eq!(jwks("github-actions", discovered), None, "{discovered}");
            assert!(!shared("github-actions", discovered), "{discovered}");
        }
        assert!(shared(
            "github-actions",
            "https://token.actions.githubusercontent.com"
        ));
        let p = preset("github-actions");
        assert!(p.org_pin_claims.contains(&"repository_owner_id"));
        assert!(p.required_claims.contains(&"repository_owner_id"));
    }

    #[test]
    fn gitlab_issuers() {
        for ok in [
            "https://gitlab.com",
            "https://gitlab.example.com",
            "https://gitlab.company.com",
            "https://example.com/gitlab",
            "https://gitlab.example.com:8443",
        ] {
            accepts("gitlab", ok);
        }
        for (iss, needle) in [
            ("https://gitlab.com/", "ends with `/`"),
            ("http://gitlab.example.com", "http://"),
            ("https://gitlab.com/acme", "exactly `https://gitlab.com`"),
            ("https://gitlab.com:443", "exactly `https://gitlab.com`"),
            ("https://gitlab.com.evil.example", "looks like"),
            ("https://gitlab.com-evil.example", "looks like"),
            ("https://GitLab.com", "lower-case"),
        ] {
            rejects("gitlab", iss, needle);
        }
        assert_eq!(
            jwks("gitlab", "https://gitlab.com").as_deref(),
            Some("https://gitlab.com/oauth/discovery/keys")
        );
        assert_eq!(
            jwks("gitlab", "https://example.com/gitlab").as_deref(),
            Some("https://example.com/gitlab/oauth/discovery/keys")
        );
        assert!(shared("gitlab", "https://gitlab.com"));
        assert!(!shared("gitlab", "https://gitlab.example.com"));
        assert_eq!(preset("gitlab").max_lifetime_seconds, None);
        assert!(preset("gitlab").org_pin_claims.contains(&"namespace_id"));
    }

    #[test]
    fn circleci_issuers() {
        let p = preset("circleci");
        assert_eq!(p.default_issuer, None);
        assert_eq!(p.max_lifetime_seconds, Some(3600));
        let iss = format!("https://oidc.circleci.com/org/{ORG}");
        accepts("circleci", &iss);
        for (bad, needle) in [
            (format!("{iss}/"), "ends with `/`"),
            (format!("http://oidc.circleci.com/org/{ORG}"), "http://"),
            (
                "https://oidc.circleci.com".to_string(),
                "bare CircleCI issuer",
            ),
            ("https://oidc.circleci.com/org".to_string(), "must be"),
            (
                "https://oidc.circleci.com/org/acme".to_string(),
                "not a UUID",
            ),
            (
                format!("https://oidc.circleci.com/org/{}", ORG.to_uppercase()),
                "lower-case",
            ),
            (
                format!("https://oidc.circleci.com/org/{}", &ORG[..35]),
                "not a UUID",
            ),
            (
                format!("https://oidc.circleci.com/org/{ORG}0"),
                "not a UUID",
            ),
            (
                format!("https://oidc.circleci.com/org/{}", ORG.replace('-', "_")),
                "not a UUID",
            ),
            (
                format!("https://oidc.circleci.com/org/{ORG}/x"),
                "not a UUID",
            ),
            (
                format!("https://oidc.circleci.com.evil.example/org/{ORG}"),
                "must be",
            ),
            (format!("https://evil.example/org/{ORG}"), "must be"),
            (
                format!("https://oidc.circleci.com/project/{ORG}"),
                "must be",
            ),
        ] {
            rejects("circleci", &bad, needle);
        }
        assert_eq!(
            jwks("circleci", &iss),
            Some(format!("{iss}/.well-known/jwks-pub.json"))
        );
        assert!(!shared("circleci", &iss));
    }

    #[test]
    fn buildkite_issuer() {
        accepts("buildkite", "https://agent.buildkite.com");
        for (iss, needle) in [
            ("https://agent.buildkite.com/", "ends with `/`"),
            ("http://agent.buildkite.com", "http://"),
            ("https://agent.buildkite.com.evil.example", "exactly"),
            ("https://agent.buildkite.co", "exactly"),
            ("https://agent.buildkite.com/acme", "exactly"),
        ] {
            rejects("buildkite", iss, needle);
        }
        assert_eq!(
            jwks("buildkite", "https://agent.buildkite.com").as_deref(),
            Some("https://agent.buildkite.com/.well-known/jwks")
        );
        assert!(shared("buildkite", "https://agent.buildkite.com"));
        assert!(preset("buildkite")
            .org_pin_claims
            .contains(&"organization_id"));
    }

    #[test]
    fn bitbucket_issuers() {
        let iss = "https://api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc";
        accepts("bitbucket", iss);
        accepts(
            "bitbucket",
            "https://api.bitbucket.org/2.0/workspaces/acme_team-2/pipelines-config/identity/oidc",
        );
        for (bad, needle) in [
            (format!("{iss}/"), "ends with `/`"),
            (iss.replacen("https", "http", 1), "http://"),
            (
                "https://api.bitbucket.org/2.0/workspaces//pipelines-config/identity/oidc".to_string(),
                "empty path segment",
            ),
            (
                "https://api.bitbucket.org/2.0/workspaces/Acme/pipelines-config/identity/oidc".to_string(),
                "workspace slug",
            ),
            (
                "https://api.bitbucket.org/2.0/workspaces/a/b/pipelines-config/identity/oidc".to_string(),
                "workspace slug",
            ),
            (
                "https://api.bitbucket.org.evil.example/2.0/workspaces/acme/pipelines-config/identity/oidc"
                    .to_string(),
                "must be",
            ),
            (
                "https://api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity".to_string(),
                "must be",
            ),
        ] {
            rejects("bitbucket", &bad, needle);
        }
        assert_eq!(jwks("bitbucket", iss), Some(format!("{iss}/keys.json")));
        assert!(!shared("bitbucket", iss));
        assert_eq!(preset("bitbucket").max_lifetime_seconds, None);
    }

    #[test]
    fn azure_devops_issuers() {
        let iss = format!("https://vstoken.dev.azure.com/{ORG}");
        accepts("azure-devops", &iss);
        for (bad, needle) in [
            (format!("{iss}/"), "ends with `/`"),
            (format!("http://vstoken.dev.azure.com/{ORG}"), "http://"),
            ("https://vstoken.dev.azure.com".to_string(), "must be"),
            (
                "https://vstoken.dev.azure.com/acme".to_string(),
                "not a UUID",
            ),
            (
                format!("https://vstoken.dev.azure.com/{}", ORG.to_uppercase()),
                "lower-case",
            ),
            (
                format!("https://vstoken.dev.azure.com.evil.example/{ORG}"),
                "must be",
            ),
            (
                format!("https://login.microsoftonline.com/{ORG}/v2.0"),
                "must be",
            ),
        ] {
            rejects("azure-devops", &bad, needle);
        }
        // One JWKS for every organisation, whatever the issuer.
        assert_eq!(
            jwks("azure-devops", &iss).as_deref(),
            Some("https://vstoken.dev.azure.com/.well-known/jwks")
        );
        // The per-organisation issuer pins the tenant, so it is not a shared issuer.
        assert!(!shared("azure-devops", &iss));
        assert!(preset("azure-devops").required_claims.contains(&"jti"));
    }

    #[test]
    fn google_issuer() {
        accepts("google-cloud-build", "https://accounts.google.com");
        for (iss, needle) in [
            ("https://accounts.google.com/", "ends with `/`"),
            ("accounts.google.com", "not an https"),
            ("https://accounts.google.com.evil.example", "exactly"),
        ] {
            rejects("google-cloud-build", iss, needle);
        }
        assert_eq!(
            jwks("google-cloud-build", "https://accounts.google.com").as_deref(),
            Some("https://www.googleapis.com/oauth2/v3/certs")
        );
        assert!(shared("google-cloud-build", "https://accounts.google.com"));
    }

    #[test]
    fn jenkins_issuers() {
        assert_eq!(preset("jenkins").default_issuer, None);
        for ok in [
            "https://jenkins.acme.example/oidc",
            "https://jenkins.acme.example/job/payments/job/deploy/oidc",
            "https://oidc.acme.example/jenkins",
        ] {
            accepts("jenkins", ok);
        }
        rejects(
            "jenkins",
            "https://jenkins.acme.example/oidc/",
            "ends with `/`",
        );
        rejects("jenkins", "http://jenkins.acme.example/oidc", "http://");
        assert_eq!(
            jwks("jenkins", "https://jenkins.acme.example/job/f/oidc").as_deref(),
            Some("https://jenkins.acme.example/job/f/oidc/jwks")
        );
        assert_eq!(jwks("jenkins", "https://oidc.acme.example/jenkins"), None);
        assert!(!shared("jenkins", "https://jenkins.acme.example/oidc"));
        assert_eq!(preset("jenkins").max_lifetime_seconds, Some(3600));
    }

    #[test]
    fn terraform_issuers() {
        for ok in [
            "https://app.terraform.io",
            "https://tfe.acme.example",
            "https://tfe.acme.example:8443",
        ] {
            accepts("terraform-cloud", ok);
        }
        for (iss, needle) in [
            ("https://app.terraform.io/", "ends with `/`"),
            ("http://app.terraform.io", "http://"),
            ("https://app.terraform.io/acme", "without a path"),
            ("https://tfe.acme.example/tfe", "without a path"),
            ("https://app.terraform.io:443", "exactly"),
            ("https://app.terraform.io.evil.example", "looks like"),
        ] {
            rejects("terraform-cloud", iss, needle);
        }
        assert_eq!(
            jwks("terraform-cloud", "https://tfe.acme.example").as_deref(),
            Some("https://tfe.acme.example/.well-known/jwks")
        );
        assert!(shared("terraform-cloud", "https://app.terraform.io"));
        assert!(!shared("terraform-cloud", "https://tfe.acme.example"));
        assert_eq!(preset("terraform-cloud").max_lifetime_seconds, None);
    }

    #[test]
    fn codefresh_issuer() {
        accepts("codefresh", "https://oidc.codefresh.io");
        rejects("codefresh", "https://oidc.codefresh.io/", "ends with `/`");
        rejects(
            "codefresh",
            "https://oidc.codefresh.io.evil.example",
            "exactly",
        );
        assert_eq!(jwks("codefresh", "https://oidc.codefresh.io"), None);
        assert!(shared("codefresh", "https://oidc.codefresh.io"));
    }

    #[test]
    fn spiffe_and_generic_issuers() {
        for name in ["spiffe", "generic"] {
            assert_eq!(preset(name).default_issuer, None);
            accepts(name, "https://oidc.prod.acme.example");
            rejects(name, "https://oidc.prod.acme.example/", "ends with `/`");
            rejects(name, "http://oidc.prod.acme.example", "http://");
            assert_eq!(jwks(name, "https://oidc.prod.acme.example"), None);
            assert!(!shared(name, "https://oidc.prod.acme.example"));
        }
        assert_eq!(preset("spiffe").algorithms, &[Algorithm::ES256]);
    }

    #[test]
    fn generic_notices_shared_ci_issuers() {
        for iss in [
            "https://token.actions.githubusercontent.com",
            "https://gitlab.com",
            "https://agent.buildkite.com",
            "https://app.terraform.io",
            "https://accounts.google.com",
            "https://oidc.codefresh.io",
        ] {
            assert!(shared("generic", iss), "{iss}");
            assert!(known_shared_issuer(iss).is_some(), "{iss}");
        }
        assert_eq!(
            known_shared_issuer("https://gitlab.com").map(|p| p.name),
            Some("gitlab")
        );
        for iss in [
            "https://token.actions.githubusercontent.com/acme-ent",
            "https://gitlab.example.com",
            "https://vstoken.dev.azure.com/c9035eb6-6eb2-4c85-8a81-d9ed6a1d1d1e",
        ] {
            assert!(!shared("generic", iss), "{iss}");
            assert!(known_shared_issuer(iss).is_none(), "{iss}");
        }
    }

    #[test]
    fn spiffe_ids() {
        assert_eq!(
            parse_spiffe_id("spiffe://prod.acme.example/ns/payments/sa/deployer"),
            Ok(SpiffeId {
                trust_domain: "prod.acme.example",
                path: "/ns/payments/sa/deployer"
            })
        );
        for ok in [
            "spiffe://example.org",
            "spiffe://example.org/a",
            "spiffe://my_td-1.example.org/Service_A/v1.2/x-y",
            "spiffe://example.org/...",
            "spiffe://example.org/.a/a.",
        ] {
            assert!(parse_spiffe_id(ok).is_ok(), "{ok}");
        }
        let cases = [
            ("", "does not start"),
            ("https://example.org/a", "does not start"),
            ("SPIFFE://example.org/a", "does not start"),
            ("spiffe:/example.org/a", "does not start"),
            ("spiffe://", "no trust domain"),
            ("spiffe:///a", "no trust domain"),
            ("spiffe://Example.org/a", "lower-case"),
            ("spiffe://example.org:8080/a", "no port"),
            ("spiffe://user@example.org/a", "`@`"),
            ("spiffe://exa%6dple.org/a", "`%`"),
            ("spiffe://example.org/", "ends with `/`"),
            ("spiffe://example.org/a/", "ends with `/`"),
            ("spiffe://example.org//a", "empty path segment"),
            ("spiffe://example.org/a//b", "empty path segment"),
            ("spiffe://example.org/a/../b", "`..`"),
            ("spiffe://example.org/./a", "`.`"),
            ("spiffe://example.org/..", "`..`"),
            ("spiffe://example.org/a?x=1", "query"),
            ("spiffe://example.org/a#f", "fragment"),
            ("spiffe://example.org/a b", "` `"),
            ("spiffe://example.org/a%20b", "`%`"),
            ("spiffe://example.org/é", "`é`"),
            ("spiffe://example.org/a:b", "`:`"),
        ];
        for (id, needle) in cases {
            let err = parse_spiffe_id(id).expect_err(id);
            assert!(err.contains(needle), "`{id}`: `{err}` lacks `{needle}`");
        }
        let td = "a".repeat(256);
        assert!(parse_spiffe_id(&format!("spiffe://{td}/x")).is_err());
        assert!(parse_spiffe_id(&format!("spiffe://{}/x", &td[..255])).is_ok());
        let prefix = "spiffe://example.org/";
        let at_limit = format!("{prefix}{}", "a".repeat(2048 - prefix.len()));
        assert!(parse_spiffe_id(&at_limit).is_ok());
        let over = format!("{at_limit}a");
        assert!(parse_spiffe_id(&over).unwrap_err().contains("2048"));
    }

    #[test]
    fn spiffe_claims() {
        let check = preset("spiffe").check_claims;
        let good = json!({
            "sub": "spiffe://prod.acme.example/ns/payments/sa/deployer",
            "aud": ["spiffe://prod.acme.example/envoy/gateway"],
            "iss": "https://oidc.prod.acme.example",
            "iat": 1790000000,
            "exp": 1790000300
        });
        assert_eq!(check(&claims(good.clone())), Ok(()));
        let mut single = claims(good.clone());
        single.insert("aud".into(), json!("gateway"));
        assert_eq!(check(&single), Ok(()));

        let with = |key: &str, value: Option<Value>| {
            let mut m = claims(good.clone());
            match value {
                Some(v) => m.insert(key.to_string(), v),
                None => m.remove(key),
            };
            check(&m)
        };
        let cases = [
            (
                "sub",
                Some(json!("spiffe://Prod.acme.example/a")),
                "lower-case",
            ),
            (
                "sub",
                Some(json!("spiffe://prod.acme.example/a/../b")),
                "`..`",
            ),
            (
                "sub",
                Some(json!("spiffe://prod.acme.example/a//b")),
                "empty path segment",
            ),
            (
                "sub",
                Some(json!("spiffe://prod.acme.example/a/")),
                "ends with `/`",
            ),
            (
                "sub",
                Some(json!("spiffe://prod.acme.example")),
                "only a trust domain",
            ),
            (
                "sub",
                Some(json!("repo:acme/api:ref:refs/heads/main")),
                "`sub` is not a SPIFFE ID",
            ),
            ("sub", Some(json!(42)), "`sub` must be a string"),
            (
                "sub",
                Some(json!(["spiffe://prod.acme.example/a"])),
                "`sub` must be a string",
            ),
            ("sub", Some(Value::Null), "`sub` must be a string"),
            ("sub", None, "`sub` is missing"),
            ("aud", None, "`aud` is missing"),
            ("aud", Some(json!("")), "`aud` is empty"),
            ("aud", Some(json!([])), "empty array"),
            ("aud", Some(json!(["a", "b"])), "single audience"),
            ("aud", Some(json!([7])), "non-empty string"),
            ("aud", Some(json!([""])), "non-empty string"),
            ("aud", Some(json!({"a": 1})), "`aud` must be"),
            ("aud", Some(Value::Null), "`aud` must be"),
            ("exp", None, "`exp` is missing"),
            ("exp", Some(json!("1790000300")), "`exp` must be a number"),
        ];
        for (key, value, needle) in cases {
            let shown = alloc::format!("{key}={value:?}");
            let err = with(key, value).expect_err(&shown);
            assert!(err.contains(needle), "{shown}: `{err}` lacks `{needle}`");
        }
    }

    #[test]
    fn claim_checks_never_panic() {
        let odd = [
            json!({}),
            json!({"sub": null, "aud": null, "exp": null}),
            json!({"sub": {}, "aud": [[]], "exp": []}),
            json!({"sub": "spiffe://", "aud": [null], "exp": true}),
            json!({"sub": "spiffe://\u{0}/\u{ffff}", "aud": ["x", null], "exp": -1}),
            json!({"sub": "spiffe://a/é/..", "aud": "x", "exp": 1.5}),
        ];
        for p in PRESETS {
            for v in &odd {
                let _ = (p.check_claims)(&claims(v.clone()));
            }
            for iss in [
                "",
                "https://",
                "https://:",
                "https://a:/",
                "https://é",
                "https://a/%",
                "\u{0}",
            ] {
                let _ = (p.check_issuer)(iss);
                let _ = (p.shared_issuer)(iss);
                let _ = (p.jwks_uri)(iss);
            }
        }
    }

    #[test]
    fn non_spiffe_presets_add_no_claim_checks() {
        for p in PRESETS.iter().filter(|p| p.name != "spiffe") {
            assert_eq!((p.check_claims)(&Map::new()), Ok(()), "{}", p.name);
        }
    }
}
