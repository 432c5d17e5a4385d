//! `cargo xtask playground`: the core compiled for the browser (`plugin/js`, wasm-bindgen) and the
//! static page `plugin/js/playground/`, served on 127.0.0.1. `cargo xtask browser-test` drives it
//! in headless Chromium ([`browser`]).
//!
//! The wasm-bindgen CLI must match the `wasm-bindgen` crate in `Cargo.lock` exactly; the tooling
//! installs that version into `.tools/cargo/` (git-ignored) on first use.

pub mod browser;
pub mod examples;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gateward_devkit::envoy::cargo_target_dir;

use crate::root;

/// The page's files: URL path, file under `plugin/js/playground/`, content type.
const STATIC: &[(&str, &str, &str)] = &[
    ("/", "index.html", "text/html; charset=utf-8"),
    ("/index.html", "index.html", "text/html; charset=utf-8"),
    ("/app.js", "app.js", "text/javascript; charset=utf-8"),
    ("/style.css", "style.css", "text/css; charset=utf-8"),
];

/// The wasm-bindgen output: URL path, file in the package folder, content type.
const PKG: &[(&str, &str, &str)] = &[
    (
        "/pkg/gateward_js.js",
        "gateward_js.js",
        "text/javascript; charset=utf-8",
    ),
    (
        "/pkg/gateward_js_bg.wasm",
        "gateward_js_bg.wasm",
        "application/wasm",
    ),
];

/// `cargo xtask playground [--port N]`: builds, serves, prints the URL, runs until killed.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut port = 0u16;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => {
                let v = it.next().ok_or("--port needs a number")?;
                port = v
                    .parse()
                    .map_err(|_| format!("--port {v:?} is not a port number"))?;
            }
            other => return Err(format!("unknown argument {other:?}; expected --port N")),
        }
    }
    let pkg = build()?;
    let server = Server::start(&pkg, port)?;
    println!("\nGateward playground (development only): {}", server.url());
    println!("Ctrl-C stops it.");
    // The server threads end with this process.
    loop {
        std::thread::park();
    }
}

/// Builds the wasm module (release) and runs wasm-bindgen on it; returns the package folder.
pub fn build() -> Result<PathBuf, String> {
    let target = cargo_target_dir();
    let target_dir = target.display().to_string();
    let args = [
        "build",
        "-p",
        "gateward-js",
        "--release",
        "--target",
        "wasm32-unknown-unknown",
        "--target-dir",
        &target_dir,
    ];
    eprintln!(
        "\n==> CARGO_PROFILE_RELEASE_OPT_LEVEL=z cargo {}",
        args.join(" ")
    );
    // Pages download the module: optimise it for size (2.4 MiB → 1.7 MiB after wasm-bindgen)
    // without touching the workspace's release profile, which the Envoy module is built with.
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "z")
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building gateward-js failed ({status})"));
    }
    let wasm = target.join("wasm32-unknown-unknown/release/gateward_js.wasm");
    let size = std::fs::metadata(&wasm)
        .map_err(|e| format!("{}: {e}", wasm.display()))?
        .len();
    eprintln!(
        "{} ({size} bytes, {:.2} MiB)",
        wasm.display(),
        size as f64 / 1_048_576.0
    );
    let bindgen = wasm_bindgen_cli()?;
    let out = target.join("gateward-playground/pkg");
    let status = Command::new(&bindgen)
        .args(["--target", "web", "--no-typescript", "--out-dir"])
        .arg(&out)
        .arg(&wasm)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", bindgen.display()))?;
    if !status.success() {
        return Err(format!("wasm-bindgen failed ({status})"));
    }
    let page_wasm = out.join("gateward_js_bg.wasm");
    let size = std::fs::metadata(&page_wasm).map_or(0, |m| m.len());
    eprintln!(
        "{} ({size} bytes, {:.2} MiB)",
        page_wasm.display(),
        size as f64 / 1_048_576.0
    );
    Ok(out)
}

/// The version of crate `name` in `Cargo.lock` (the first one listed).
pub fn locked_version(name: &str) -> Result<String, String> {
    let lock = root().join("Cargo.lock");
    let text = std::fs::read_to_string(&lock).map_err(|e| format!("{}: {e}", lock.display()))?;
    let wanted = format!("name = \"{name}\"");
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            if let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = \""))
                .and_then(|v| v.strip_suffix('"'))
            {
                return Ok(v.to_string());
            }
        }
    }
    Err(format!("{name} is not in Cargo.lock"))
}

