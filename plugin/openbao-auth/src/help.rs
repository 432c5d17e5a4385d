//! Help text for each path, in the shape of OpenBao's framework `help` responses
//! (`{"help": text, "see_also": null, "openapi": document}`), so `bao path-help` and the
//! OpenAPI endpoint work.

use serde_json::{json, Map, Value};

use crate::paths::Route;
use crate::Response;

const BACKEND_HELP: &str = "\
The Gateward auth method verifies OIDC ID tokens from CI systems (GitHub Actions, GitLab CI, \
CircleCI, Buildkite, SPIFFE, ...) and decides each login with a Rego policy per role.

Configure the trusted issuers at \"config\", write roles with their policies at \"role/<name>\", \
then log in at \"login\" with a role and the job's token. See docs/openbao.md.";

struct Field {
    name: &'static str,
    kind: &'static str,
    description: &'static str,
}

const fn f(name: &'static str, kind: &'static str, description: &'static str) -> Field {
    Field {
        name,
        kind,
        description,
    }
}

struct PathHelp {
    pattern: &'static str,
    /// OpenAPI path (`{name}` for the role name).
    oas: &'static str,
    synopsis: &'static str,
    description: &'static str,
    fields: &'static [Field],
    operations: &'static [&'static str],
}

const CONFIG: PathHelp = PathHelp {
    pattern: "^config$",
    oas: "/config",
    synopsis: "Configures the trusted token issuers.",
    description: "\
The issuers use Gateward's configuration schema (docs/config.md): each has a name, the exact \
`iss`, the accepted audiences, and its keys given one way: inline `jwks` or `pem_keys`, a \
`jwks_uri`, `discovery: true`, or a CI `preset`'s defaults. A write is validated in full and \
every problem is reported with its path. Remote keys are fetched over HTTPS (http only on \
loopback) and cached per the issuer's `fetch` settings.",
    fields: &[
        f(
            "issuers",
            "array",
            "The trusted issuers (Gateward config schema), at least one.",
        ),
        f(
            "max_token_bytes",
            "int",
            "Longer tokens are refused before decoding (64-65536, default 8192).",
        ),
    ],
    operations: &["read", "update", "delete"],
};

const ROLE: PathHelp = PathHelp {
    pattern: "^role/(?P<name>\\w(([\\w-.]+)?\\w)?)$",
    oas: "/role/{name}",
    synopsis: "Manages a role: the Rego policy deciding logins, and the issued tokens' parameters.",
    description: "\
A login names a role. After the token verifies against a configured issuer (and the role's \
`issuers`, `bound_subject`, `bound_audiences` and `bound_claims` hold), the role's Rego policy \
is evaluated with input {token: {claims, header, issuer}, request: {path, mount, remote_addr, \
operation}, role, now}. It returns a boolean or {allow, reason, policies, ttl, metadata}: \
`policies` are added to token_policies and `ttl` can only shorten the role's. Tokens never \
outlive the CI token's `exp`.",
    fields: &[
        f("name", "string", "Name of the role (lower-cased)."),
        f(
            "policy",
            "string",
            "Rego module deciding each login (required).",
        ),
        f(
            "modules",
            "map",
            "More Rego modules the policy may import, name to text.",
        ),
        f(
            "data",
            "map",
            "JSON object available to the policy as `data`.",
        ),
        f(
            "entrypoint",
            "string",
            "Rule evaluated (default data.gateward.decision).",
        ),
        f(
            "issuers",
            "comma-string-slice",
            "Configured issuer names this role accepts (default: all).",
        ),
        f(
            "bound_audiences",
            "comma-string-slice",
            "The token's aud must also contain one of these.",
        ),
        f(
            "bound_subject",
            "string",
            "The token's sub must equal this.",
        ),
        f(
            "bound_claims",
            "map",
            "Claims that must match, as the built-in jwt method's bound_claims.",
        ),
        f(
            "bound_claims_type",
            "string",
            "\"string\" (typed equality, default) or \"glob\".",
        ),
        f(
            "user_claim",
            "string",
            "Claim naming the entity alias (default \"sub\").",
        ),
        f(
            "user_claim_json_pointer",
            "bool",
            "Read user_claim as a JSON pointer.",
        ),
        f(
            "claim_mappings",
            "map",
            "Claims copied into token and alias metadata (claim to key).",
        ),
        f(
            "token_policies",
            "comma-string-slice",
            "Policies of issued tokens.",
        ),
        f(
            "token_ttl",
            "duration (sec)",
            "Initial TTL of issued tokens.",
        ),
        f(
            "token_max_ttl",
            "duration (sec)",
            "Maximum lifetime of issued tokens.",
        ),
        f(
            "token_explicit_max_ttl",
            "duration (sec)",
            "Hard lifetime cap, renewals included.",
        ),
        f(
            "token_period",
            "duration (sec)",
            "Period of periodic tokens.",
        ),
        f(
            "token_bound_cidrs",
            "comma-string-slice",
            "CIDR blocks logins and tokens are bound to.",
        ),
        f(
            "token_strictly_bind_ip",
            "bool",
            "Bind tokens to the login's source address.",
        ),
        f("token_type", "string", "default, service or batch."),
        f(
            "token_no_default_policy",
            "bool",
            "Do not attach the default policy.",
        ),
        f(
            "token_num_uses",
            "int",
            "Uses before the token is revoked (0: unlimited).",
        ),
    ],
    operations: &["read", "create", "update", "delete"],
};

