//! The catalog: plans (tariffs), OS images and locations, loaded from a TOML file at start-up.
//! Prices are in minor currency units; the hourly price is derived from the monthly one.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

/// The catalog server-svc ships with (`crates/server-svc/catalog.toml`); the embedded stack
/// writes it to its data directory on first start.
pub const DEFAULT_CATALOG: &str = include_str!("../../catalog.toml");

/// Hours in the average month (365 × 24 / 12), the divisor for hourly prices.
pub const HOURS_PER_MONTH: i64 = 730;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub id: i64,
    pub name: String,
    pub vcpus: u32,
    pub memory_mb: u64,
    pub disk_gb: u64,
    /// Monthly traffic allowance in GB.
    pub bandwidth_gb: u64,
    /// Minor units per month.
    pub monthly_price: i64,
    /// Snapshots and (unprotected) backups a server on this plan may keep; 0: snapshot-svc's
    /// defaults.
    #[serde(default)]
    pub snapshot_limit: u32,
    #[serde(default)]
    pub backup_limit: u32,
    /// What happens when a server's month's traffic passes its limit.
    #[serde(default)]
    pub traffic_action: TrafficAction,
    /// For `throttle`: Mbit/s each way (0: 10).
    #[serde(default)]
    pub throttle_mbit: u32,
}

/// What a plan does to a server over its monthly traffic limit (an event is raised always).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrafficAction {
    #[default]
    None,
    /// The guest's network is limited to the plan's `throttle_mbit` until the month ends.
    Throttle,
    Suspend,
}

impl TrafficAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Throttle => "throttle",
            Self::Suspend => "suspend",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::None, Self::Throttle, Self::Suspend]
            .into_iter()
            .find(|a| a.as_str() == s)
    }

    /// The rate a throttled guest gets.
    pub fn throttle_mbit(configured: u32) -> u32 {
        if configured == 0 { 10 } else { configured }
    }
}

/// Minor units per hour for a monthly price, rounded up so a month of hours never costs
/// less than the month.
pub fn hourly_price(monthly_price: i64) -> i64 {
    (monthly_price + HOURS_PER_MONTH - 1) / HOURS_PER_MONTH
}

impl Plan {
    pub fn hourly_price(&self) -> i64 {
        hourly_price(self.monthly_price)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    pub id: i64,
    pub name: String,
    /// `linux`, `bsd`, `windows`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The template per driver: `lxc = "busybox"`, `proxmox = "lxc:local:vztmpl/..."`.
    pub templates: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(default)]
    pub locations: Vec<Location>,
    #[serde(default)]
    pub plans: Vec<Plan>,
    #[serde(default)]
    pub images: Vec<Image>,
}