/// `.tools/cargo/bin/wasm-bindgen`, installed with `cargo install` at the version of the
/// `wasm-bindgen` crate in Cargo.lock when it is missing or another version.
/// `GATEWARD_WASM_BINDGEN=/path/to/wasm-bindgen` uses that binary (it must be the same version).
pub fn wasm_bindgen_cli() -> Result<PathBuf, String> {
    let version = locked_version("wasm-bindgen")?;
    if let Some(given) = std::env::var_os("GATEWARD_WASM_BINDGEN") {
        let bin = PathBuf::from(given);
        let out = Command::new(&bin)
            .arg("--version")
            .output()
            .map_err(|e| format!("GATEWARD_WASM_BINDGEN={}: {e}", bin.display()))?;
        let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if got != format!("wasm-bindgen {version}") {
            return Err(format!(
                "GATEWARD_WASM_BINDGEN={} is {got:?}; Cargo.lock has wasm-bindgen {version}",
                bin.display()
            ));
        }
        return Ok(bin);
    }
    let tools = root().join(".tools/cargo");
    let bin = tools.join("bin/wasm-bindgen");
    let matches = || {
        Command::new(&bin).arg("--version").output().is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout).trim() == format!("wasm-bindgen {version}")
        })
    };
    if matches() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&tools).map_err(|e| format!("{}: {e}", tools.display()))?;
    // One install at a time across processes (two xtasks, or a test beside a playground).
    let lock_path = tools.join(".install.lock");
    let lock = File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    if matches() {
        return Ok(bin);
    }
    eprintln!(
        "installing wasm-bindgen-cli {version} into {} (once; a few minutes)",
        tools.display()
    );
    let started = Instant::now();
    let target_dir = cargo_target_dir().display().to_string();
    let root_dir = tools.display().to_string();
    let install = |locked: bool| {
        let mut args = vec!["install"];
        if locked {
            args.push("--locked");
        }
        // Unoptimised: the release build took 381 s of a cold CI run, the debug one 82 s (not
        // paired runs); generating the playground's bindings takes a second either way.
        args.extend([
            "--debug",
            "wasm-bindgen-cli",
            "--version",
            &version,
            "--root",
            &root_dir,
            "--target-dir",
            &target_dir,
        ]);
        crate::cargo(&args)
    };
    // `--locked` needs every crate of the CLI's lockfile in the registry; a registry that lacks
    // one (yanked, or a mirror behind) gets the newest compatible versions instead. The CLI's
    // own version stays exact either way, which is what has to match the crate.
    if let Err(e) = install(true) {
        eprintln!("{e}; retrying without --locked");
        install(false)?;
    }
    eprintln!(
        "installed wasm-bindgen-cli {version} in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if !matches() {
        return Err(format!(
            "{} is not wasm-bindgen {version} after the install",
            bin.display()
        ));
    }
    Ok(bin)
}

/// The playground's HTTP server on 127.0.0.1, stopped on drop.
pub struct Server {
    http: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
    port: u16,
}

/// One response: status, content type, body.
type Reply = (u16, &'static str, Vec<u8>);

impl Server {
    /// Serves the page, the wasm package in `pkg` and `examples.json` (built now from the tree)
    /// on 127.0.0.1:`port` (0: a free port).
    pub fn start(pkg: &Path, port: u16) -> Result<Server, String> {
        let root = root();
        let examples = serde_json::to_vec(&examples::build(&root)?).map_err(|e| e.to_string())?;
        let site = root.join("plugin/js/playground");
        let pkg = pkg.to_path_buf();
        let http = Arc::new(
            tiny_http::Server::http(("127.0.0.1", port))
                .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?,
        );
        let port = http
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or("the server has no TCP address")?;
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (Arc::clone(&http), Arc::clone(&stop));
        let worker = std::thread::Builder::new()
            .name("playground-http".into())
            .spawn(move || {
                while !s.load(Ordering::SeqCst) {
                    let Ok(Some(request)) = h.recv_timeout(Duration::from_millis(50)) else {
                        continue;
                    };
                    let (status, ctype, body) = answer(request.url(), &site, &pkg, &examples);
                    let mut response =
                        tiny_http::Response::from_data(body).with_status_code(status);
                    for (name, value) in [
                        ("content-type", ctype),
                        ("cache-control", "no-store"),
                        ("x-content-type-options", "nosniff"),
                    ] {
                        if let Ok(h) = tiny_http::Header::from_bytes(name, value) {
                            response.add_header(h);
                        }
                    }
                    let _ = request.respond(response);
                }
            })
            .map_err(|e| format!("cannot start the server thread: {e}"))?;
        Ok(Server {
            http,
            stop,
            worker: Some(worker),
            port,
        })
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.http.unblock();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// Only the listed files are served: nothing else under the tree is reachable.
fn answer(url: &str, site: &Path, pkg: &Path, examples: &[u8]) -> Reply {
    let path = url.split(['?', '#']).next().unwrap_or("/");
    if path == "/examples.json" {
        return (200, "application/json", examples.to_vec());
    }
    let file = STATIC
        .iter()
        .find(|(p, ..)| *p == path)
        .map(|(_, f, t)| (site.join(f), *t))
        .or_else(|| {
            PKG.iter()
                .find(|(p, ..)| *p == path)
                .map(|(_, f, t)| (pkg.join(f), *t))
        });
    match file {
        Some((file, ctype)) => match std::fs::read(&file) {
            Ok(body) => (200, ctype, body),
            Err(e) => (
                500,
                "text/plain; charset=utf-8",
                format!("{}: {e}", file.display()).into_bytes(),
            ),
        },
        None => (404, "text/plain; charset=utf-8", b"not found".to_vec()),
    }
}
