//! Generates the gRPC code from `proto/` with a pure-Rust parser (protox), so building needs no
//! `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/pb.proto",
        "proto/logical.proto",
        "proto/goplugin.proto",
        "proto/multiplexing.proto",
        "proto/health.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_fds(fds)?;
    Ok(())
}
