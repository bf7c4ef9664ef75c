//! node-svc as its own process: configuration from `VPS_CONFIG` and `VPS_*`.

/// mimalloc (without transparent huge pages): under load glibc's allocator spent a tenth of
/// the stack's time waiting on its arena locks (`docs/operations.md`, "Memory").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = platform::telemetry::init("node-svc");
    let config: node_svc::Config = platform::config::load()?;
    let shutdown = platform::Shutdown::new();
    shutdown.trigger_on_signals();
    node_svc::serve(config, shutdown).await
}
