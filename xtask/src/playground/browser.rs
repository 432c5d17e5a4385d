//! `cargo xtask browser-test`: the playground in Debian's headless Chromium, driven by
//! `playwright-core` (`plugin/js/browser-test/`). Installs what it needs: Chromium with apt (as
//! root), the npm packages with `npm ci` into that folder's (git-ignored) `node_modules`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use gateward_devkit::envoy::cargo_target_dir;

use super::Server;
use crate::root;

/// Debian's Chromium.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs the browser test; the screenshot goes to `<target>/gateward-artifacts/playground.png`.
pub fn run() -> Result<(), String> {
    let started = Instant::now();
    let chromium = chromium()?;
    let dir = root().join("plugin/js/browser-test");
    npm_ci(&dir)?;
    let pkg = super::build()?;
    let shot = cargo_target_dir().join("gateward-artifacts/playground.png");
    if let Some(parent) = shot.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let server = Server::start(&pkg, 0)?;
    eprintln!("\n==> browser test against {}", server.url());
    let status = Command::new("node")
        .arg("test.mjs")
        .current_dir(&dir)
        .env("GATEWARD_PLAYGROUND_URL", server.url())
        .env("GATEWARD_CHROMIUM", &chromium)
        .env("GATEWARD_SCREENSHOT", &shot)
        .status()
        .map_err(|e| format!("cannot run node: {e}"))?;
    drop(server);
    if !status.success() {
        return Err(format!("the browser test failed ({status})"));
    }
    eprintln!(
        "browser test passed in {:.0} s; screenshot: {}",
        started.elapsed().as_secs_f64(),
        shot.display()
    );
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs `apt-get install -y <packages>` (after an `apt-get update` when the first try fails).
fn apt_install(packages: &[&str]) -> Result<(), String> {
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if install() {
        return Ok(());
    }
    let updated = Command::new("apt-get")
        .arg("update")
        .status()
        .is_ok_and(|s| s.success());
    if updated && install() {
        Ok(())
    } else {
        Err(format!("apt-get install -y {} failed", packages.join(" ")))
    }
}

/// `/usr/bin/chromium`, installed with apt when missing and running as root.
fn chromium() -> Result<PathBuf, String> {
    let path = PathBuf::from(CHROMIUM);
    if path.is_file() {
        return Ok(path);
    }
    if !is_root() {
        return Err(format!(
            "{CHROMIUM} is missing; install Debian's Chromium: sudo apt-get install -y chromium"
        ));
    }
    eprintln!("installing Chromium (apt-get install -y chromium)");
    // One apt at a time: dpkg's own lock would make a second one fail, not wait.
    let _lock = tools_lock("apt.lock")?;
    if !path.is_file() {
        apt_install(&["chromium"])?;
    }
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{CHROMIUM} is missing after the install"))
    }
}

/// An exclusive lock on `.tools/<name>`, held until dropped.
fn tools_lock(name: &str) -> Result<File, String> {
    let tools = root().join(".tools");
    std::fs::create_dir_all(&tools).map_err(|e| format!("{}: {e}", tools.display()))?;
    let path = tools.join(name);
    let file = File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.lock()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(file)
}

fn have_node() -> bool {
    ["node", "npm"].iter().all(|tool| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// The version of `node_modules/<name>` that `package-lock.json` pins, and the installed one.
fn versions(dir: &Path, name: &str) -> (Option<String>, Option<String>) {
    let read = |p: PathBuf| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    };
    let key = format!("node_modules/{name}");
    let locked = read(dir.join("package-lock.json")).and_then(|l| {
        l["packages"][key.as_str()]["version"]
            .as_str()
            .map(String::from)
    });
    let installed = read(dir.join(&key).join("package.json"))
        .and_then(|p| p["version"].as_str().map(String::from));
    (locked, installed)
}

/// `npm ci` in `dir` unless `node_modules` already holds the locked playwright-core.
fn npm_ci(dir: &Path) -> Result<(), String> {
    if !have_node() {
        if !is_root() {
            return Err(
                "node and npm are missing; install them: sudo apt-get install -y nodejs npm".into(),
            );
        }
        let _lock = tools_lock("apt.lock")?;
        apt_install(&["nodejs", "npm"])?;
    }
    let _lock = tools_lock("npm-ci.lock")?;
    let (locked, installed) = versions(dir, "playwright-core");
    if locked.is_some() && locked == installed {
        return Ok(());
    }
    eprintln!("\n==> npm ci (plugin/js/browser-test)");
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("npm ci failed ({status})"))
    }
}
