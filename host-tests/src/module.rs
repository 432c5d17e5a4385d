//! Building the filter for `wasm32-wasip1` and compiling it with wasmtime, once per process.

use crate::error::HostError;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use wasmtime::{Config, Engine, OptLevel};

/// Builds `plugin/envoy` (`gateward-envoy`) for `wasm32-wasip1` in release mode, once per
/// process, and returns the `.wasm` path.
///
/// Runs `$CARGO build --release -p gateward-envoy --target wasm32-wasip1 --target-dir
/// <T>/gateward-wasm` in the workspace, where `<T>` is `$CARGO_TARGET_DIR` (relative paths are
/// taken from the workspace root) or `<workspace>/target`. A target dir of its own keeps the
/// inner cargo off the lock the outer `cargo test` holds. Panics with cargo's output if the
/// build fails: this is test support, and that is a test failure.
pub fn filter_wasm() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(build_filter)
}

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host-tests lives inside the workspace")
}

fn build_filter() -> PathBuf {
    let workspace = workspace_root();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    let target_dir = target.join("gateward-wasm");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "-p",
            "gateward-envoy",
            "--target",
            "wasm32-wasip1",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .output()
        .unwrap_or_else(|e| panic!("running {cargo:?} to build the filter: {e}"));
    if !output.status.success() {
        panic!(
            "building the filter (cargo build --release -p gateward-envoy --target wasm32-wasip1) \
             failed with {}:\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let wasm = target_dir.join("wasm32-wasip1/release/gateward_envoy.wasm");
    assert!(
        wasm.is_file(),
        "cargo built the filter but {} is missing (is plugin/envoy a cdylib?)",
        wasm.display()
    );
    wasm
}

/// The one engine every module and VM of the process uses.
///
/// Cranelift runs at `OptLevel::None`: the filter arrives already optimized by LLVM, and on it
/// `None` compiled about 15 % faster than `Speed` while requests (RSA verification and Rego
/// evaluation, ≈0.8–1.1 ms each) ran no measurably slower. Compilation is what costs: once per
/// test binary, ≈25 s with the dev profile's unoptimized Cranelift on 2 cores (parallel
/// compilation on), ≈2 s if the workspace builds `cranelift-codegen` and friends with
/// `opt-level = 3`. `GATEWARD_WASM_OPT=speed` (or `size`) overrides the choice.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        let opt = match std::env::var("GATEWARD_WASM_OPT").as_deref() {
            Ok("speed") => OptLevel::Speed,
            Ok("size") => OptLevel::SpeedAndSize,
            _ => OptLevel::None,
        };
        config.cranelift_opt_level(opt);
        Engine::new(&config).unwrap_or_else(|e| panic!("creating the wasmtime engine: {e:?}"))
    })
}

/// A compiled proxy-wasm module, ready to start VMs from.
pub struct Module {
    pub(crate) module: wasmtime::Module,
}

impl Module {
    /// The Gateward filter: [`filter_wasm`] compiled once per process.
    pub fn gateward() -> &'static Module {
        static MODULE: OnceLock<Module> = OnceLock::new();
        MODULE.get_or_init(|| {
            Module::from_file(filter_wasm())
                .unwrap_or_else(|e| panic!("loading the Gateward filter: {e}"))
        })
    }

    /// Compiles a `.wasm` file.
    pub fn from_file(path: &Path) -> Result<Module, HostError> {
        let bytes = std::fs::read(path).map_err(|source| HostError::Read {
            path: path.to_owned(),
            source,
        })?;
        Module::from_bytes(&bytes)
    }

    /// Compiles a module from bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Module, HostError> {
        let module = wasmtime::Module::new(engine(), bytes)
            .map_err(|e| HostError::Compile(format!("{e:?}")))?;
        Ok(Module { module })
    }

    /// The module's imports as (module, name), e.g. `("env", "proxy_log")`.
    pub fn imports(&self) -> Vec<(String, String)> {
        self.module
            .imports()
            .map(|i| (i.module().to_owned(), i.name().to_owned()))
            .collect()
    }

    /// The names of the module's exports.
    pub fn exports(&self) -> Vec<String> {
        self.module.exports().map(|e| e.name().to_owned()).collect()
    }
}
