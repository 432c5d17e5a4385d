//! Development-only token minting: signs JWTs with throwaway keys for Gateward's tests, the
//! local demo and the dev issuer. Nothing here is used to verify anything.
//!
//! Also the rest of the local stack the demo and the end-to-end tests run: [`envoy`] (installs
//! and runs a real Envoy on loopback), [`http`] (a minimal HTTP/1.1 client), [`issuer`] (a local
//! development OIDC issuer on loopback), [`lds`] (Envoy listeners from a file, reloadable),
//! [`openbao`] (installs and runs a real OpenBao dev server), [`toolchain`] (adds the wasm
//! targets the toolchain lacks) and [`upstream`] (an echo server that shows which headers
//! reached it).

pub mod envoy;
pub mod hostile;
pub mod http;
pub mod issuer;
pub mod lds;
pub mod openbao;
pub mod regocpp;
mod serve;
pub mod stack;
pub mod toolchain;
pub mod upstream;

use jwt_compact::Algorithm as _;
use policy_engine::alg::{Algorithm, Es384};
use policy_engine::b64;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};

/// Why a key could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum DevkitError {
    /// The PEM is not a PKCS#8 private key of a supported type.
    #[error("not a PKCS#8 RSA, P-256, P-384 or Ed25519 private key")]
    UnsupportedKey,
    /// The algorithm does not fit the key.
    #[error("{alg} does not fit a {key} key")]
    AlgMismatch {
        /// The algorithm asked for.
        alg: Algorithm,
        /// The key's type.
        key: &'static str,
    },
    /// Key generation failed.
    #[error("key generation failed: {0}")]
    Generate(String),
}

/// A private key that can sign tokens.
#[derive(Clone)]
pub enum SigningKey {
    /// RSA.
    Rsa(Box<rsa::RsaPrivateKey>),
    /// ECDSA P-256.
    P256(p256::ecdsa::SigningKey),
    /// ECDSA P-384.
    P384(p384::ecdsa::SigningKey),
    /// Ed25519.
    Ed25519(ed25519_dalek::SigningKey),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "SigningKey({})", self.kind())
    }
}

/// Key types the devkit can generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA-2048.
    Rsa2048,
    /// P-256.
    P256,
    /// P-384.
    P384,
    /// Ed25519.
    Ed25519,
}

impl SigningKey {
    /// Loads a PKCS#8 PEM private key.
    pub fn from_pem(pem: &str) -> Result<SigningKey, DevkitError> {
        if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::Rsa(Box::new(k)));
        }
        if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::P256(k));
        }
        if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::P384(k));
        }
        if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::Ed25519(k));
        }
        Err(DevkitError::UnsupportedKey)
    }

    /// Generates a fresh key.
    pub fn generate(kind: KeyKind) -> Result<SigningKey, DevkitError> {
        let mut rng = rand_core::OsRng;
        Ok(match kind {
            KeyKind::Rsa2048 => SigningKey::Rsa(Box::new(
                rsa::RsaPrivateKey::new(&mut rng, 2048)
                    .map_err(|e| DevkitError::Generate(e.to_string()))?,
            )),
            KeyKind::P256 => SigningKey::P256(p256::ecdsa::SigningKey::random(&mut rng)),
            KeyKind::P384 => SigningKey::P384(p384::ecdsa::SigningKey::random(&mut rng)),
            KeyKind::Ed25519 => SigningKey::Ed25519(ed25519_dalek::SigningKey::generate(&mut rng)),
        })
    }

    /// `RSA`, `P-256`, `P-384` or `Ed25519`.
    pub fn kind(&self) -> &'static str {
        match self {
            SigningKey::Rsa(_) => "RSA",
            SigningKey::P256(_) => "P-256",
            SigningKey::P384(_) => "P-384",
            SigningKey::Ed25519(_) => "Ed25519",
        }
    }

    /// The usual algorithm for this key.
    pub fn default_alg(&self) -> Algorithm {
        match self {
            SigningKey::Rsa(_) => Algorithm::RS256,
            SigningKey::P256(_) => Algorithm::ES256,
            SigningKey::P384(_) => Algorithm::ES384,
            SigningKey::Ed25519(_) => Algorithm::EdDSA,
        }
    }

    /// The public half as a JWK with `kid`, `alg` and `use: sig`.
    pub fn public_jwk(&self, kid: &str) -> Value {
        let alg = self.default_alg().name();
        match self {
            SigningKey::Rsa(k) => json!({
                "kty": "RSA", "kid": kid, "alg": alg, "use": "sig",
                "n": b64::encode(&k.n().to_bytes_be()), "e": b64::encode(&k.e().to_bytes_be()),
            }),
            SigningKey::P256(k) => {
                let p = k.verifying_key().to_encoded_point(false);
                ec_jwk("P-256", kid, alg, p.as_bytes())
            }
            SigningKey::P384(k) => {
                let p = k.verifying_key().to_encoded_point(false);
                ec_jwk("P-384", kid, alg, p.as_bytes())
            }
            SigningKey::Ed25519(k) => json!({
                "kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": alg, "use": "sig",
                "x": b64::encode(k.verifying_key().as_bytes()),
            }),
        }
    }

    /// Signs `message` with `alg`.
    pub fn sign(&self, alg: Algorithm, message: &[u8]) -> Result<Vec<u8>, DevkitError> {
        use jwt_compact::AlgorithmSignature;
        let mismatch = || DevkitError::AlgMismatch {
            alg,
            key: self.kind(),
        };
        Ok(match (self, alg) {
            (SigningKey::Rsa(k), _) => {
                let rsa = jwt_compact::alg::Rsa::from_str_name(alg.name()).ok_or_else(mismatch)?;
                rsa.sign(k, message).as_bytes().into_owned()
            }
            (SigningKey::P256(k), Algorithm::ES256) => jwt_compact::alg::Es256
                .sign(k, message)
                .as_bytes()
                .into_owned(),
            (SigningKey::P384(k), Algorithm::ES384) => {
                Es384.sign(k, message).as_bytes().into_owned()
            }
            (SigningKey::Ed25519(k), Algorithm::EdDSA) => jwt_compact::alg::Ed25519
                .sign(k, message)
                .as_bytes()
                .into_owned(),
            _ => return Err(mismatch()),
        })
    }
}

