//! go-plugin's services: health, the connection broker, shutdown and stdio, plus OpenBao's
//! plugin-version and multiplexing queries.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status, Streaming};

use crate::proto::health::health_check_response::ServingStatus;
use crate::proto::health::{health_server, HealthCheckRequest, HealthCheckResponse};
use crate::proto::logical::{plugin_version_server, VersionReply};
use crate::proto::multiplexing::{
    plugin_multiplexing_server, MultiplexingSupportRequest, MultiplexingSupportResponse,
};
use crate::proto::plugin::{
    grpc_broker_server, grpc_controller_server, grpc_stdio_server, ConnInfo, Empty, StdioData,
};
use crate::proto::{logical, plugin};

/// The health service name go-plugin pings.
pub const HEALTH_SERVICE: &str = "plugin";

/// How long `Setup` waits for the host to announce a broker connection (go-plugin's value).
pub const BROKER_WAIT: Duration = Duration::from_secs(5);

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// `grpc.health.v1.Health`: "plugin" (and the server as a whole, "") are serving.
#[derive(Debug, Default)]
pub struct Health;

#[tonic::async_trait]
impl health_server::Health for Health {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        if service.is_empty() || service == HEALTH_SERVICE {
            Ok(Response::new(HealthCheckResponse {
                status: ServingStatus::Serving.into(),
            }))
        } else {
            Err(Status::not_found(format!("unknown service {service:?}")))
        }
    }

    type WatchStream = BoxStream<HealthCheckResponse>;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("health watch is not supported"))
    }
}

/// The plugin side of go-plugin's broker: the host opens one `StartStream` and announces on it
/// each callback server it starts (`ConnInfo{service_id, network, address}`); `Setup` then
/// waits for the announcement of its `broker_id` and dials it.
#[derive(Debug, Clone, Default)]
pub struct Broker {
    inner: Arc<BrokerInner>,
}

#[derive(Debug, Default)]
struct BrokerInner {
    announced: Mutex<HashMap<u32, ConnInfo>>,
    changed: Notify,
    // Kept so the stream to the host stays open: go-plugin's host closes its broker when the
    // plugin's side of the stream ends.
    outbound: Mutex<Vec<mpsc::Sender<Result<ConnInfo, Status>>>>,
}

impl Broker {
    fn announced(&self) -> MutexGuard<'_, HashMap<u32, ConnInfo>> {
        self.inner
            .announced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an announcement from the host.
    pub fn announce(&self, info: ConnInfo) {
        // Knocks belong to go-plugin's multiplexed broker, which OpenBao does not enable.
        if info.knock.is_some() {
            log::debug!("broker: ignoring a knock for service {}", info.service_id);
            return;
        }
        log::debug!(
            "broker: service {} at {} {}",
            info.service_id,
            info.network,
            info.address
        );
        self.announced().insert(info.service_id, info);
        self.inner.changed.notify_waiters();
    }

    /// Ends the streams to the host (on shutdown, so the server can drain).
    pub fn close(&self) {
        self.inner
            .outbound
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Waits up to `limit` for the host to announce service `id`.
    pub async fn wait_for(&self, id: u32, limit: Duration) -> Option<ConnInfo> {
        let wait = async {
            loop {
                let changed = self.inner.changed.notified();
                tokio::pin!(changed);
                // Register interest before looking, so an announcement in between is not lost.
                changed.as_mut().enable();
                if let Some(info) = self.announced().remove(&id) {
                    return info;
                }
                changed.await;
            }
        };
        tokio::time::timeout(limit, wait).await.ok()
    }
}

#[tonic::async_trait]
impl grpc_broker_server::GrpcBroker for Broker {
    type StartStreamStream = BoxStream<ConnInfo>;

