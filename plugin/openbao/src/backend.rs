//! OpenBao's `pb.Backend` service over [`gateward_openbao_auth::Backend`].
//!
//! `Setup` dials the host's storage server through the broker; each `HandleRequest` is
//! translated into a [`gateward_openbao_auth::Request`], handled against that storage, and the
//! result translated back: data as a JSON string (`null` when empty, as Go's encoder writes a
//! nil map: OpenBao reads some responses' `error` key unchecked), tokens as `pb.Auth` with
//! nanosecond durations and an issue time, user errors as a response whose data is
//! `{"error": message}` (OpenBao answers HTTP 400 with it), the others as `ProtoError`s.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gateward_openbao_auth as auth;
use gateward_openbao_auth::ErrorKind;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::goplugin::{Broker, BROKER_WAIT};
use crate::proto::logical;
use crate::proto::pb::{self, backend_server};
use crate::storage::BrokerStorage;

/// `pb.TypeReply.type` of an auth method ("credential" backend).
pub const TYPE_CREDENTIAL: u32 = 2;

/// `ProtoError.err_type` values.
pub mod err_type {
    /// An internal error (HTTP 500).
    pub const INTERNAL: u32 = 2;
    /// `logical.ErrUnsupportedOperation` (HTTP 405).
    pub const UNSUPPORTED_OPERATION: u32 = 5;
    /// `logical.ErrUnsupportedPath` (HTTP 404).
    pub const UNSUPPORTED_PATH: u32 = 6;
    /// `logical.ErrPermissionDenied` (HTTP 403).
    pub const PERMISSION_DENIED: u32 = 8;
}

/// One mount's state after `Setup`.
struct Instance {
    backend: auth::Backend,
    storage: BrokerStorage,
}

/// The `pb.Backend` service.
pub struct BackendService {
    broker: Broker,
    tls: Arc<rustls::ClientConfig>,
    instance: RwLock<Option<Arc<Instance>>>,
}

impl std::fmt::Debug for BackendService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendService").finish_non_exhaustive()
    }
}

impl BackendService {
    /// A backend that will dial the host's storage through `broker` with `tls`.
    pub fn new(broker: Broker, tls: Arc<rustls::ClientConfig>) -> BackendService {
        BackendService {
            broker,
            tls,
            instance: RwLock::new(None),
        }
    }

    fn instance(&self) -> Result<Arc<Instance>, Status> {
        self.instance
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| Status::failed_precondition("the plugin is not set up yet"))
    }
}

