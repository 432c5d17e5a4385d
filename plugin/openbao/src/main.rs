//! The `gateward-openbao` plugin binary: OpenBao starts it (see `docs/openbao.md`).

fn main() -> std::process::ExitCode {
    gateward_openbao::serve::main()
}