/// `sec1` is an uncompressed point: `04 || x || y`.
fn ec_jwk(crv: &str, kid: &str, alg: &str, sec1: &[u8]) -> Value {
    let coords = sec1.get(1..).unwrap_or_default();
    let (x, y) = coords.split_at(coords.len() / 2);
    json!({
        "kty": "EC", "crv": crv, "kid": kid, "alg": alg, "use": "sig",
        "x": b64::encode(x), "y": b64::encode(y),
    })
}

trait RsaByName: Sized {
    fn from_str_name(name: &str) -> Option<Self>;
}

impl RsaByName for jwt_compact::alg::Rsa {
    fn from_str_name(name: &str) -> Option<Self> {
        name.parse().ok()
    }
}

/// Signs `claims` under `header` (which must carry `alg`), exactly as given: tests use this to
/// build hostile tokens.
pub fn sign_raw(
    header: &Value,
    claims: &Value,
    key: &SigningKey,
    alg: Algorithm,
) -> Result<String, DevkitError> {
    let input = format!(
        "{}.{}",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(claims.to_string().as_bytes())
    );
    let sig = key.sign(alg, input.as_bytes())?;
    Ok(format!("{input}.{}", b64::encode(&sig)))
}

/// Mints a token: header `{"alg", "typ": "JWT", "kid"}` over `claims`.
pub fn mint(key: &SigningKey, kid: Option<&str>, claims: &Value) -> Result<String, DevkitError> {
    let alg = key.default_alg();
    let mut header = json!({"alg": alg.name(), "typ": "JWT"});
    if let (Some(kid), Some(h)) = (kid, header.as_object_mut()) {
        h.insert("kid".into(), kid.into());
    }
    sign_raw(&header, claims, key, alg)
}

/// A JWKS document holding the public halves of `keys` (kid, key).
pub fn jwks(keys: &[(&str, &SigningKey)]) -> Value {
    json!({ "keys": keys.iter().map(|(kid, k)| k.public_jwk(kid)).collect::<Vec<_>>() })
}

/// Throwaway fixed keys checked into `devkit/keys/` (public: never trust them).
pub mod fixtures {
    use super::SigningKey;

    fn load(pem: &str) -> SigningKey {
        match SigningKey::from_pem(pem) {
            Ok(k) => k,
            // The fixtures are part of this crate; a failure here is a broken checkout.
            #[allow(clippy::panic)]
            Err(e) => panic!("devkit fixture key: {e}"),
        }
    }

