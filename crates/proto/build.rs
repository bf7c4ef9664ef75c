//! Compiles every service's `.proto` with protox, so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "vps/common/v1/common.proto",
        "vps/events/v1/events.proto",
        "vps/identity/v1/identity.proto",
        "vps/monitor/v1/monitor.proto",
        "vps/node/v1/node.proto",
        "vps/notify/v1/notify.proto",
        "vps/server/v1/server.proto",
        "vps/snapshot/v1/snapshot.proto",
    ];
    let fds = protox::compile(files, ["protos"])?;
    // The descriptors themselves, for server reflection and for tests that walk every RPC.
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("descriptors.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .btree_map(".vps.server")
        // Archive chunks pass through without a copy.
        .bytes(".vps.node.v1.BackupChunk.data")
        .bytes(".vps.node.v1.RestoreChunk.data")
        // Events travel as JSON (consumers include customers' webhooks), in camelCase.
        .type_attribute(
            ".vps.events",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(rename_all = \"camelCase\", default)]",
        )
        // Samples travel as JSON too, on `vps.stats.<server_id>`.
        .type_attribute(
            ".vps.monitor.v1.Sample",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(rename_all = \"camelCase\", default)]",
        )
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=protos");
    Ok(())
}
