//! notify-svc as its own process: configuration from `VPS_CONFIG` and `VPS_*`, and seed
//! 000's `SMTP_HOST`, `SMTP_PORT`, `SMTP_USER` and `SMTP_PASS`.

/// mimalloc (without transparent huge pages): under load glibc's allocator spent a tenth of
/// the stack's time waiting on its arena locks (`docs/operations.md`, "Memory").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = platform::telemetry::init("notify-svc");
    let mut config: notify_svc::Config = platform::config::load()?;
    config.smtp = config
        .smtp
        .with_seed_variables(|name| std::env::var(name).ok());
    let shutdown = platform::Shutdown::new();
    shutdown.trigger_on_signals();
    notify_svc::serve(config, shutdown).await
}
