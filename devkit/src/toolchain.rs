//! The Rust targets the wasm builds need, installed before the first build that needs them.
//!
//! `rust-toolchain.toml` lists `wasm32-wasip1` and `wasm32-unknown-unknown`, but rustup adds a
//! toolchain file's targets only when it installs the toolchain itself: a machine that already
//! has the pinned toolchain without them fails with `can't find crate for core`. Every xtask
//! that builds for wasm (and [`crate::envoy::build_module`]) calls [`ensure_targets`] first.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Why the wasm targets are not available.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ToolchainError {
    /// `rust-toolchain.toml` could not be read, or lists no targets.
    #[error("{path}: {why}")]
    ToolchainFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// `rustc --print sysroot` failed.
    #[error("cannot find the Rust toolchain's sysroot (`rustc --print sysroot`): {0}")]
    Sysroot(String),
    /// Targets are missing and there is no rustup to add them.
    #[error(
        "the Rust toolchain lacks the target(s) {targets}, and `rustup` is not available to add \
         them: install them with your toolchain's own means (with rustup: `rustup target add {targets}`)",
        targets = .0.join(" ")
    )]
    NoRustup(Vec<String>),
    /// `rustup target add` failed.
    #[error("`rustup target add {targets}` failed: {why}", targets = .targets.join(" "))]
    Install {
        /// The targets it was asked for.
        targets: Vec<String>,
        /// Its exit status or why it could not start.
        why: String,
    },
}

/// What [`ensure_targets`] must do, given what is wanted and what is installed.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Every wanted target is installed.
    Ready,
    /// These targets are missing; rustup can add them.
    Install(Vec<String>),
}

/// Decides what to do: the wanted targets not in `installed`, to be added by rustup when
/// `have_rustup`, else [`ToolchainError::NoRustup`] naming them.
pub fn plan(
    wanted: &[String],
    installed: &[String],
    have_rustup: bool,
) -> Result<Plan, ToolchainError> {
    let missing: Vec<String> = wanted
        .iter()
        .filter(|t| !installed.contains(t))
        .cloned()
        .collect();
    match (missing.is_empty(), have_rustup) {
        (true, _) => Ok(Plan::Ready),
        (false, true) => Ok(Plan::Install(missing)),
        (false, false) => Err(ToolchainError::NoRustup(missing)),
    }
}

/// The `targets = [...]` of a `rust-toolchain.toml` (the project's own file: one line, quoted
/// names).
pub fn wanted_targets(toolchain_toml: &str) -> Option<Vec<String>> {
    let line = toolchain_toml
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("targets") && l.contains('='))?;
    let list = line.split_once('=')?.1.trim();
    let inner = list.strip_prefix('[')?.strip_suffix(']')?;
    let targets: Vec<String> = inner
        .split(',')
        .map(|t| t.trim().trim_matches('"').to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    (!targets.is_empty()).then_some(targets)
}

/// The targets whose standard library is in the toolchain's sysroot (`lib/rustlib/<target>/lib`):
/// what rustc can build for, whoever installed it.
pub fn installed_targets(sysroot: &Path, wanted: &[String]) -> Vec<String> {
    wanted
        .iter()
        .filter(|t| sysroot.join("lib/rustlib").join(t).join("lib").is_dir())
        .cloned()
        .collect()
}

/// Makes sure the toolchain pinned by `<root>/rust-toolchain.toml` has its targets, adding the
/// missing ones with `rustup target add` (and saying so on stderr).
pub fn ensure_targets(root: &Path) -> Result<(), ToolchainError> {
    let file = root.join("rust-toolchain.toml");
    let text = std::fs::read_to_string(&file).map_err(|e| ToolchainError::ToolchainFile {
        path: file.clone(),
        why: e.to_string(),
    })?;
    let wanted = wanted_targets(&text).ok_or_else(|| ToolchainError::ToolchainFile {
        path: file.clone(),
        why: "no `targets = [...]` line".into(),
    })?;
    let sysroot = sysroot(root)?;
    let installed = installed_targets(&sysroot, &wanted);
    let have_rustup = Command::new("rustup")
        .arg("--version")
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let Plan::Install(missing) = plan(&wanted, &installed, have_rustup)? else {
        return Ok(());
    };
    eprintln!(
        "==> the toolchain lacks {}: rustup target add {}",
        missing.join(", "),
        missing.join(" ")
    );
    // Run in the root, so rustup picks the toolchain rust-toolchain.toml pins.
    let status = Command::new("rustup")
        .args(["target", "add"])
        .args(&missing)
        .current_dir(root)
        .status()
        .map_err(|e| ToolchainError::Install {
            targets: missing.clone(),
            why: e.to_string(),
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(ToolchainError::Install {
            targets: missing,
            why: status.to_string(),
        })
    }
}

fn sysroot(root: &Path) -> Result<PathBuf, ToolchainError> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .current_dir(root)
        .output()
        .map_err(|e| ToolchainError::Sysroot(e.to_string()))?;
    if !out.status.success() {
        return Err(ToolchainError::Sysroot(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn reads_the_projects_toolchain_file() {
        let text =
            std::fs::read_to_string(crate::envoy::workspace_root().join("rust-toolchain.toml"))
                .unwrap();
        assert_eq!(
            wanted_targets(&text),
            Some(names(&["wasm32-wasip1", "wasm32-unknown-unknown"]))
        );
        assert_eq!(wanted_targets("[toolchain]\nchannel = \"1.95.0\"\n"), None);
        assert_eq!(wanted_targets("targets = []"), None);
    }

    #[test]
    fn installs_only_what_is_missing() {
        let wanted = names(&["wasm32-wasip1", "wasm32-unknown-unknown"]);
        assert_eq!(plan(&wanted, &wanted, true), Ok(Plan::Ready));
        assert_eq!(plan(&wanted, &wanted, false), Ok(Plan::Ready));
        assert_eq!(
            plan(&wanted, &names(&["wasm32-unknown-unknown"]), true),
            Ok(Plan::Install(names(&["wasm32-wasip1"])))
        );
        assert_eq!(plan(&wanted, &[], true), Ok(Plan::Install(wanted.clone())));
    }

    #[test]
    fn without_rustup_the_error_names_the_missing_targets() {
        let wanted = names(&["wasm32-wasip1", "wasm32-unknown-unknown"]);
        let err = plan(&wanted, &names(&["wasm32-wasip1"]), false).unwrap_err();
        assert_eq!(
            err,
            ToolchainError::NoRustup(names(&["wasm32-unknown-unknown"]))
        );
        assert_eq!(
            err.to_string(),
            "the Rust toolchain lacks the target(s) wasm32-unknown-unknown, and `rustup` is not \
             available to add them: install them with your toolchain's own means (with rustup: \
             `rustup target add wasm32-unknown-unknown`)"
        );
    }

    #[test]
    fn a_target_counts_as_installed_when_its_library_is_in_the_sysroot() {
        let dir = std::env::temp_dir().join(format!("gateward-sysroot-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("lib/rustlib/wasm32-wasip1/lib")).unwrap();
        // A folder without `lib` (rustup leaves such after a partial removal) does not count.
        std::fs::create_dir_all(dir.join("lib/rustlib/wasm32-unknown-unknown")).unwrap();
        let wanted = names(&["wasm32-wasip1", "wasm32-unknown-unknown"]);
        assert_eq!(installed_targets(&dir, &wanted), names(&["wasm32-wasip1"]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
