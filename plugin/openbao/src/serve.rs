//! The plugin process: handshake, gRPC server over mTLS on a unix socket, shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::NamedService;
use tonic::transport::server::Connected;
use tower::Service;

use crate::backend::BackendService;
use crate::goplugin::{Broker, Controller, Health, Multiplexing, Stdio, Version};
use crate::handshake::{self, HandshakeError, HostEnv, Socket};
use crate::proto::health::health_server::HealthServer;
use crate::proto::logical::plugin_version_server::PluginVersionServer;
use crate::proto::multiplexing::plugin_multiplexing_server::PluginMultiplexingServer;
use crate::proto::pb::backend_server::BackendServer;
use crate::proto::plugin::grpc_broker_server::GrpcBrokerServer;
use crate::proto::plugin::grpc_controller_server::GrpcControllerServer;
use crate::proto::plugin::grpc_stdio_server::GrpcStdioServer;
use crate::tls::{Identity, TlsError};

/// How long in-flight calls may take to finish after `Shutdown`.
const DRAIN: Duration = Duration::from_secs(2);

/// How often we look whether the host process is still our parent.
const PARENT_POLL: Duration = Duration::from_secs(1);

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The start-up contract was not met.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// TLS set-up failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The runtime could not start or stdout could not be written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Server(#[from] tonic::transport::Error),
}

