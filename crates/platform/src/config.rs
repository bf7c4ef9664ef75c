//! Layered configuration: serde defaults, then a TOML file, then `VPS_`-prefixed environment.

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::de::DeserializeOwned;

/// Loads a service's configuration.
///
/// Layers, later ones winning: the struct's serde defaults; the TOML file named by
/// `VPS_CONFIG` (if set); environment variables `VPS_<FIELD>` (nested fields use `__`,
/// e.g. `VPS_ADMIN__EMAIL`).
pub fn load<T: DeserializeOwned>() -> anyhow::Result<T> {
    let mut figment = Figment::new();
    if let Ok(path) = std::env::var("VPS_CONFIG") {
        anyhow::ensure!(
            std::path::Path::new(&path).is_file(),
            "VPS_CONFIG names {path}, which is not a file"
        );
        figment = figment.merge(Toml::file(path));
    }
    figment = figment.merge(Env::prefixed("VPS_").ignore(&["CONFIG"]).split("__"));
    Ok(figment.extract()?)
}

/// Writes `contents` to a new file readable by its owner only (0600), creating the
/// directories above it; an existing file is an error, so a secret is never overwritten.
pub fn write_private(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{contents}")?;
    Ok(())
}

#[cfg(test)]
// figment's `Jail` fixes the closures' error type; its size is not ours to choose.
#[allow(clippy::result_large_err)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Default)]
    #[serde(default)]
    struct Sample {
        listen: String,
        database_url: String,
        admin: Admin,
    }

    #[derive(Debug, Deserialize, Default)]
    #[serde(default)]
    struct Admin {
        email: String,
        password: String,
    }

    #[test]
    fn environment_overrides_the_file_and_nests_with_double_underscores() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "vps.toml",
                "listen = \"127.0.0.1:1\"\ndatabase_url = \"sqlite://x.db\"\n[admin]\nemail = \"file@example.com\"\n",
            )?;
            jail.set_env("VPS_CONFIG", "vps.toml");
            jail.set_env("VPS_LISTEN", "0.0.0.0:2");
            jail.set_env("VPS_ADMIN__PASSWORD", "from-env");
            let sample: Sample = super::load().map_err(|e| figment::Error::from(e.to_string()))?;
            assert_eq!(sample.listen, "0.0.0.0:2");
            assert_eq!(sample.database_url, "sqlite://x.db");
            assert_eq!(sample.admin.email, "file@example.com");
            assert_eq!(sample.admin.password, "from-env");
            Ok(())
        });
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("VPS_CONFIG", "nope.toml");
            assert!(super::load::<Sample>().is_err());
            Ok(())
        });
    }
}