/// Why a brokered connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The host never announced the connection.
    #[error("the host did not announce broker connection {0} within {BROKER_WAIT:?}")]
    NotAnnounced(u32),
    /// An announced network we cannot dial.
    #[error("unsupported broker network {0:?}")]
    Network(String),
    /// Connecting or the TLS handshake failed.
    #[error("cannot connect to the host's broker listener: {0}")]
    Connect(#[from] tonic::transport::Error),
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Connects to the host's server for broker `id` (a unix socket, or TCP on Windows hosts) with
/// our certificate, trusting only the host's.
pub async fn dial(
    broker: &Broker,
    id: u32,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Channel, DialError> {
    let info = broker
        .wait_for(id, BROKER_WAIT)
        .await
        .ok_or(DialError::NotAnnounced(id))?;
    if info.network != "unix" && info.network != "tcp" {
        return Err(DialError::Network(info.network));
    }
    let connector = tokio_rustls::TlsConnector::from(tls);
    let connect = tower::service_fn(move |_: tonic::codegen::http::Uri| {
        let info = info.clone();
        let connector = connector.clone();
        async move {
            let name = ServerName::try_from(crate::tls::SERVER_NAME)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let stream: Box<dyn Io> = if info.network == "unix" {
                let s = tokio::net::UnixStream::connect(&info.address).await?;
                Box::new(connector.connect(name, s).await?)
            } else {
                let s = tokio::net::TcpStream::connect(&info.address).await?;
                // Small request/response messages: Nagle plus delayed ACKs would add ~40 ms.
                s.set_nodelay(true)?;
                Box::new(connector.connect(name, s).await?)
            };
            Ok::<_, io::Error>(TokioIo::new(stream))
        }
    });
    // The scheme and host are placeholders: the connector decides where to go.
    Ok(Endpoint::from_static("http://localhost")
        .connect_with_connector(connect)
        .await?)
}

/// Runs one request's handling on a task of its own, so that a panic in it (a bug here or in a
/// dependency, on hostile input) fails that request with a 500 instead of taking the plugin
/// process down with every request in flight. Needs `panic = "unwind"`: test builds and the
/// `release-native` profile the plugin is built with.
async fn guarded<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, auth::Error>> + Send + 'static,
) -> Result<T, auth::Error> {
    match tokio::spawn(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => {
            log::error!("internal error: a request's handling panicked");
            Err(auth::Error::Internal("internal error".into()))
        }
        Err(_) => Err(auth::Error::Internal("the request was cancelled".into())),
    }
}

#[tonic::async_trait]
impl backend_server::Backend for BackendService {
    async fn handle_request(
        &self,
        request: Request<pb::HandleRequestArgs>,
    ) -> Result<Response<pb::HandleRequestReply>, Status> {
        let inst = self.instance()?;
        let Some(req) = request.into_inner().request else {
            return Err(Status::invalid_argument("no request"));
        };
        let renewing = req.auth.clone();
        let (op, path) = (req.operation.clone(), req.path.clone());
        let result = match request_from_pb(req) {
            Ok(req) => guarded(async move { inst.backend.handle(&inst.storage, req).await }).await,
            Err(e) => Err(e),
        };
        let reply = match result {
            Ok(resp) => {
                log::debug!("{op} {path}: ok");
                pb::HandleRequestReply {
                    response: response_to_pb(resp, renewing.as_ref(), SystemTime::now()),
                    err: None,
                }
            }
            Err(e) => {
                log::debug!("{op} {path}: {}", e.http_status());
                error_reply(&e)
            }
        };
        Ok(Response::new(reply))
    }

    async fn special_paths(
        &self,
        _request: Request<pb::Empty>,
    ) -> Result<Response<pb::SpecialPathsReply>, Status> {
        let p = auth::Backend::special_paths();
        Ok(Response::new(pb::SpecialPathsReply {
            paths: Some(pb::Paths {
                root: p.root,
                unauthenticated: p.unauthenticated,
                local_storage: Vec::new(),
                seal_wrap_storage: p.seal_wrap_storage,
                write_forwarded_storage: Vec::new(),
            }),
        }))
    }

    async fn handle_existence_check(
        &self,
        request: Request<pb::HandleExistenceCheckArgs>,
    ) -> Result<Response<pb::HandleExistenceCheckReply>, Status> {
        let inst = self.instance()?;
        let Some(req) = request.into_inner().request else {
            return Err(Status::invalid_argument("no request"));
        };
        let result = match request_from_pb(req) {
            Ok(req) => inst.backend.existence_check(&inst.storage, &req).await,
            Err(e) => Err(e),
        };
        let reply = match result {
            Ok((check_found, exists)) => pb::HandleExistenceCheckReply {
                check_found,
                exists,
                err: None,
            },
            Err(e) => pb::HandleExistenceCheckReply {
                check_found: false,
                exists: false,
                err: Some(proto_error(&e)),
            },
        };
        Ok(Response::new(reply))
    }

    async fn cleanup(&self, _request: Request<pb::Empty>) -> Result<Response<pb::Empty>, Status> {
        if let Ok(inst) = self.instance() {
            inst.backend.cleanup();
        }
        log::debug!("cleanup");
        Ok(Response::new(pb::Empty {}))
    }

    async fn invalidate_key(
        &self,
        request: Request<pb::InvalidateKeyArgs>,
    ) -> Result<Response<pb::Empty>, Status> {
        if let Ok(inst) = self.instance() {
            inst.backend.invalidate(&request.into_inner().key);
        }
        Ok(Response::new(pb::Empty {}))
    }

    async fn setup(
        &self,
        request: Request<pb::SetupArgs>,
    ) -> Result<Response<pb::SetupReply>, Status> {
        let args = request.into_inner();
        let channel = match dial(&self.broker, args.broker_id, self.tls.clone()).await {
            Ok(c) => c,
            Err(e) => {
                log::error!("setup: {e}");
                return Ok(Response::new(pb::SetupReply { err: e.to_string() }));
            }
        };
        let instance = Instance {
            backend: auth::Backend::new(),
            storage: BrokerStorage::new(channel),
        };
        *self
            .instance
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(instance));
        let get = |k: &str| args.config.get(k).map_or("", String::as_str);
        log::info!(
            "set up as {} plugin {:?} {} (gateward-openbao {})",
            get("plugin_type"),
            get("plugin_name"),
            get("plugin_version"),
            env!("CARGO_PKG_VERSION")
        );
        Ok(Response::new(pb::SetupReply { err: String::new() }))
    }

    async fn initialize(
        &self,
        _request: Request<pb::InitializeArgs>,
    ) -> Result<Response<pb::InitializeReply>, Status> {
        Ok(Response::new(pb::InitializeReply { err: None }))
    }

    async fn r#type(
        &self,
        _request: Request<pb::Empty>,
    ) -> Result<Response<pb::TypeReply>, Status> {
        Ok(Response::new(pb::TypeReply {
            r#type: TYPE_CREDENTIAL,
        }))
    }
}