    async fn start_stream(
        &self,
        request: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let mut inbound = request.into_inner();
        let broker = self.clone();
        tokio::spawn(async move {
            while let Some(next) = inbound.next().await {
                match next {
                    Ok(info) => broker.announce(info),
                    Err(e) => {
                        log::debug!("broker stream ended: {}", e.message());
                        break;
                    }
                }
            }
        });
        let (tx, rx) = mpsc::channel(1);
        self.inner
            .outbound
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tx);
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// `plugin.GRPCController`: `Shutdown` asks the process to exit.
#[derive(Debug, Clone)]
pub struct Controller {
    /// Set to true on shutdown.
    pub shutdown: watch::Sender<bool>,
}

#[tonic::async_trait]
impl grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _request: Request<Empty>) -> Result<Response<Empty>, Status> {
        log::info!("shutdown requested by the host");
        self.shutdown.send_replace(true);
        Ok(Response::new(plugin::Empty {}))
    }
}

/// `plugin.GRPCStdio`: we never redirect stdout/stderr (logs go to the real stderr, which the
/// host reads), so the stream stays open and empty until the plugin exits.
#[derive(Debug, Clone)]
pub struct Stdio {
    /// Ends the stream on shutdown.
    pub shutdown: watch::Receiver<bool>,
}

#[tonic::async_trait]
impl grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = BoxStream<StdioData>;

    async fn stream_stdio(
        &self,
        _request: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        let mut shutdown = self.shutdown.clone();
        // The sender lives until shutdown; then the stream ends.
        let (tx, rx) = mpsc::channel::<Result<StdioData, Status>>(1);
        tokio::spawn(async move {
            let _ = shutdown.wait_for(|s| *s).await;
            drop(tx);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// `logical.PluginVersion`: the crate's version, `v`-prefixed semver. OpenBao records it as
/// the catalog version at registration.
#[derive(Debug, Default)]
pub struct Version;

/// The version we report.
pub fn plugin_version() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

#[tonic::async_trait]
impl plugin_version_server::PluginVersion for Version {
    async fn version(
        &self,
        _request: Request<logical::Empty>,
    ) -> Result<Response<VersionReply>, Status> {
        Ok(Response::new(VersionReply {
            plugin_version: plugin_version(),
        }))
    }
}

/// `pluginutil.multiplexing.PluginMultiplexing`: not supported; OpenBao then starts one process
/// per mount.
#[derive(Debug, Default)]
pub struct Multiplexing;

#[tonic::async_trait]
impl plugin_multiplexing_server::PluginMultiplexing for Multiplexing {
    async fn multiplexing_support(
        &self,
        _request: Request<MultiplexingSupportRequest>,
    ) -> Result<Response<MultiplexingSupportResponse>, Status> {
        Ok(Response::new(MultiplexingSupportResponse {
            supported: false,
        }))
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

    fn info(id: u32) -> ConnInfo {
        ConnInfo {
            service_id: id,
            network: "unix".into(),
            address: format!("/tmp/plugin{id}"),
            knock: None,
        }
    }

    #[tokio::test]
    async fn broker_hands_out_announcements_made_before_or_after_the_wait() {
        let broker = Broker::default();
        broker.announce(info(1));
        assert_eq!(
            broker.wait_for(1, BROKER_WAIT).await.unwrap().address,
            "/tmp/plugin1"
        );
        // Taken once.
        assert!(broker
            .wait_for(1, Duration::from_millis(10))
            .await
            .is_none());

        let waiter = {
            let b = broker.clone();
            tokio::spawn(async move { b.wait_for(2, BROKER_WAIT).await })
        };
        tokio::task::yield_now().await;
        broker.announce(info(3));
        broker.announce(info(2));
        assert_eq!(waiter.await.unwrap().unwrap().address, "/tmp/plugin2");
        assert_eq!(broker.wait_for(3, BROKER_WAIT).await.unwrap().service_id, 3);
    }

    #[test]
    fn version_is_semver_with_a_v() {
        let v = plugin_version();
        let parts: Vec<&str> = v.trim_start_matches('v').split('.').collect();
        assert!(v.starts_with('v'));
        assert_eq!(parts.len(), 3, "{v}");
        assert!(parts.iter().all(|p| p.parse::<u64>().is_ok()), "{v}");
    }
}
