//! Protocol messages and services generated from `proto/` (see `build.rs`).
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// OpenBao's backend protocol (`pb.Backend`, `pb.Storage`).
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/pb.rs"));
}

/// OpenBao SDK types (`logical.Alias`, `logical.PluginVersion`).
pub mod logical {
    include!(concat!(env!("OUT_DIR"), "/logical.rs"));
}

/// go-plugin's services (`plugin.GRPCBroker`, `plugin.GRPCController`, `plugin.GRPCStdio`).
pub mod plugin {
    include!(concat!(env!("OUT_DIR"), "/plugin.rs"));
}

/// `pluginutil.multiplexing.PluginMultiplexing`.
pub mod multiplexing {
    include!(concat!(env!("OUT_DIR"), "/pluginutil.multiplexing.rs"));
}

/// `grpc.health.v1.Health`.
pub mod health {
    include!(concat!(env!("OUT_DIR"), "/grpc.health.v1.rs"));
}