/// The reply for a failed request: user errors as `{"error": message}` data, the rest as a
/// `ProtoError`.
pub fn error_reply(e: &auth::Error) -> pb::HandleRequestReply {
    if e.kind() == ErrorKind::User {
        let mut data = Map::new();
        data.insert("error".into(), Value::from(e.message()));
        pb::HandleRequestReply {
            response: Some(pb::Response {
                auth: None,
                data: Value::Object(data).to_string(),
                warnings: Vec::new(),
            }),
            err: None,
        }
    } else {
        pb::HandleRequestReply {
            response: None,
            err: Some(proto_error(e)),
        }
    }
}

/// `ProtoError` for a non-user error (a user error becomes an internal one here: existence
/// checks have no response to carry it).
pub fn proto_error(e: &auth::Error) -> pb::ProtoError {
    let err_type = match e.kind() {
        ErrorKind::UnsupportedPath => err_type::UNSUPPORTED_PATH,
        ErrorKind::UnsupportedOperation => err_type::UNSUPPORTED_OPERATION,
        ErrorKind::PermissionDenied => err_type::PERMISSION_DENIED,
        ErrorKind::User | ErrorKind::Internal => err_type::INTERNAL,
    };
    pb::ProtoError {
        err_type,
        err_msg: e.to_string(),
        err_code: 0,
    }
}

/// Translates OpenBao's request. Unknown operations (e.g. OpenBao 2.7's `resolve-path`) are
/// unsupported; data that is not a JSON object is a user error.
pub fn request_from_pb(p: pb::Request) -> Result<auth::Request, auth::Error> {
    let operation = auth::Operation::from_name(&p.operation)
        .ok_or_else(|| auth::Error::UnsupportedOperation(p.operation.clone()))?;
    let data = match p.data.trim() {
        "" => Map::new(),
        text => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            Ok(Value::Null) => Map::new(),
            Ok(_) | Err(_) => {
                return Err(auth::Error::Invalid(
                    "request data is not a JSON object".into(),
                ))
            }
        },
    };
    let auth = p.auth.as_ref().map(auth_from_pb);
    Ok(auth::Request {
        operation,
        path: p.path,
        data,
        remote_addr: p
            .connection
            .map(|c| c.remote_addr)
            .filter(|a| !a.is_empty()),
        mount_point: p.mount_point,
        auth,
    })
}

