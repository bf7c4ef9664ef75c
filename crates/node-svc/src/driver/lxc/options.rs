//! How a node's LXC guests are made: the backing store, the id map and the process limit,
//! from the node's settings.

/// Where a node keeps its guests' root filesystems.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// A directory per guest: cheap, but the disk size cannot be enforced.
    Dir,
    /// An ext4 image per guest, loop-mounted: the disk size is enforced.
    Loop,
}

impl Backing {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "dir" => Some(Self::Dir),
            "loop" => Some(Self::Loop),
            _ => None,
        }
    }
}

/// The subordinate uid/gid range a node maps its guests' ids into: guest id 0 is host id
/// `start`. root needs it in /etc/subuid and /etc/subgid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdMap {
    pub start: u32,
    pub count: u32,
}

impl Default for IdMap {
    fn default() -> Self {
        Self {
            start: 1_000_000,
            count: 65_536,
        }
    }
}

impl IdMap {
    /// Parses `START:COUNT`; the range must leave host ids below 65536 alone.
    pub fn parse(raw: &str) -> Option<Self> {
        let (start, count) = raw.split_once(':')?;
        let map = Self {
            start: start.trim().parse().ok()?,
            count: count.trim().parse().ok()?,
        };
        (map.start >= 65_536 && map.count >= 65_536 && map.start.checked_add(map.count).is_some())
            .then_some(map)
    }
}

/// How a node's guests are made and limited.
#[derive(Clone, Copy, Debug)]
pub struct LxcOptions {
    pub idmap: IdMap,
    pub backing: Backing,
    /// Processes (and threads) one guest may have.
    pub pids_max: u32,
    /// How long a guest gets to halt when the driver itself needs it stopped (snapshots,
    /// rollbacks) before it is killed.
    pub stop_grace: std::time::Duration,
}

impl Default for LxcOptions {
    fn default() -> Self {
        Self {
            idmap: IdMap::default(),
            backing: Backing::Dir,
            pids_max: 1024,
            stop_grace: std::time::Duration::from_secs(30),
        }
    }
}

/// A node's options from its settings: `backing` (`loop`, the default, or `dir`, which
/// needs `unenforced_disk = true`: the operator accepts that disk sizes are not enforced),
/// `idmap` (`START:COUNT`, default `1000000:65536`), `pids_max` (default 1024) and
/// `stop_grace_secs` (default 30).
pub fn options_from<S: std::hash::BuildHasher>(
    settings: &std::collections::HashMap<String, String, S>,
) -> Result<LxcOptions, String> {
    let mut options = LxcOptions {
        backing: Backing::Loop,
        ..LxcOptions::default()
    };
    if let Some(raw) = settings.get("backing") {
        options.backing = Backing::parse(raw).ok_or("settings.backing must be loop or dir")?;
    }
    if options.backing == Backing::Dir
        && settings.get("unenforced_disk").map(String::as_str) != Some("true")
    {
        return Err(
            "a dir backing store cannot enforce disk sizes: set settings.unenforced_disk to true to accept that, or use backing loop"
                .to_owned(),
        );
    }
    if let Some(raw) = settings.get("idmap") {
        options.idmap = IdMap::parse(raw)
            .ok_or("settings.idmap must be START:COUNT with START and COUNT at least 65536")?;
    }
    if let Some(raw) = settings.get("pids_max") {
        options.pids_max = raw
            .parse()
            .ok()
            .filter(|n| (16..=1_000_000).contains(n))
            .ok_or("settings.pids_max must be a whole number from 16 to 1000000")?;
    }
    if let Some(raw) = settings.get("stop_grace_secs") {
        let secs: u64 = raw
            .parse()
            .ok()
            .filter(|n| (1..=600).contains(n))
            .ok_or("settings.stop_grace_secs must be a whole number from 1 to 600")?;
        options.stop_grace = std::time::Duration::from_secs(secs);
    }
    Ok(options)
}