    /// RSA-2048 key A.
    pub fn rsa_a() -> SigningKey {
        load(include_str!("../keys/rsa-a.pem"))
    }
    /// RSA-2048 key B (an unrelated key: "wrong key" and rotation tests).
    pub fn rsa_b() -> SigningKey {
        load(include_str!("../keys/rsa-b.pem"))
    }
    /// RSA-1024: weak, must be refused.
    pub fn rsa_weak() -> SigningKey {
        load(include_str!("../keys/rsa-weak-1024.pem"))
    }
    /// P-256.
    pub fn p256() -> SigningKey {
        load(include_str!("../keys/p256.pem"))
    }
    /// P-384.
    pub fn p384() -> SigningKey {
        load(include_str!("../keys/p384.pem"))
    }
    /// Ed25519.
    pub fn ed25519() -> SigningKey {
        load(include_str!("../keys/ed25519.pem"))
    }
}

/// Realistic claims for CI providers, after each provider's public documentation (the pages
/// `policy_engine::presets` lists in its module docs).
///
/// Each builder returns one provider's ID-token claims for a job of the same fictional project
/// (`octo-org/deploy`, deploying `main` to `prod`), issued at `iat` for audience `aud`, with the
/// provider's real `iss`, claim types (strings for IDs and booleans where the provider sends
/// strings) and timing (`nbf`, `exp`). The dev issuer ([`crate::issuer`]) serves them as presets,
/// replacing `iss` with its own URL.
pub mod claims {
    use serde_json::{json, Value};

    /// The presets [`preset`] knows, in the order the dev issuer lists them.
    pub const PRESETS: &[&str] = &[
        "github-actions",
        "gitlab",
        "circleci",
        "buildkite",
        "spiffe",
        "generic",
    ];

    /// The claims of preset `name` (one of [`PRESETS`]) issued at `iat` for `aud`; None for an
    /// unknown name.
    pub fn preset(name: &str, iat: i64, aud: &str) -> Option<Value> {
        Some(match name {
            "github-actions" => github_actions(iat, aud),
            "gitlab" => gitlab(iat, aud),
            "circleci" => circleci(iat, aud),
            "buildkite" => buildkite(iat, aud),
            "spiffe" => spiffe(iat, aud),
            "generic" => generic(iat, aud),
            _ => return None,
        })
    }

    /// A GitHub Actions ID token's claims for `octo-org/deploy` on `main`, issued at `iat`.
    ///
    /// A push to `main` by a job in environment `prod`, so `sub` takes the environment form.
    /// Every claim but the times is a string; `nbf = iat - 600`, `exp = iat + 300`.
    pub fn github_actions(iat: i64, aud: &str) -> Value {
        json!({
            "jti": "6f7c6d5e-1b7a-4a52-9c8e-2f5a0f3b9d11",
            "sub": "repo:octo-org/deploy:environment:prod",
            "aud": aud,
            "ref": "refs/heads/main",
            "sha": "d6e2b5f3c0a1e4b7a9c8d7e6f5a4b3c2d1e0f9a8",
            "repository": "octo-org/deploy",
            "repository_owner": "octo-org",
            "repository_owner_id": "9919",
            "repository_id": "74839201",
            "repository_visibility": "private",
            "run_id": "9055441234",
            "run_number": "42",
            "run_attempt": "1",
            "runner_environment": "github-hosted",
            "actor": "octocat",
            "actor_id": "583231",
            "workflow": "deploy",
            "workflow_ref": "octo-org/deploy/.github/workflows/deploy.yml@refs/heads/main",
            "workflow_sha": "d6e2b5f3c0a1e4b7a9c8d7e6f5a4b3c2d1e0f9a8",
            "job_workflow_ref": "octo-org/deploy/.github/workflows/deploy.yml@refs/heads/main",
            "job_workflow_sha": "d6e2b5f3c0a1e4b7a9c8d7e6f5a4b3c2d1e0f9a8",
            "event_name": "push",
            "base_ref": "",
            "head_ref": "",
            "ref_type": "branch",
            "ref_protected": "true",
            "environment": "prod",
            "check_run_id": "30512345678",
            "iss": "https://token.actions.githubusercontent.com",
            "nbf": iat - 600,
            "iat": iat,
            "exp": iat + 300,
        })
    }

