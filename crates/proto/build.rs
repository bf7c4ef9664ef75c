//! Compiles every service's `.proto` with protox, so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "vps/identity/v1/identity.proto",
        "vps/node/v1/node.proto",
        "vps/server/v1/server.proto",
    ];
    let fds = protox::compile(files, ["protos"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .btree_map(".vps.server")
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=protos");
    Ok(())
}