impl Catalog {
    /// Parses and checks a catalog file's text.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let catalog: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        catalog.check()?;
        Ok(catalog)
    }

    /// Checks every entry: ids and codes unique, names given, sizes possible.
    pub fn check(&self) -> Result<(), String> {
        let name_ok = |n: &str| !n.trim().is_empty() && n.chars().count() <= 64;
        let mut codes = HashSet::new();
        for location in &self.locations {
            let code_ok = (1..=32).contains(&location.code.len())
                && location
                    .code
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !code_ok || !name_ok(&location.name) {
                return Err(format!(
                    "location {:?} needs a code of 1-32 letters, digits, '-' or '_' and a name of at most 64 characters",
                    location.code
                ));
            }
            if location.code.is_empty() || !codes.insert(location.code.as_str()) {
                return Err(format!(
                    "location code {:?} is empty or repeated",
                    location.code
                ));
            }
        }
        let mut ids = HashSet::new();
        for plan in &self.plans {
            if !ids.insert(plan.id) || plan.id <= 0 {
                return Err(format!("plan id {} is not positive or repeated", plan.id));
            }
            if !name_ok(&plan.name) {
                return Err(format!(
                    "plan {} needs a name of at most 64 characters",
                    plan.id
                ));
            }
            if plan.vcpus == 0
                || plan.vcpus > 1024
                || plan.memory_mb < 64
                || plan.memory_mb > 16 * 1024 * 1024
                || plan.disk_gb == 0
                || plan.disk_gb > 1024 * 1024
                || plan.bandwidth_gb > 1024 * 1024 * 1024
                || !(0..=1_000_000_000_000).contains(&plan.monthly_price)
            {
                return Err(format!("plan {} has an impossible size or price", plan.id));
            }
            if plan.throttle_mbit > 100_000 {
                return Err(format!(
                    "plan {} throttles to at most 100000 Mbit/s",
                    plan.id
                ));
            }
            if plan.snapshot_limit > 1000 || plan.backup_limit > 1000 {
                return Err(format!(
                    "plan {} keeps at most 1000 snapshots and 1000 backups per server",
                    plan.id
                ));
            }
        }
        let mut ids = HashSet::new();
        for image in &self.images {
            if !ids.insert(image.id) || image.id <= 0 {
                return Err(format!("image id {} is not positive or repeated", image.id));
            }
            if !name_ok(&image.name) || !name_ok(&image.kind) {
                return Err(format!("image {} needs a name and a type", image.id));
            }
            if image.templates.is_empty()
                || image
                    .templates
                    .iter()
                    .any(|(driver, template)| driver.is_empty() || template.trim().is_empty())
            {
                return Err(format!("image {} has no template for any driver", image.id));
            }
        }
        Ok(())
    }

    pub fn plan(&self, id: i64) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }

    pub fn image(&self, id: i64) -> Option<&Image> {
        self.images.iter().find(|i| i.id == id)
    }

    pub fn location(&self, code: &str) -> Option<&Location> {
        self.locations.iter().find(|l| l.code == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[[locations]]
code = "local"
name = "This machine"

[[plans]]
id = 1
name = "Small"
vcpus = 1
memory_mb = 512
disk_gb = 5
bandwidth_gb = 1000
monthly_price = 300

[[images]]
id = 1
name = "BusyBox"
type = "linux"
templates = { lxc = "busybox", proxmox = "lxc:local:vztmpl/alpine-3.20-default_20240908_amd64.tar.xz" }
"#;

    #[test]
    fn a_catalog_loads_and_is_searchable() {
        let catalog = Catalog::from_toml(SAMPLE).expect("valid");
        assert_eq!(catalog.plan(1).map(|p| p.name.as_str()), Some("Small"));
        assert_eq!(
            catalog
                .image(1)
                .and_then(|i| i.templates.get("lxc"))
                .map(String::as_str),
            Some("busybox")
        );
        assert!(catalog.location("local").is_some());
        assert!(catalog.plan(2).is_none());
    }

    #[test]
    fn the_shipped_catalog_loads() {
        let catalog = Catalog::from_toml(DEFAULT_CATALOG).expect("valid");
        assert!(!catalog.plans.is_empty() && !catalog.images.is_empty());
        assert!(
            catalog
                .images
                .iter()
                .any(|i| i.templates.get("lxc").map(String::as_str) == Some("busybox"))
        );
    }

    #[test]
    fn hourly_prices_round_up() {
        let plan = |monthly_price| Plan {
            snapshot_limit: 0,
            backup_limit: 0,
            traffic_action: TrafficAction::None,
            throttle_mbit: 0,
            id: 1,
            name: "p".into(),
            vcpus: 1,
            memory_mb: 512,
            disk_gb: 5,
            bandwidth_gb: 0,
            monthly_price,
        };
        assert_eq!(plan(0).hourly_price(), 0);
        assert_eq!(plan(300).hourly_price(), 1);
        assert_eq!(plan(730).hourly_price(), 1);
        assert_eq!(plan(731).hourly_price(), 2);
        assert_eq!(plan(73_000).hourly_price(), 100);
        assert!(plan(2_999).hourly_price() * HOURS_PER_MONTH >= 2_999);
    }

    #[test]
    fn broken_catalogs_are_refused() {
        let repeated = SAMPLE.replace("[[images]]", "[[plans]]\nid = 1\nname = \"Again\"\nvcpus = 1\nmemory_mb = 512\ndisk_gb = 5\nbandwidth_gb = 1\nmonthly_price = 1\n\n[[images]]");
        assert!(Catalog::from_toml(&repeated).is_err());
        assert!(Catalog::from_toml(&SAMPLE.replace("vcpus = 1", "vcpus = 0")).is_err());
        assert!(
            Catalog::from_toml(&SAMPLE.replace("templates = {", "unknown = 1\ntemplates = {"))
                .is_err()
        );
        assert!(Catalog::from_toml("plans = 3").is_err());
    }
}
