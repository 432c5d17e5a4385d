//! Building the filter for `wasm32-wasip1` and compiling it with wasmtime, once per process.

use crate::error::HostError;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use wasmtime::{Config, Engine, OptLevel};

/// Builds `plugin/envoy` (`gateward-envoy`) for `wasm32-wasip1` in release mode, once per
/// process, and returns the `.wasm` path.
///
/// Uses `gateward_devkit::envoy::build_module`, as `cargo xtask build` does, into the same
/// `<target>/gateward-wasm` (off the lock the outer `cargo test` holds). Panics if the build fails (cargo's output is on stderr): this is test
/// support, and that is a test failure.
pub fn filter_wasm() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(build_filter)
}

fn build_filter() -> PathBuf {
    use gateward_devkit::envoy;
    envoy::build_module(None).unwrap_or_else(|e| panic!("building the filter: {e}"))
}

/// The one engine every module and VM of the process uses.
///
/// Cranelift runs at `OptLevel::None`: the filter arrives already optimized by LLVM, and on it
/// `None` compiled about 15 % faster than `Speed` while requests (RSA verification and Rego
/// evaluation, ≈0.8–1.1 ms each) ran no measurably slower. Compilation is what costs: once per
/// test binary, ≈25 s with the dev profile's unoptimized Cranelift on 2 cores (parallel
/// compilation on), ≈2 s if the workspace builds `cranelift-codegen` and friends with
/// `opt-level = 3`. `GATEWARD_WASM_OPT=speed` (or `size`) overrides the choice; the
/// benchmark (`benches/request.rs`) sets `speed`.
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
