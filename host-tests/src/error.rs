//! Typed errors of the host.

use std::path::PathBuf;

/// Why the host could not load, instantiate or start a module.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The `.wasm` file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Wasmtime refused to compile the module.
    #[error("compiling the module: {0}")]
    Compile(String),
    /// Wasmtime refused to instantiate it (usually an import with an unexpected signature).
    #[error("instantiating the module: {0}")]
    Instantiate(String),
    /// A required export is missing.
    #[error("the module does not export `{0}`")]
    MissingExport(&'static str),
    /// The module is not built for proxy-wasm ABI 0.2.1.
    #[error("not a proxy-wasm ABI 0.2.1 module: no `proxy_abi_version_0_2_1` export")]
    UnsupportedAbi,
    /// The module trapped (or panicked) while the VM was being started.
    #[error("the module trapped in {phase}: {message}")]
    Trap {
        /// The export that was running.
        phase: &'static str,
        /// The module's last critical log line (the SDK's panic message) and the trap.
        message: String,
    },
    /// `proxy_on_vm_start` returned false: Envoy would refuse the configuration.
    #[error("proxy_on_vm_start returned false; module logs:\n{logs}")]
    VmStartRejected {
        /// Everything the module logged while starting, one line each.
        logs: String,
    },
}
