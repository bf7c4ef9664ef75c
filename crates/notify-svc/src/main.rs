//! notify-svc as its own process: configuration from `VPS_CONFIG` and `VPS_*`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::telemetry::init("notify-svc");
    let config: notify_svc::Config = platform::config::load()?;
    let shutdown = platform::Shutdown::new();
    shutdown.trigger_on_signals();
    notify_svc::serve(config, shutdown).await
}