/// The binary's `main`: runs until OpenBao shuts the plugin down. Exit code 1 when started by
/// hand or when set-up fails.
pub fn main() -> ExitCode {
    let env = match HostEnv::from_vars(|k| std::env::var(k).ok()) {
        Ok(env) => env,
        Err(e) => {
            // A person ran it: plain text, not JSON.
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    crate::hclog::init();
    // The auth logic fetches keys over HTTPS with rustls, which takes the process default.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let result = match runtime {
        Ok(rt) => rt.block_on(run(env)),
        Err(e) => Err(ServeError::Io(e)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(1)
        }
    }
}

/// Serves until `Shutdown`, or until the host process goes away.
pub async fn run(env: HostEnv) -> Result<(), ServeError> {
    let identity = Identity::generate(&env.client_cert)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(identity.server_config()?));
    let (listener, socket) = Socket::bind(&env.socket_dir)?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let broker = Broker::default();
    let router = Router::new(
        &broker,
        Arc::new(identity.client_config()?),
        shutdown_tx.clone(),
        shutdown_rx.clone(),
    );
    let incoming = accept(listener, acceptor, shutdown_rx.clone());
    let mut stop = shutdown_rx.clone();
    let server = tokio::spawn(
        tonic::transport::Server::builder().serve_with_incoming_shutdown(
            router,
            incoming,
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        ),
    );
    {
        use std::io::Write as _;
        let line = handshake::line(
            "unix",
            &socket.path.to_string_lossy(),
            &identity.cert_base64(),
        );
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    log::debug!("listening on {}", socket.path.display());
    tokio::spawn(ignore_interrupts());
    tokio::spawn(watch_parent(shutdown_tx));
    let mut done = shutdown_rx;
    let _ = done.wait_for(|s| *s).await;
    broker.close();
    match tokio::time::timeout(DRAIN, server).await {
        Ok(Ok(Err(e))) => log::warn!("gRPC server: {e}"),
        Err(_) => log::debug!("connections still open after {DRAIN:?}; exiting anyway"),
        _ => {}
    }
    drop(socket);
    Ok(())
}

/// Accepts connections and completes their TLS handshakes off the accept loop.
fn accept(
    listener: UnixListener,
    acceptor: tokio_rustls::TlsAcceptor,
    mut shutdown: watch::Receiver<bool>,
) -> ReceiverStream<Result<TlsConn, std::io::Error>> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                r = listener.accept() => r,
                _ = shutdown.wait_for(|s| *s) => return,
            };
            let stream = match stream {
                Ok((s, _)) => s,
                Err(e) => {
                    log::warn!("accept: {e}");
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match acceptor.accept(stream).await {
                    Ok(tls) => {
                        let _ = tx.send(Ok(TlsConn(tls))).await;
                    }
                    // Only the host holds the certificate we accept; anything else is noise.
                    Err(e) => log::warn!("TLS handshake with a client failed: {e}"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// go-plugin plugins ignore SIGINT: a Ctrl-C in the server's terminal reaches the whole
/// process group, and the host stops its plugins itself.
async fn ignore_interrupts() {
    use tokio::signal::unix::{signal, SignalKind};
    if let Ok(mut sigint) = signal(SignalKind::interrupt()) {
        while sigint.recv().await.is_some() {
            log::debug!("ignoring SIGINT: the host stops its plugins");
        }
    }
}

/// Shuts down when the host dies without telling us (we get re-parented).
async fn watch_parent(shutdown: watch::Sender<bool>) {
    let parent = std::os::unix::process::parent_id();
    loop {
        tokio::time::sleep(PARENT_POLL).await;
        if std::os::unix::process::parent_id() != parent {
            log::warn!("the host process is gone; exiting");
            shutdown.send_replace(true);
            return;
        }
    }
}

/// A TLS connection from the host.
pub struct TlsConn(tokio_rustls::server::TlsStream<UnixStream>);

impl Connected for TlsConn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// Routes each call to its service by the path's `/<package>.<Service>/` prefix (tonic's own
/// router would bring in axum for this).
#[derive(Clone)]
pub struct Router {
    health: HealthServer<Health>,
    broker: GrpcBrokerServer<Broker>,
    controller: GrpcControllerServer<Controller>,
    stdio: GrpcStdioServer<Stdio>,
    version: PluginVersionServer<Version>,
    multiplexing: PluginMultiplexingServer<Multiplexing>,
    backend: BackendServer<BackendService>,
}

impl Router {
    /// All of the plugin's services.
    pub fn new(
        broker: &Broker,
        client_tls: Arc<rustls::ClientConfig>,
        shutdown: watch::Sender<bool>,
        shutdown_rx: watch::Receiver<bool>,
    ) -> Router {
        Router {
            health: HealthServer::new(Health),
            broker: GrpcBrokerServer::new(broker.clone()),
            controller: GrpcControllerServer::new(Controller { shutdown }),
            stdio: GrpcStdioServer::new(Stdio {
                shutdown: shutdown_rx,
            }),
            version: PluginVersionServer::new(Version),
            multiplexing: PluginMultiplexingServer::new(Multiplexing),
            // The host sends and accepts messages up to 2 GiB.
            backend: BackendServer::new(BackendService::new(broker.clone(), client_tls))
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
        }
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

fn forward<S>(mut svc: S, req: http::Request<Body>) -> BoxFuture
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    Box::pin(async move { svc.call(req).await })
}

fn is<S: NamedService>(path: &str) -> bool {
    path.strip_prefix('/')
        .and_then(|p| p.strip_prefix(S::NAME))
        .is_some_and(|p| p.starts_with('/'))
}

impl Service<http::Request<Body>> for Router {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Generated services are always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let path = req.uri().path().to_string();
        if is::<BackendServer<BackendService>>(&path) {
            forward(self.backend.clone(), req)
        } else if is::<HealthServer<Health>>(&path) {
            forward(self.health.clone(), req)
        } else if is::<GrpcBrokerServer<Broker>>(&path) {
            forward(self.broker.clone(), req)
        } else if is::<GrpcControllerServer<Controller>>(&path) {
            forward(self.controller.clone(), req)
        } else if is::<GrpcStdioServer<Stdio>>(&path) {
            forward(self.stdio.clone(), req)
        } else if is::<PluginVersionServer<Version>>(&path) {
            forward(self.version.clone(), req)
        } else if is::<PluginMultiplexingServer<Multiplexing>>(&path) {
            forward(self.multiplexing.clone(), req)
        } else {
            // Reflection and anything else: gRPC "unimplemented".
            let resp = tonic::Status::unimplemented(format!("no service for {path}")).into_http();
            Box::pin(async move { Ok(resp) })
        }
    }
}