const ROLE_LIST: PathHelp = PathHelp {
    pattern: "^role/?$",
    oas: "/role/",
    synopsis: "Lists the roles.",
    description: "The names of every role of this mount.",
    fields: &[],
    operations: &["list"],
};

const LOGIN: PathHelp = PathHelp {
    pattern: "^login$",
    oas: "/login",
    synopsis: "Authenticates with a CI OIDC token against a role.",
    description: "\
Verifies the token (signature with the issuer's keys, iss, aud, exp/nbf/iat, required claims), \
checks the role's bounds, evaluates its policy and issues a token. Refusals are HTTP 400 with \
a stable code first: expired, audience_mismatch, signature_invalid, issuer_untrusted, \
claim_invalid, policy_denied, policy_error, keys_unavailable, ...",
    fields: &[
        f("role", "string", "The role to log in against."),
        f("jwt", "string", "The CI job's OIDC ID token."),
    ],
    operations: &["update"],
};

const ALL: [&PathHelp; 4] = [&CONFIG, &ROLE_LIST, &ROLE, &LOGIN];

pub(crate) fn response(route: &Route, request_path: &str) -> Response {
    let text = match route {
        Route::Root => root_text(),
        Route::Config => path_text(&CONFIG, request_path),
        Route::RoleList => path_text(&ROLE_LIST, request_path),
        Route::Role(_) => path_text(&ROLE, request_path),
        Route::Login => path_text(&LOGIN, request_path),
    };
    let mut data = Map::new();
    data.insert(String::from("help"), Value::String(text));
    data.insert(String::from("see_also"), Value::Null);
    data.insert(String::from("openapi"), openapi());
    Response {
        data,
        ..Response::default()
    }
}

fn indent(n: usize, text: &str) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn path_text(p: &PathHelp, request: &str) -> String {
    let mut out = format!(
        "Request:        {request}\nMatching Route: {}\n\n{}\n\n",
        p.pattern, p.synopsis
    );
    if !p.fields.is_empty() {
        out.push_str("## PARAMETERS\n");
        for field in p.fields {
            out.push_str(&format!(
                "\n{} ({})\n{}\n",
                indent(4, field.name),
                field.kind,
                indent(8, field.description)
            ));
        }
        out.push('\n');
    }
    out.push_str("## DESCRIPTION\n\n");
    out.push_str(p.description);
    out
}

fn root_text() -> String {
    let mut out = format!(
        "## DESCRIPTION\n\n{BACKEND_HELP}\n\n## PATHS\n\nThe following paths are supported by this backend. To view help for\nany of the paths below, use the help command with any route matching\nthe path pattern. Note that depending on the policy of your auth token,\nyou may or may not be able to access certain paths.\n\n"
    );
    for p in ALL {
        out.push_str(&format!(
            "{}\n{}\n\n",
            indent(4, p.pattern),
            indent(8, p.synopsis)
        ));
    }
    out
}

fn schema_type(kind: &str) -> Value {
    match kind {
        "bool" => json!({"type": "boolean"}),
        "int" => json!({"type": "integer"}),
        "map" => json!({"type": "object"}),
        "array" => json!({"type": "array", "items": {"type": "object"}}),
        "comma-string-slice" => json!({"type": "array", "items": {"type": "string"}}),
        "duration (sec)" => json!({"type": "string", "format": "duration"}),
        _ => json!({"type": "string"}),
    }
}

/// A small OpenAPI 3 document of every path (OpenBao merges it into `sys/internal/specs/openapi`).
fn openapi() -> Value {
    let mut paths = Map::new();
    for p in ALL {
        let mut item = Map::new();
        item.insert("description".into(), Value::String(p.synopsis.into()));
        if p.oas.contains("{name}") {
            item.insert(
                "parameters".into(),
                json!([{"name": "name", "in": "path", "required": true,
                        "description": "Name of the role", "schema": {"type": "string"}}]),
            );
        }
        let ok = json!({"200": {"description": "OK"}});
        for op in p.operations {
            match *op {
                "read" => {
                    item.insert(
                        "get".into(),
                        json!({"summary": p.synopsis, "responses": ok}),
                    );
                }
                "list" => {
                    item.insert(
                        "get".into(),
                        json!({"summary": p.synopsis, "responses": ok,
                               "parameters": [{"name": "list", "in": "query", "required": true,
                                               "schema": {"type": "string", "enum": ["true"]}}]}),
                    );
                }
                "update" | "create" => {
                    let props: Map<String, Value> = p
                        .fields
                        .iter()
                        .filter(|f| f.name != "name")
                        .map(|f| {
                            let mut s = schema_type(f.kind);
                            if let Value::Object(o) = &mut s {
                                o.insert("description".into(), Value::String(f.description.into()));
                            }
                            (f.name.to_string(), s)
                        })
                        .collect();
                    item.insert(
                        "post".into(),
                        json!({"summary": p.synopsis, "responses": ok,
                               "requestBody": {"required": true, "content": {"application/json":
                                   {"schema": {"type": "object", "properties": props}}}}}),
                    );
                }
                "delete" => {
                    item.insert(
                        "delete".into(),
                        json!({"summary": p.synopsis, "responses": {"204": {"description": "empty body"}}}),
                    );
                }
                _ => {}
            }
        }
        paths.insert(p.oas.to_string(), Value::Object(item));
    }
    json!({
        "openapi": "3.0.2",
        "info": {"title": "Gateward auth method", "description": BACKEND_HELP,
                 "version": env!("CARGO_PKG_VERSION"),
                 "license": {"name": "Apache-2.0"}},
        "paths": paths,
    })
}
