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