/// Translates a response; None (HTTP 204) when it carries nothing. `renewing` is the token
/// being renewed, whose fields we do not model (accessor, entity, group aliases, alias IDs)
/// and hand back unchanged, as Go backends return the request's auth.
pub fn response_to_pb(
    r: auth::Response,
    renewing: Option<&pb::Auth>,
    now: SystemTime,
) -> Option<pb::Response> {
    if r.is_empty() {
        return None;
    }
    Some(pb::Response {
        auth: r.auth.map(|a| auth_to_pb(a, renewing, now)),
        data: data_json(r.data),
        warnings: r.warnings,
    })
}

fn data_json(m: Map<String, Value>) -> String {
    if m.is_empty() {
        String::from("null")
    } else {
        Value::Object(m).to_string()
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn duration(ns: i64) -> Duration {
    Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

fn system_time(t: &prost_types::Timestamp) -> SystemTime {
    let secs = u64::try_from(t.seconds).unwrap_or(0);
    let nanos = u32::try_from(t.nanos).unwrap_or(0);
    UNIX_EPOCH + Duration::new(secs, nanos.min(999_999_999))
}

/// `logical.TokenType` codes.
fn token_type_code(t: &str) -> u32 {
    match t {
        "service" => 1,
        "batch" => 2,
        "default-service" => 3,
        "default-batch" => 4,
        _ => 0,
    }
}

fn token_type_name(code: u32) -> &'static str {
    match code {
        1 => "service",
        2 => "batch",
        3 => "default-service",
        4 => "default-batch",
        _ => "default",
    }
}

fn to_hash(m: BTreeMap<String, String>) -> HashMap<String, String> {
    m.into_iter().collect()
}

fn to_btree(m: &HashMap<String, String>) -> BTreeMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// `pb.Auth` for a token to issue (or renew, on top of `renewing`).
pub fn auth_to_pb(a: auth::Auth, renewing: Option<&pb::Auth>, now: SystemTime) -> pb::Auth {
    let mut out = renewing.cloned().unwrap_or_default();
    // OpenBao refuses a nil issue time; a renewal keeps the original one.
    let issue_time = a
        .lease
        .issue_time
        .map(timestamp)
        .or_else(|| out.lease_options.as_ref().and_then(|l| l.issue_time))
        .unwrap_or_else(|| timestamp(now));
    out.lease_options = Some(pb::LeaseOptions {
        ttl: nanos(a.lease.ttl),
        renewable: a.lease.renewable,
        increment: nanos(a.lease.increment),
        issue_time: Some(issue_time),
        max_ttl: nanos(a.lease.max_ttl),
    });
    out.internal_data = Value::Object(a.internal_data).to_string();
    out.display_name = a.display_name;
    out.policies = a.policies;
    out.token_policies = a.token_policies;
    out.metadata = to_hash(a.metadata);
    out.period = nanos(a.period);
    out.num_uses = a.num_uses;
    out.bound_cidrs = a.bound_cidrs;
    out.explicit_max_ttl = nanos(a.explicit_max_ttl);
    out.token_type = token_type_code(&a.token_type);
    out.no_default_policy = a.no_default_policy;
    if let Some(alias) = a.alias {
        let mut pa = out.alias.take().unwrap_or_default();
        pa.name = alias.name;
        pa.metadata = to_hash(alias.metadata);
        out.alias = Some(pa);
    }
    out
}

/// The token being renewed, as the auth logic sees it.
pub fn auth_from_pb(p: &pb::Auth) -> auth::Auth {
    let lease = p.lease_options.unwrap_or_default();
    let internal_data = match serde_json::from_str::<Value>(&p.internal_data) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    auth::Auth {
        display_name: p.display_name.clone(),
        policies: p.policies.clone(),
        token_policies: p.token_policies.clone(),
        metadata: to_btree(&p.metadata),
        internal_data,
        lease: auth::LeaseOptions {
            ttl: duration(lease.ttl),
            max_ttl: duration(lease.max_ttl),
            renewable: lease.renewable,
            increment: duration(lease.increment),
            issue_time: lease.issue_time.as_ref().map(system_time),
        },
        explicit_max_ttl: duration(p.explicit_max_ttl),
        period: duration(p.period),
        num_uses: p.num_uses,
        bound_cidrs: p.bound_cidrs.clone(),
        token_type: token_type_name(p.token_type).to_string(),
        no_default_policy: p.no_default_policy,
        alias: p.alias.as_ref().map(|a: &logical::Alias| auth::Alias {
            name: a.name.clone(),
            metadata: to_btree(&a.metadata),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn a_panic_while_handling_fails_that_request_with_a_500() {
        let failed: Result<(), auth::Error> = guarded(async { panic!("a bug") }).await;
        assert_eq!(failed.unwrap_err().http_status(), 500);
        assert_eq!(guarded(async { Ok::<_, auth::Error>(7) }).await.unwrap(), 7);
    }

    fn pb_request(op: &str, data: &str) -> pb::Request {
        pb::Request {
            operation: op.into(),
            path: "login".into(),
            data: data.into(),
            mount_point: "auth/gw/".into(),
            connection: Some(pb::Connection {
                remote_addr: "127.0.0.1".into(),
                remote_port: 5000,
            }),
            ..pb::Request::default()
        }
    }

    #[test]
    fn requests_translate_and_bad_ones_are_refused() {
        let r = request_from_pb(pb_request("update", r#"{"role":"deploy","jwt":"x"}"#)).unwrap();
        assert_eq!(r.operation, auth::Operation::Update);
        assert_eq!(r.data["role"], "deploy");
        assert_eq!(r.remote_addr.as_deref(), Some("127.0.0.1"));
        assert_eq!(r.mount_point, "auth/gw/");
        for empty in ["", "null", " "] {
            let r = request_from_pb(pb_request("read", empty)).unwrap();
            assert!(r.data.is_empty());
        }
        assert_eq!(
            request_from_pb(pb_request("resolve-path", "{}"))
                .unwrap_err()
                .kind(),
            ErrorKind::UnsupportedOperation
        );
        for bad in ["[1]", "{", "\"s\""] {
            assert_eq!(
                request_from_pb(pb_request("update", bad))
                    .unwrap_err()
                    .kind(),
                ErrorKind::User
            );
        }
    }

    #[test]
    fn errors_become_400_data_or_proto_errors() {
        let user = error_reply(&auth::Error::Invalid("expired: token expired".into()));
        assert!(user.err.is_none());
        let data: Value = serde_json::from_str(&user.response.unwrap().data).unwrap();
        assert_eq!(data, json!({"error": "expired: token expired"}));
        for (e, t) in [
            (
                auth::Error::UnsupportedPath("x".into()),
                err_type::UNSUPPORTED_PATH,
            ),
            (
                auth::Error::UnsupportedOperation("x".into()),
                err_type::UNSUPPORTED_OPERATION,
            ),
            (
                auth::Error::PermissionDenied("x".into()),
                err_type::PERMISSION_DENIED,
            ),
            (auth::Error::Internal("x".into()), err_type::INTERNAL),
            (auth::Error::Storage("x".into()), err_type::INTERNAL),
        ] {
            let reply = error_reply(&e);
            assert!(reply.response.is_none());
            assert_eq!(reply.err.unwrap().err_type, t, "{e}");
        }
    }

    fn sample_auth() -> auth::Auth {
        auth::Auth {
            display_name: "repo:octo-org/deploy".into(),
            policies: vec!["ci".into()],
            token_policies: vec!["ci".into()],
            metadata: [("repo".to_string(), "octo-org/deploy".to_string())].into(),
            internal_data: json!({"role": "deploy", "exp": 1_760_000_300})
                .as_object()
                .unwrap()
                .clone(),
            lease: auth::LeaseOptions {
                ttl: Duration::from_secs(300),
                max_ttl: Duration::from_secs(600),
                renewable: true,
                increment: Duration::ZERO,
                issue_time: None,
            },
            explicit_max_ttl: Duration::from_secs(300),
            period: Duration::ZERO,
            num_uses: 0,
            bound_cidrs: vec!["10.0.0.0/8".into()],
            token_type: "batch".into(),
            no_default_policy: true,
            alias: Some(auth::Alias {
                name: "repo:octo-org/deploy".into(),
                metadata: [("role".to_string(), "deploy".to_string())].into(),
            }),
        }
    }

    #[test]
    fn a_login_auth_has_nanosecond_durations_and_an_issue_time() {
        let now = UNIX_EPOCH + Duration::from_secs(1_760_000_000);
        let resp = auth::Response {
            auth: Some(sample_auth()),
            ..auth::Response::default()
        };
        let p = response_to_pb(resp, None, now).unwrap();
        // No data: `null`, which OpenBao decodes as a nil map.
        assert_eq!(p.data, "null");
        let a = p.auth.unwrap();
        let lease = a.lease_options.unwrap();
        assert_eq!(lease.ttl, 300_000_000_000);
        assert_eq!(lease.max_ttl, 600_000_000_000);
        assert!(lease.renewable);
        assert_eq!(lease.issue_time.unwrap().seconds, 1_760_000_000);
        assert_eq!(a.explicit_max_ttl, 300_000_000_000);
        assert_eq!(a.token_type, 2);
        assert!(a.no_default_policy);
        assert_eq!(a.alias.as_ref().unwrap().name, "repo:octo-org/deploy");
        assert_eq!(a.alias.as_ref().unwrap().metadata["role"], "deploy");
        let internal: Value = serde_json::from_str(&a.internal_data).unwrap();
        assert_eq!(internal["role"], "deploy");

        // And back, as a renew request brings it.
        let back = auth_from_pb(&a);
        assert_eq!(back.lease.ttl, Duration::from_secs(300));
        assert_eq!(back.lease.issue_time, Some(now));
        assert_eq!(back.token_type, "batch");
        assert_eq!(back.internal_data["exp"], 1_760_000_300);
        assert_eq!(back.alias.unwrap().metadata["role"], "deploy");
    }

    #[test]
    fn a_renewal_keeps_what_the_auth_logic_does_not_model() {
        let now = UNIX_EPOCH + Duration::from_secs(1_760_000_100);
        let mut original = auth_to_pb(
            sample_auth(),
            None,
            UNIX_EPOCH + Duration::from_secs(1_760_000_000),
        );
        original.accessor = "acc-1".into();
        original.entity_id = "ent-1".into();
        original.alias.as_mut().unwrap().id = "alias-1".into();
        original.alias.as_mut().unwrap().mount_accessor = "auth_x".into();
        let mut renewed = auth_from_pb(&original);
        renewed.lease.ttl = Duration::from_secs(30);
        renewed.lease.issue_time = None;
        let out = response_to_pb(
            auth::Response {
                auth: Some(renewed),
                ..auth::Response::default()
            },
            Some(&original),
            now,
        )
        .unwrap()
        .auth
        .unwrap();
        assert_eq!(out.accessor, "acc-1");
        assert_eq!(out.entity_id, "ent-1");
        let alias = out.alias.unwrap();
        assert_eq!(alias.id, "alias-1");
        assert_eq!(alias.mount_accessor, "auth_x");
        let lease = out.lease_options.unwrap();
        assert_eq!(lease.ttl, 30_000_000_000);
        // The original issue time, not the renewal's.
        assert_eq!(lease.issue_time.unwrap().seconds, 1_760_000_000);
    }

    #[test]
    fn an_empty_response_is_no_response_and_data_is_json() {
        assert!(response_to_pb(auth::Response::default(), None, UNIX_EPOCH).is_none());
        let mut data = Map::new();
        data.insert("role".into(), json!("deploy"));
        let p = response_to_pb(
            auth::Response {
                data,
                ..auth::Response::default()
            },
            None,
            UNIX_EPOCH,
        )
        .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&p.data).unwrap(),
            json!({"role": "deploy"})
        );
        assert!(p.auth.is_none());
    }
}