    /// A GitLab CI/CD `id_tokens` token (gitlab.com) for project `octo-org/deploy`, a push
    /// pipeline on the protected branch `main`, job in environment `prod`.
    ///
    /// IDs and booleans are strings except `runner_id` (a number); `ref` is the short name with
    /// `ref_type` beside it; `nbf = iat - 5`, `exp = iat + 300` (the default job timeout of five
    /// minutes; real jobs often run longer).
    pub fn gitlab(iat: i64, aud: &str) -> Value {
        json!({
            "namespace_id": "4242",
            "namespace_path": "octo-org",
            "project_id": "7031",
            "project_path": "octo-org/deploy",
            "job_namespace_id": "4242",
            "job_namespace_path": "octo-org",
            "job_project_id": "7031",
            "job_project_path": "octo-org/deploy",
            "user_id": "1523",
            "user_login": "octocat",
            "user_email": "octocat@example.com",
            "user_access_level": "maintainer",
            "pipeline_id": "1184500213",
            "pipeline_source": "push",
            "job_id": "6620718845",
            "ref": "main",
            "ref_type": "branch",
            "ref_path": "refs/heads/main",
            "ref_protected": "true",
            "environment": "prod",
            "environment_protected": "true",
            "deployment_tier": "production",
            "environment_action": "start",
            "runner_id": 32975811,
            "runner_environment": "gitlab-hosted",
            "sha": "d6e2b5f3c0a1e4b7a9c8d7e6f5a4b3c2d1e0f9a8",
            "project_visibility": "private",
            "ci_config_ref_uri": "gitlab.com/octo-org/deploy//.gitlab-ci.yml@refs/heads/main",
            "ci_config_sha": "d6e2b5f3c0a1e4b7a9c8d7e6f5a4b3c2d1e0f9a8",
            "jti": "b3d1f0a2-5c6e-4d7f-8a9b-0c1d2e3f4a5b",
            "iss": "https://gitlab.com",
            "aud": aud,
            "sub": "project_path:octo-org/deploy:ref_type:branch:ref:main",
            "iat": iat,
            "nbf": iat - 5,
            "exp": iat + 300,
        })
    }

    /// The CircleCI organisation of [`circleci`]'s token (its issuer is
    /// `https://oidc.circleci.com/org/<this>`).
    pub const CIRCLECI_ORG_ID: &str = "8d2c4a6e-1f3b-4c5d-9e7f-0a1b2c3d4e5f";

    /// A CircleCI token (`CIRCLE_OIDC_TOKEN_V2`) for project `github.com/octo-org/deploy` on
    /// `main`: the V2 `sub` (`org/…/project/…/user/…/vcs-origin/…/vcs-ref/…`), the
    /// `oidc.circleci.com/*` claims (UUID strings, `context-ids` an array, `ssh-rerun` a
    /// boolean), no `nbf`, `exp = iat + 3600`.
    pub fn circleci(iat: i64, aud: &str) -> Value {
        let org = CIRCLECI_ORG_ID;
        let project = "5b7d9f1a-3c4e-4a6b-8d0f-2e4a6c8e0b1d";
        let user = "e1f2a3b4-c5d6-4e7f-a8b9-c0d1e2f3a4b5";
        json!({
            "iss": format!("https://oidc.circleci.com/org/{org}"),
            "sub": format!(
                "org/{org}/project/{project}/user/{user}/vcs-origin/github.com/octo-org/deploy/vcs-ref/refs/heads/main"
            ),
            "aud": aud,
            "jti": "7a8b9c0d-1e2f-4a3b-9c4d-5e6f7a8b9c0d",
            "oidc.circleci.com/org-id": org,
            "oidc.circleci.com/project-id": project,
            "oidc.circleci.com/pipeline-id": "c3e5a7b9-d1f3-4b5d-8f7a-9b1c3d5e7f9a",
            "oidc.circleci.com/pipeline-definition-id": "f0e1d2c3-b4a5-4968-8776-5a4b3c2d1e0f",
            "oidc.circleci.com/workflow-id": "a9b8c7d6-e5f4-4a3b-9c2d-1e0f9a8b7c6d",
            "oidc.circleci.com/job-id": "d4c3b2a1-f0e9-4d8c-a7b6-c5d4e3f2a1b0",
            "oidc.circleci.com/context-ids": ["0c9d8e7f-6a5b-4c4d-8e3f-2a1b0c9d8e7f"],
            "oidc.circleci.com/vcs-origin": "github.com/octo-org/deploy",
            "oidc.circleci.com/vcs-ref": "refs/heads/main",
            "oidc.circleci.com/ssh-rerun": false,
            "iat": iat,
            "exp": iat + 3600,
        })
    }

