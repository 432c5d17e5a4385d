//! go-plugin's start-up contract: the environment the host sets, the listener, and the
//! handshake line.

use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

/// The magic cookie OpenBao (and Vault) set for backend plugins: not security, only a guard
/// against running the binary by hand.
pub const MAGIC_COOKIE_KEY: &str = "VAULT_BACKEND_PLUGIN";
/// Its value.
pub const MAGIC_COOKIE_VALUE: &str = "6669da05-b1c8-4f49-97d9-c8e5bed98e20";
/// go-plugin's core protocol version.
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// OpenBao's backend plugin protocol version (gRPC).
pub const APP_PROTOCOL_VERSION: u32 = 5;

/// Why the plugin cannot start.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// Run outside OpenBao.
    #[error(
        "gateward-openbao is an OpenBao/Vault auth plugin: it is started by the server, not by hand.\n\
         Register it in the plugin catalog and enable it (see docs/openbao.md):\n  \
         bao plugin register -sha256=<sha256 of this file> auth gateward-openbao\n  \
         bao auth enable -path=gateward gateward-openbao"
    )]
    NotStartedByHost,
    /// The host did not enable AutoMTLS (an old host, or plugin metadata mode).
    #[error(
        "the host started the plugin without AutoMTLS (PLUGIN_CLIENT_CERT is unset); \
         gateward-openbao needs OpenBao >= 2.0 or Vault >= 1.12 with automatic plugin mTLS"
    )]
    NoAutoMtls,
    /// The host does not speak protocol version 5.
    #[error(
        "the host offers plugin protocol versions {0:?}; this plugin speaks {APP_PROTOCOL_VERSION}"
    )]
    Version(String),
    /// The listener could not be created.
    #[error("cannot listen on a unix socket in {dir}: {source}")]
    Listen {
        /// The socket directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What the host told us through the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEnv {
    /// The host's AutoMTLS certificate (PEM).
    pub client_cert: String,
    /// Where to create our socket (`PLUGIN_UNIX_SOCKET_DIR`, else the temp directory).
    pub socket_dir: PathBuf,
}

impl HostEnv {
    /// Reads the environment through `var` (the process environment in `main`).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<HostEnv, HandshakeError> {
        if var(MAGIC_COOKIE_KEY).as_deref() != Some(MAGIC_COOKIE_VALUE) {
            return Err(HandshakeError::NotStartedByHost);
        }
        if let Some(versions) = var("PLUGIN_PROTOCOL_VERSIONS") {
            let offered = versions
                .split(',')
                .any(|v| v.trim().parse::<u32>().ok() == Some(APP_PROTOCOL_VERSION));
            if !offered {
                return Err(HandshakeError::Version(versions));
            }
        }
        let client_cert = var("PLUGIN_CLIENT_CERT")
            .filter(|c| !c.trim().is_empty())
            .ok_or(HandshakeError::NoAutoMtls)?;
        let socket_dir = var("PLUGIN_UNIX_SOCKET_DIR")
            .filter(|d| !d.is_empty())
            .map_or_else(std::env::temp_dir, PathBuf::from);
        Ok(HostEnv {
            client_cert,
            socket_dir,
        })
    }
}

/// The line the host reads from our stdout:
/// `CORE-VERSION|APP-VERSION|NETWORK|ADDRESS|PROTOCOL|SERVER-CERT`.
pub fn line(network: &str, address: &str, cert_base64: &str) -> String {
    format!("{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|{network}|{address}|grpc|{cert_base64}")
}

/// The path of our unix socket, removed on drop.
#[derive(Debug)]
pub struct Socket {
    /// The socket's path.
    pub path: PathBuf,
}

impl Socket {
    /// Binds a fresh socket `plugin<unique>` in `dir`, as go-plugin names them.
    pub fn bind(dir: &Path) -> Result<(UnixListener, Socket), HandshakeError> {
        let listen_err = |source| HandshakeError::Listen {
            dir: dir.to_path_buf(),
            source,
        };
        let mut last = std::io::Error::other("no attempt");
        for attempt in 0..16u32 {
            let path = dir.join(format!("plugin{}", unique(attempt)));
            match UnixListener::bind(&path) {
                Ok(listener) => return Ok((listener, Socket { path })),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last = e,
                Err(e) => return Err(listen_err(e)),
            }
        }
        Err(listen_err(last))
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn unique(attempt: u32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!("{}{nanos:09}{attempt}", std::process::id())
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
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn the_environment_is_checked_in_order() {
        assert!(matches!(
            HostEnv::from_vars(env(&[])),
            Err(HandshakeError::NotStartedByHost)
        ));
        assert!(matches!(
            HostEnv::from_vars(env(&[(MAGIC_COOKIE_KEY, "wrong")])),
            Err(HandshakeError::NotStartedByHost)
        ));
        let cookie = (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE);
        assert!(matches!(
            HostEnv::from_vars(env(&[cookie])),
            Err(HandshakeError::NoAutoMtls)
        ));
        assert!(matches!(
            HostEnv::from_vars(env(&[cookie, ("PLUGIN_PROTOCOL_VERSIONS", "3,4"), ("PLUGIN_CLIENT_CERT", "x")])),
            Err(HandshakeError::Version(v)) if v == "3,4"
        ));
        let ok = HostEnv::from_vars(env(&[
            cookie,
            ("PLUGIN_PROTOCOL_VERSIONS", "4,5"),
            ("PLUGIN_CLIENT_CERT", "PEM"),
            ("PLUGIN_UNIX_SOCKET_DIR", "/run/bao"),
        ]))
        .unwrap();
        assert_eq!(ok.client_cert, "PEM");
        assert_eq!(ok.socket_dir, PathBuf::from("/run/bao"));
    }

    #[test]
    fn the_line_has_six_fields() {
        assert_eq!(
            line("unix", "/tmp/plugin1", "MIIB"),
            "1|5|unix|/tmp/plugin1|grpc|MIIB"
        );
    }

    #[tokio::test]
    async fn sockets_are_unique_and_removed_on_drop() {
        let dir = std::env::temp_dir();
        let (_la, a) = Socket::bind(&dir).unwrap();
        let (_lb, b) = Socket::bind(&dir).unwrap();
        assert_ne!(a.path, b.path);
        assert!(a.path.exists());
        let path = a.path.clone();
        drop(a);
        assert!(!path.exists());
    }
}
