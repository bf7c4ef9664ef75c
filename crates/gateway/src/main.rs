//! The gateway as its own process: configuration from `VPS_CONFIG` and `VPS_*`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = platform::telemetry::init("gateway");
    let config: gateway::Config = platform::config::load()?;
    let shutdown = platform::Shutdown::new();
    shutdown.trigger_on_signals();
    gateway::serve(config, shutdown).await
}