    /// A Buildkite agent token for pipeline `octo-org/deploy`, step `deploy`, on `main`: the
    /// default `sub` (`organization:…:pipeline:…:ref:…:commit:…:step:…`), `build_number` a
    /// number, `build_tag` null (not a tag build), `organization_id` and `pipeline_id` as if
    /// requested with `--claim`; `nbf = iat`, `exp = iat + 300`.
    pub fn buildkite(iat: i64, aud: &str) -> Value {
        let commit = "d6e2b5f3c0a1e4b7a9c8d7e6f5a4b3c2d1e0f9a8";
        json!({
            "iss": "https://agent.buildkite.com",
            "sub": format!(
                "organization:octo-org:pipeline:deploy:ref:refs/heads/main:commit:{commit}:step:deploy"
            ),
            "aud": aud,
            "iat": iat,
            "nbf": iat,
            "exp": iat + 300,
            "jti": "01933a4e-2f1c-7b8d-9e0f-a1b2c3d4e5f6",
            "organization_slug": "octo-org",
            "pipeline_slug": "deploy",
            "build_number": 1187,
            "build_branch": "main",
            "build_tag": null,
            "build_commit": commit,
            "step_key": "deploy",
            "job_id": "01933a4e-3a2b-4c5d-8e6f-7a8b9c0d1e2f",
            "agent_id": "01933a4e-4b3c-4d5e-9f6a-8b9c0d1e2f3a",
            "build_source": "webhook",
            "runner_environment": "self-hosted",
            "organization_id": "6e1f0a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b",
            "pipeline_id": "01933a4e-5c4d-4e6f-a07b-9c0d1e2f3a4b",
        })
    }

    /// A SPIFFE JWT-SVID (as SPIRE issues it with `jwt_issuer` set): `sub` the workload's SPIFFE
    /// ID `spiffe://example.org/ns/ci/sa/deployer`, exactly one audience (as an array), no `nbf`,
    /// `exp = iat + 300` (SPIRE's default TTL).
    pub fn spiffe(iat: i64, aud: &str) -> Value {
        json!({
            "iss": "https://oidc.example.org",
            "sub": "spiffe://example.org/ns/ci/sa/deployer",
            "aud": [aud],
            "iat": iat,
            "exp": iat + 300,
        })
    }

    /// The smallest useful token: `iss`, `sub`, `aud` and the times (`nbf = iat`,
    /// `exp = iat + 300`).
    pub fn generic(iat: i64, aud: &str) -> Value {
        json!({
            "iss": "https://issuer.example",
            "sub": "dev-user",
            "aud": aud,
            "iat": iat,
            "nbf": iat,
            "exp": iat + 300,
        })
    }
}

/// Signs `claims` under `header` with HMAC-SHA-256 (or -512 when `sha512`) keyed by `secret`:
/// the key-confusion attack (an HS token keyed with the issuer's *public* key), for tests that
/// prove Gateward refuses it.
pub fn sign_hmac(header: &Value, claims: &Value, secret: &[u8], sha512: bool) -> String {
    use jwt_compact::AlgorithmSignature;
    let input = format!(
        "{}.{}",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(claims.to_string().as_bytes())
    );
    let sig = if sha512 {
        let key = jwt_compact::alg::Hs512Key::new(secret);
        jwt_compact::alg::Hs512
            .sign(&key, input.as_bytes())
            .as_bytes()
            .into_owned()
    } else {
        let key = jwt_compact::alg::Hs256Key::new(secret);
        jwt_compact::alg::Hs256
            .sign(&key, input.as_bytes())
            .as_bytes()
            .into_owned()
    };
    format!("{input}.{}", b64::encode(&sig))
}

/// The SPKI PEM of a key's public half (what a key-confusion attacker would use as an HMAC secret).
pub fn public_pem(key: &SigningKey) -> String {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let pem = match key {
        SigningKey::Rsa(k) => k.to_public_key().to_public_key_pem(LineEnding::LF),
        SigningKey::P256(k) => k.verifying_key().to_public_key_pem(LineEnding::LF),
        SigningKey::P384(k) => k.verifying_key().to_public_key_pem(LineEnding::LF),
        SigningKey::Ed25519(k) => k.verifying_key().to_public_key_pem(LineEnding::LF),
    };
    pem.unwrap_or_default()
}
