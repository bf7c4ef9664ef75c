//! The `lxc` driver: real Linux containers on this host through the `lxc-*` tools, run with
//! `tokio::process`, one container path (`-P`) per node. Cgroup v1 and v2 are both read.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

mod archive;
mod isolation;
mod network;
mod options;
mod usage;

use isolation::{USERNS_CONF, check_subordinate_ids};
pub use options::{Backing, IdMap, LxcOptions, options_from};
use usage::{cpu_time_ns, disk_io, guest_disk_bytes, memory, network, running_inits, uptime_secs};

use super::Console;
use super::{
    BackupFacts, ChunkSink, Chunks, DriverError, DriverResult, GuestSpec, Hypervisor, Notes,
    PowerState, Resources, SnapshotInfo, Usage, valid_name,
};

/// Marks a container as ours: creating over an unmarked one is refused.
const TAG_FILE: &str = "vps-managed";
/// Our snapshot names mapped to LXC's `snapN`.
const SNAPSHOT_INDEX: &str = "vps-snapshots.json";
const CPU_PERIOD_US: u64 = 100_000;
/// How long one clean-stop request waits before it is asked again.
const STOP_ROUND: Duration = Duration::from_secs(3);
/// The only environment the `lxc-*` tools and `script` get: nothing of the control plane's
/// own environment (its secrets among it) may reach a tool, let alone a guest.
const TOOL_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// What a process attached to a guest starts with, instead of the caller's environment.
const GUEST_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const GUEST_TERM: &str = "TERM=xterm-256color";

/// `lxc-attach` arguments for `name` that start the attached process with a cleared
/// environment holding only PATH, TERM and HOME.
fn attach_args(name: &str) -> [&str; 10] {
    [
        "-n",
        name,
        "--clear-env",
        "--set-var",
        GUEST_PATH,
        "--set-var",
        GUEST_TERM,
        "--set-var",
        "HOME=/root",
        "--",
    ]
}

/// A command for an `lxc-*` tool (or `script`) that inherits nothing of this process's
/// environment.
fn tool(program: &str) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("PATH", TOOL_PATH)
        .env("LC_ALL", "C");
    command
}

pub struct LxcDriver {
    path: PathBuf,
    options: LxcOptions,
    /// Loop-backed guests are made and started one at a time: concurrent `losetup`s can
    /// race for the same free loop device.
    starting: tokio::sync::Mutex<()>,
    /// One lock per container for read-modify-write of its config and snapshot index.
    locks: tokio::sync::Mutex<
        std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>,
    >,
}

#[derive(Debug)]
struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IndexedSnapshot {
    name: String,
    lxc: String,
    description: String,
    created_at: i64,
}

fn failed(tool: &str, out: &Output) -> DriverError {
    let detail = out
        .stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    DriverError::Failed(format!("{tool} failed (exit {}): {detail}", out.code))
}

fn check_name(name: &str) -> DriverResult<()> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(DriverError::Conflict(format!(
            "invalid guest or snapshot name {name:?}"
        )))
    }
}

fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

impl LxcDriver {
    /// A driver with the default options: unprivileged guests in directories.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_options(path, LxcOptions::default())
    }

    pub fn with_options(path: impl Into<PathBuf>, options: LxcOptions) -> Self {
        Self {
            path: path.into(),
            options,
            starting: tokio::sync::Mutex::new(()),
            locks: Default::default(),
        }
    }

    /// Sets how long a container gets to halt before the driver forces it, when the driver
    /// stops it for a snapshot or a rollback.
    #[must_use]
    pub fn with_internal_grace(mut self, grace: Duration) -> Self {
        self.options.stop_grace = grace;
        self
    }

    async fn lock(&self, name: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .await
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The config a create hands to `lxc-create`, which stays until the guest is wholly
    /// made: a container found beside it is a create of ours that was cut short (the
    /// service killed, or the call dropped as its caller died), not someone else's.
    fn create_marker(&self, name: &str) -> PathBuf {
        self.path.join(format!(".create-{name}.conf"))
    }

    /// Holds creating and deleting `name` to one at a time across every process that drives
    /// this path (node-svc replicas on one host, a retried call beside the one it retries):
    /// an advisory lock on one of [`LOCK_STRIPES`] files in `.vps-locks` beside the
    /// containers, released when the returned file is dropped or its process dies.
    async fn guest_lock(&self, name: &str) -> DriverResult<std::fs::File> {
        let dir = self.path.join(".vps-locks");
        let file = dir.join(format!("{:02}", lock_stripe(name)));
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&file)?;
            file.lock()?;
            Ok::<_, std::io::Error>(file)
        })
        .await
        .map_err(|e| DriverError::Failed(format!("locking the guest: {e}")))?
        .map_err(|e| DriverError::Failed(format!("locking the guest: {e}")))
    }

    /// Destroys a stopped guest with its snapshots; an error only if it is still there.
    async fn destroy(&self, name: &str) -> DriverResult<()> {
        let out = self
            .run("lxc-destroy", &["-n", name, "-f", "-s"], None)
            .await?;
        if out.code != 0 && self.exists(name).await {
            return Err(failed("lxc-destroy", &out));
        }
        Ok(())
    }

    /// Removes what a create that was cut short left of `name`. Cut early, there is only
    /// a directory with `lxc-create`'s `partial` file and an empty root filesystem, no
    /// config: `lxc-destroy` does not know it as a container, and `lxc-create` refuses to
    /// make one over it, so the directory goes by hand. The marker beside it says it is ours.
    async fn clear_half_made(&self, name: &str) -> DriverResult<()> {
        if self.exists(name).await {
            self.destroy(name).await?;
        }
        match tokio::fs::remove_dir_all(self.dir(name)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DriverError::Failed(
                format!("removing the half-made guest {name}: {e}"),
            )),
            _ => Ok(()),
        }
    }

    async fn run(
        &self,
        program: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> DriverResult<Output> {
        self.run_in(program, args, stdin, false).await
    }

    /// [`LxcDriver::run`] with the tool in a process group of its own, killed whole if the
    /// call is dropped: `lxc-create` runs a template script, which would otherwise go on
    /// writing into a guest that is then made again.
    async fn run_grouped(&self, program: &str, args: &[&str]) -> DriverResult<Output> {
        self.run_in(program, args, None, true).await
    }

    async fn run_in(
        &self,
        program: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
        grouped: bool,
    ) -> DriverResult<Output> {
        let tool_name = program;
        let started = std::time::Instant::now();
        let mut command = tool(program);
        if grouped {
            command.process_group(0);
        }
        command
            .arg("-P")
            .arg(&self.path)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| {
            DriverError::Unreachable(anyhow::anyhow!(
                "cannot run {tool_name}: {e}; is LXC installed?"
            ))
        })?;
        let mut group = GroupKill(
            child
                .id()
                .filter(|_| grouped)
                .and_then(|id| i32::try_from(id).ok())
                .map(nix::unistd::Pid::from_raw),
        );
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input)
                .await
                .map_err(|e| DriverError::Failed(format!("{tool_name}: writing stdin: {e}")))?;
            drop(pipe);
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| DriverError::Failed(format!("{tool_name}: {e}")))?;
        group.0 = None;
        tracing::debug!(
            tool = tool_name,
            ?args,
            code = out.status.code(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "ran an LXC tool"
        );
        Ok(Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    async fn exists(&self, name: &str) -> bool {
        tokio::fs::metadata(self.dir(name).join("config"))
            .await
            .is_ok()
    }

    async fn require(&self, name: &str) -> DriverResult<()> {
        check_name(name)?;
        if self.exists(name).await {
            Ok(())
        } else {
            Err(DriverError::NotFound(name.to_owned()))
        }
    }

    async fn config_set(&self, name: &str, key: &str, value: &str) -> DriverResult<()> {
        self.config_edit(name, key, Some(value)).await
    }

    /// Sets `key` to `value` in the guest's config, or removes it (`None`).
    async fn config_edit(&self, name: &str, key: &str, value: Option<&str>) -> DriverResult<()> {
        if value.is_some_and(|v| v.contains(['\n', '\r', '\0']))
            || key.contains(['\n', '\r', '\0', '='])
        {
            return Err(DriverError::Conflict(format!(
                "refusing a config value for {key} with line breaks"
            )));
        }
        let lock = self.lock(name).await;
        let _held = lock.lock().await;
        let file = self.dir(name).join("config");
        let text = tokio::fs::read_to_string(&file)
            .await
            .map_err(|e| DriverError::Failed(format!("reading config: {e}")))?;
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| l.split('=').next().map(str::trim) != Some(key))
            .map(str::to_owned)
            .collect();
        if let Some(value) = value {
            lines.push(format!("{key} = {value}"));
        }
        tokio::fs::write(&file, lines.join("\n") + "\n")
            .await
            .map_err(|e| DriverError::Failed(format!("writing config: {e}")))
    }

    /// Applies limits to the stored config and, when running, to the live cgroup.
    async fn apply_limits(
        &self,
        name: &str,
        resources: Resources,
        running: bool,
    ) -> DriverResult<Notes> {
        let mut notes = Notes::new();
        let v2 = cgroup_v2();
        let mut settings: Vec<(String, String)> = Vec::new();
        if let Some(mb) = resources.memory_mb {
            let bytes = mb
                .checked_mul(1024 * 1024)
                .ok_or_else(|| DriverError::Conflict("memory size out of range".into()))?
                .to_string();
            settings.push((
                if v2 {
                    "memory.max"
                } else {
                    "memory.limit_in_bytes"
                }
                .to_owned(),
                bytes,
            ));
        }
        if let Some(cores) = resources.cores {
            let quota = u64::from(cores) * CPU_PERIOD_US;
            if v2 {
                settings.push(("cpu.max".to_owned(), format!("{quota} {CPU_PERIOD_US}")));
            } else {
                settings.push(("cpu.cfs_period_us".to_owned(), CPU_PERIOD_US.to_string()));
                settings.push(("cpu.cfs_quota_us".to_owned(), quota.to_string()));
            }
        }
        if resources.cores.is_some() || resources.memory_mb.is_some() {
            settings.push(("pids.max".to_owned(), self.options.pids_max.to_string()));
        }
        let prefix = if v2 { "lxc.cgroup2." } else { "lxc.cgroup." };
        for (key, value) in &settings {
            self.config_set(name, &format!("{prefix}{key}"), value)
                .await?;
            if running {
                let out = self
                    .run("lxc-cgroup", &["-n", name, key, value], None)
                    .await?;
                if out.code != 0 {
                    return Err(failed("lxc-cgroup", &out));
                }
            }
        }
        if resources.disk_gb.is_some() {
            notes.push(match self.options.backing {
                Backing::Dir => "disk size is recorded but not enforced: the directory backing store has no quota".to_owned(),
                Backing::Loop => "the disk image keeps the size it was created with".to_owned(),
            });
        }
        Ok(notes)
    }

    async fn read_index(&self, name: &str) -> DriverResult<Vec<IndexedSnapshot>> {
        match tokio::fs::read(self.dir(name).join(SNAPSHOT_INDEX)).await {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| DriverError::Failed(format!("snapshot index: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(DriverError::Failed(format!("snapshot index: {e}"))),
        }
    }

    async fn write_index(&self, name: &str, index: &[IndexedSnapshot]) -> DriverResult<()> {
        let file = self.dir(name).join(SNAPSHOT_INDEX);
        let tmp = file.with_extension("tmp");
        let bytes =
            serde_json::to_vec_pretty(index).map_err(|e| DriverError::Failed(e.to_string()))?;
        tokio::fs::write(&tmp, bytes)
            .await
            .map_err(|e| DriverError::Failed(e.to_string()))?;
        tokio::fs::rename(&tmp, &file)
            .await
            .map_err(|e| DriverError::Failed(e.to_string()))
    }

    /// LXC's own snapshot names, from `lxc-snapshot -L`.
    async fn lxc_snapshots(&self, name: &str) -> DriverResult<Vec<String>> {
        let out = self.run("lxc-snapshot", &["-n", name, "-L"], None).await?;
        if out.code != 0 {
            return Err(failed("lxc-snapshot", &out));
        }
        Ok(out
            .stdout
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| w.starts_with("snap"))
            .map(str::to_owned)
            .collect())
    }

    /// Runs `work` with the container stopped, restarting it afterwards if it was running.
    /// LXC copies the root file system for snapshots and rollbacks, which needs it stopped.
    async fn while_stopped<'a, F, Fut, T>(
        &'a self,
        name: &'a str,
        work: F,
    ) -> DriverResult<(T, Notes)>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = DriverResult<T>>,
    {
        let mut notes = Notes::new();
        let was_running = self.state(name).await? == PowerState::Running;
        if was_running {
            self.stop(name, self.options.stop_grace).await?;
            notes.push("stopped the container, as LXC requires for this".to_owned());
        }
        let result = work().await;
        if was_running {
            self.start(name).await?;
            notes.push("started the container again".to_owned());
        }
        result.map(|value| (value, notes))
    }

    async fn running_pid(&self, name: &str) -> Option<u32> {
        let out = self
            .run("lxc-info", &["-n", name, "-p", "-H"], None)
            .await
            .ok()?;
        out.stdout.trim().parse().ok()
    }
}

/// A tool's process group, killed whole when this is dropped while it is set (the call was
/// dropped before the tool ended).
struct GroupKill(Option<nix::unistd::Pid>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// How many lock files [`LxcDriver::guest_lock`] spreads guests over.
const LOCK_STRIPES: u32 = 64;

/// A guest's lock file: FNV-1a of its name, the same in every process and every build.
fn lock_stripe(name: &str) -> u32 {
    let hash = name.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    hash % LOCK_STRIPES
}

/// Parses `lxc-create` template strings: `busybox`, or `download:DIST:RELEASE:ARCH`.
fn template_args(template: &str) -> DriverResult<Vec<String>> {
    let parts: Vec<&str> = template.split(':').collect();
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match parts.as_slice() {
        [name] if ok(name) => Ok(vec!["-t".into(), (*name).into()]),
        ["download", dist, release, arch] if ok(dist) && ok(release) && ok(arch) => Ok(vec![
            "-t".into(),
            "download".into(),
            "--".into(),
            "-d".into(),
            (*dist).into(),
            "-r".into(),
            (*release).into(),
            "-a".into(),
            (*arch).into(),
        ]),
        _ => Err(DriverError::Conflict(format!(
            "unknown LXC template {template:?}"
        ))),
    }
}

/// Sets a password inside the container from a hash made here: the plain password never
/// enters the container. Works with only `sh`, `awk` and `cat` (busybox included).
const SET_PASSWORD_SCRIPT: &str = r#"IFS= read -r user && IFS= read -r hash || exit 3
touch /etc/shadow
awk -F: -v u="$user" -v h="$hash" 'BEGIN{OFS=":"; found=0} $1==u {$2=h; found=1} {print} END{if(!found) print u, h, "", "0", "99999", "7", "", "", ""}' /etc/shadow > /etc/shadow.vps-new || exit 4
cat /etc/shadow.vps-new > /etc/shadow && rm -f /etc/shadow.vps-new || exit 5
awk -F: -v u="$user" 'BEGIN{OFS=":"} $1==u {$2="x"} {print}' /etc/passwd > /etc/passwd.vps-new || exit 6
cat /etc/passwd.vps-new > /etc/passwd && rm -f /etc/passwd.vps-new || exit 7
"#;

#[async_trait]
impl Hypervisor for LxcDriver {
    async fn probe(&self) -> DriverResult<()> {
        if !self.path.is_dir() {
            return Err(DriverError::Unreachable(anyhow::anyhow!(
                "container path {} is missing",
                self.path.display()
            )));
        }
        let out = self.run("lxc-ls", &[], None).await?;
        if out.code != 0 {
            return Err(DriverError::Unreachable(anyhow::anyhow!(
                "lxc-ls failed: {}",
                out.stderr.trim()
            )));
        }
        Ok(())
    }

    async fn create(&self, spec: &GuestSpec) -> DriverResult<Notes> {
        check_name(&spec.name)?;
        if spec
            .hostname
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        {
            return Err(DriverError::Conflict(format!(
                "invalid hostname {:?}",
                spec.hostname
            )));
        }
        let _held = self.guest_lock(&spec.name).await?;
        let config_file = self.create_marker(&spec.name);
        let cut_short = tokio::fs::metadata(&config_file).await.is_ok();
        if cut_short {
            // No create of it is under way (the lock says so): what is there is half made.
            tracing::warn!(guest = %spec.name, "an earlier create was cut short; making the guest again");
            self.clear_half_made(&spec.name).await?;
        } else if self.exists(&spec.name).await {
            return if tokio::fs::metadata(self.dir(&spec.name).join(TAG_FILE))
                .await
                .is_ok()
            {
                Ok(vec![
                    "the container already existed; nothing to do".to_owned(),
                ])
            } else {
                Err(DriverError::Conflict(format!(
                    "a container named {} exists and is not ours",
                    spec.name
                )))
            };
        }
        let template = template_args(&spec.template)?;
        let idmap = self.options.idmap;
        check_subordinate_ids(idmap)?;
        self.open_path_to_guests()?;
        // The guest's config: the host's defaults (network), a user namespace mapping guest
        // ids into the node's subordinate range, and the distribution's userns settings.
        let mut config = std::fs::read_to_string("/etc/lxc/default.conf").unwrap_or_default();
        if Path::new(USERNS_CONF).is_file() {
            config.push_str(&format!("\nlxc.include = {USERNS_CONF}\n"));
        }
        config.push_str(&format!(
            "lxc.idmap = u 0 {start} {count}\nlxc.idmap = g 0 {start} {count}\n",
            start = idmap.start,
            count = idmap.count
        ));
        tokio::fs::write(&config_file, config)
            .await
            .map_err(|e| DriverError::Failed(format!("writing the guest config: {e}")))?;
        let config_arg = config_file.display().to_string();
        let fssize = format!("{}G", spec.resources.disk_gb.unwrap_or(10).max(1));
        let mut args: Vec<&str> = vec!["-n", &spec.name, "-f", &config_arg];
        if self.options.backing == Backing::Loop {
            args.extend(["-B", "loop", "--fssize", &fssize]);
        }
        args.extend(template.iter().map(String::as_str));
        let out = if self.options.backing == Backing::Loop {
            // Loop images are made one at a time here, and a lost race for a loop device
            // with another process is tried again.
            let _one_at_a_time = self.starting.lock().await;
            let mut attempt = 0;
            loop {
                let out = self.run_grouped("lxc-create", &args).await;
                attempt += 1;
                match out {
                    Ok(out) if out.code != 0 && attempt < 3 => {
                        let _ = self
                            .run("lxc-destroy", &["-n", &spec.name, "-f"], None)
                            .await;
                        tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                    }
                    other => break other,
                }
            }
        } else {
            self.run_grouped("lxc-create", &args).await
        };
        let made = match out {
            Ok(out) if out.code == 0 => self.finish_create(spec, idmap).await,
            Ok(out) => Err(failed("lxc-create", &out)),
            Err(e) => Err(e),
        };
        let made = match made {
            Ok(()) => self.apply_limits(&spec.name, spec.resources, false).await,
            Err(e) => Err(e),
        };
        match made {
            Ok(notes) => {
                // Wholly made: from here on the guest is ours as it stands.
                let _ = tokio::fs::remove_file(&config_file).await;
                tracing::info!(guest = %spec.name, "guest created");
                Ok(notes)
            }
            Err(e) => {
                // Leave nothing half-made behind.
                if self.destroy(&spec.name).await.is_ok() {
                    let _ = tokio::fs::remove_file(&config_file).await;
                }
                Err(e)
            }
        }
    }

    async fn state(&self, name: &str) -> DriverResult<PowerState> {
        self.require(name).await?;
        let out = self
            .run("lxc-info", &["-n", name, "-s", "-H"], None)
            .await?;
        if out.code != 0 {
            return Err(failed("lxc-info", &out));
        }
        Ok(match out.stdout.trim() {
            "RUNNING" => PowerState::Running,
            "STOPPED" => PowerState::Stopped,
            _ => PowerState::Unknown,
        })
    }

    async fn start(&self, name: &str) -> DriverResult<()> {
        if self.state(name).await? == PowerState::Running {
            return Ok(());
        }
        {
            // Held while lxc-start sets up the loop device, not while the guest boots.
            let _one_at_a_time = if self.options.backing == Backing::Loop {
                Some(self.starting.lock().await)
            } else {
                None
            };
            // A start can lose a race for a loop device with another process's: try again.
            let mut attempt = 0;
            loop {
                let out = self.run("lxc-start", &["-n", name], None).await?;
                if out.code == 0 {
                    break;
                }
                attempt += 1;
                if attempt >= 3 || self.state(name).await? != PowerState::Stopped {
                    return Err(failed("lxc-start", &out));
                }
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
        }
        let out = self
            .run("lxc-wait", &["-n", name, "-s", "RUNNING", "-t", "30"], None)
            .await?;
        if out.code != 0 {
            return Err(failed("lxc-wait", &out));
        }
        Ok(())
    }

    async fn stop(&self, name: &str, grace: Duration) -> DriverResult<()> {
        if self.state(name).await? == PowerState::Stopped {
            return Ok(());
        }
        // The halt signal is asked for again every few seconds: an init that has not yet
        // installed its handlers (a container started a moment ago) never sees the first
        // one, as a namespace's init ignores signals it does not handle.
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let round = left.min(STOP_ROUND).as_secs().max(1).to_string();
            let out = self
                .run("lxc-stop", &["-n", name, "--nokill", "-t", &round], None)
                .await?;
            if out.code == 0 || self.state(name).await? == PowerState::Stopped {
                return Ok(());
            }
        }
        let out = self.run("lxc-stop", &["-n", name, "-k"], None).await?;
        if out.code != 0 && self.state(name).await? != PowerState::Stopped {
            return Err(failed("lxc-stop", &out));
        }
        Ok(())
    }

    async fn reboot(&self, name: &str, grace: Duration) -> DriverResult<Notes> {
        self.stop(name, grace).await?;
        self.start(name).await?;
        Ok(vec!["rebooted by a stop and a start".to_owned()])
    }

    async fn delete(&self, name: &str) -> DriverResult<()> {
        check_name(name)?;
        let _held = self.guest_lock(name).await?;
        // A create that was cut short has nothing left to finish once its guest is gone.
        let marker = self.create_marker(name);
        if !self.exists(name).await {
            let _ = tokio::fs::remove_file(&marker).await;
            tracing::info!(
                guest = name,
                "deleting a guest that is not here: nothing to do"
            );
            return Ok(());
        }
        if self.state(name).await? != PowerState::Stopped {
            // `lxc-destroy -s` (with snapshots) does not stop a running container itself.
            let out = self.run("lxc-stop", &["-n", name, "-k"], None).await?;
            if out.code != 0 && self.state(name).await? != PowerState::Stopped {
                return Err(failed("lxc-stop", &out));
            }
        }
        self.destroy(name).await?;
        let _ = tokio::fs::remove_file(&marker).await;
        tracing::info!(guest = name, "guest destroyed");
        Ok(())
    }

    async fn set_password(&self, name: &str, user: &str, password: &str) -> DriverResult<()> {
        let user_ok = !user.is_empty()
            && user.len() <= 32
            && user
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !user_ok || password.is_empty() || password.contains('\n') {
            return Err(DriverError::Conflict("invalid user or password".to_owned()));
        }
        if self.state(name).await? != PowerState::Running {
            return Err(DriverError::Conflict(
                "the server must be running to change its password".to_owned(),
            ));
        }
        let params = sha_crypt::Sha512Params::new(5000)
            .map_err(|_| DriverError::Failed("hash parameters".into()))?;
        let hash = sha_crypt::sha512_simple(password, &params)
            .map_err(|_| DriverError::Failed("hashing the password".into()))?;
        let input = format!("{user}\n{hash}\n");
        let mut args = attach_args(name).to_vec();
        args.extend(["/bin/sh", "-c", SET_PASSWORD_SCRIPT]);
        let out = self
            .run("lxc-attach", &args, Some(input.as_bytes()))
            .await?;
        if out.code != 0 {
            return Err(failed("lxc-attach", &out));
        }
        Ok(())
    }

    async fn resize(&self, name: &str, resources: Resources) -> DriverResult<Notes> {
        let running = self.state(name).await? == PowerState::Running;
        self.apply_limits(name, resources, running).await
    }

    async fn snapshot_create(
        &self,
        name: &str,
        snapshot: &str,
        description: &str,
    ) -> DriverResult<Notes> {
        self.require(name).await?;
        // One snapshot change at a time per container: each reads and rewrites the index.
        let lock = self.lock(name).await;
        let _held = lock.lock().await;
        check_name(snapshot)?;
        let mut index = self.read_index(name).await?;
        if index.iter().any(|s| s.name == snapshot) {
            return Ok(vec![
                "the snapshot already existed; nothing to do".to_owned(),
            ]);
        }
        let before = self.lxc_snapshots(name).await?;
        let (lxc_name, notes) = self
            .while_stopped(name, || async {
                let out = self.run("lxc-snapshot", &["-n", name], None).await?;
                if out.code != 0 {
                    return Err(failed("lxc-snapshot", &out));
                }
                let after = self.lxc_snapshots(name).await?;
                after
                    .into_iter()
                    .find(|s| !before.contains(s))
                    .ok_or_else(|| {
                        DriverError::Failed("lxc-snapshot made no new snapshot".to_owned())
                    })
            })
            .await?;
        index.push(IndexedSnapshot {
            name: snapshot.to_owned(),
            lxc: lxc_name,
            description: description.to_owned(),
            created_at: chrono::Utc::now().timestamp(),
        });
        self.write_index(name, &index).await?;
        Ok(notes)
    }

    async fn snapshot_list(&self, name: &str) -> DriverResult<Vec<SnapshotInfo>> {
        self.require(name).await?;
        Ok(self
            .read_index(name)
            .await?
            .into_iter()
            .map(|s| SnapshotInfo {
                name: s.name,
                description: s.description,
                created_at: s.created_at,
                size_bytes: None,
            })
            .collect())
    }

    async fn snapshot_rollback(&self, name: &str, snapshot: &str) -> DriverResult<Notes> {
        self.require(name).await?;
        // One snapshot change at a time per container: each reads and rewrites the index.
        let lock = self.lock(name).await;
        let _held = lock.lock().await;
        let index = self.read_index(name).await?;
        let entry = index
            .iter()
            .find(|s| s.name == snapshot)
            .ok_or_else(|| DriverError::NotFound(format!("snapshot {snapshot}")))?
            .clone();
        let loop_image = match archive::disk_of(&self.config_text(name).await?)? {
            archive::Disk::Loop(image) => Some(image),
            archive::Disk::Dir(_) => None,
        };
        let ((), notes) = self
            .while_stopped(name, || async {
                if let Some(image) = &loop_image {
                    // LXC keeps a loop guest's snapshots as directories, and its own
                    // rollback would turn the guest into a directory guest: put the
                    // snapshot's files into a fresh image instead (the config stays).
                    let snapshot = self.dir(name).join("snaps").join(&entry.lxc).join("rootfs");
                    return archive::replace_image(image, &self.dir(name), |root| async move {
                        archive::copy_tree(&snapshot, &root).await
                    })
                    .await;
                }
                // Its errors go to its log, not its standard error: have it log there.
                let out = self
                    .run(
                        "lxc-snapshot",
                        &[
                            "-n",
                            name,
                            "-r",
                            &entry.lxc,
                            "--logfile=/dev/stderr",
                            "--logpriority=ERROR",
                        ],
                        None,
                    )
                    .await?;
                if out.code != 0 {
                    return Err(failed("lxc-snapshot", &out));
                }
                Ok(())
            })
            .await?;
        // LXC's own rollback brings back the snapshot's config and drops our tag file.
        tokio::fs::write(self.dir(name).join(TAG_FILE), b"vps\n")
            .await
            .map_err(|e| DriverError::Failed(format!("tagging the container: {e}")))?;
        self.write_index(name, &index).await?;
        Ok(notes)
    }

    async fn snapshot_delete(&self, name: &str, snapshot: &str) -> DriverResult<()> {
        self.require(name).await?;
        // One snapshot change at a time per container: each reads and rewrites the index.
        let lock = self.lock(name).await;
        let _held = lock.lock().await;
        let mut index = self.read_index(name).await?;
        let Some(position) = index.iter().position(|s| s.name == snapshot) else {
            return Ok(());
        };
        let entry = index.remove(position);
        if self.lxc_snapshots(name).await?.contains(&entry.lxc) {
            let out = self
                .run("lxc-snapshot", &["-n", name, "-d", &entry.lxc], None)
                .await?;
            if out.code != 0 {
                return Err(failed("lxc-snapshot", &out));
            }
        }
        self.write_index(name, &index).await
    }

    async fn backup(&self, name: &str, sink: ChunkSink) -> DriverResult<BackupFacts> {
        self.backup_guest(name, sink).await
    }

    async fn restore(
        &self,
        name: &str,
        volume: Option<&str>,
        source: Chunks,
    ) -> DriverResult<Notes> {
        if volume.is_some() {
            return Err(DriverError::Conflict(
                "an LXC node keeps no backups of its own: send the archive".into(),
            ));
        }
        self.restore_guest(name, source).await
    }

    async fn delete_backup(&self, _volume: &str) -> DriverResult<()> {
        Err(DriverError::Conflict(
            "an LXC node keeps no backups of its own".into(),
        ))
    }

    async fn console(&self, name: &str) -> DriverResult<Console> {
        if self.state(name).await? != PowerState::Running {
            return Err(DriverError::Conflict(
                "the server must be running to open its console".into(),
            ));
        }
        // lxc-attach gives the container a terminal when its own standard input is a
        // controlling terminal; util-linux `script` sets one up around it and relays it over
        // plain pipes. Names are validated and the path is quoted, so nothing is interpreted.
        let path = self.path.display().to_string().replace('\'', r"'\''");
        let command = format!(
            "exec lxc-attach -P '{path}' {} /bin/sh -l",
            attach_args(name).join(" ")
        );
        let mut child = tool("script")
            .args(["-q", "-f", "-e", "-c", &command, "/dev/null"])
            .env("TERM", "xterm-256color")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| DriverError::Failed(format!("script (util-linux): {e}")))?;
        let mut writer = child
            .stdin
            .take()
            .ok_or_else(|| DriverError::Failed("no stdin".into()))?;
        let mut reader = child
            .stdout
            .take()
            .ok_or_else(|| DriverError::Failed("no stdout".into()))?;
        let (input, mut typed) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
        let (printed, output) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt as _;
            let mut buffer = vec![0u8; 4096];
            while let Ok(n) = reader.read(&mut buffer).await {
                if n == 0 || printed.send(buffer[..n].to_vec()).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            while let Some(bytes) = typed.recv().await {
                if writer.write_all(&bytes).await.is_err() || writer.flush().await.is_err() {
                    break;
                }
            }
            let _ = child.kill().await;
        });
        Ok(Console { input, output })
    }

    async fn usage(&self) -> DriverResult<Vec<Usage>> {
        // Running containers are found in one scan of /proc (their monitor process is titled
        // `[lxc monitor] PATH NAME` and their init is its child), instead of asking each
        // container's command socket. Any container not found running is asked for its
        // state, so a reading is never "stopped" merely because the scan missed it.
        let names = self.container_names().await?;
        let path_text = self.path.display().to_string();
        let inits = tokio::task::spawn_blocking(move || running_inits(&path_text))
            .await
            .map_err(|e| DriverError::Failed(e.to_string()))?;
        let mut rows: Vec<(String, String, Option<u32>)> = Vec::with_capacity(names.len());
        for name in names {
            if let Some(pid) = inits.get(&name) {
                rows.push((name, "RUNNING".to_owned(), Some(*pid)));
                continue;
            }
            let state = match self.run("lxc-info", &["-n", &name, "-s", "-H"], None).await {
                Ok(out) if out.code == 0 => out.stdout.trim().to_owned(),
                _ => "UNKNOWN".to_owned(),
            };
            let pid = if state == "RUNNING" {
                self.running_pid(&name).await
            } else {
                None
            };
            rows.push((name, state, pid));
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            rows.into_iter()
                .map(|(name, state, pid)| {
                    let running = state == "RUNNING";
                    let pid = pid.filter(|_| running);
                    let (memory_bytes, memory_limit_bytes) = pid.map_or((0, None), memory);
                    let (net_rx_bytes, net_tx_bytes) = pid.map_or((0, 0), network);
                    let (disk_read_bytes, disk_write_bytes) = pid.map_or((0, 0), disk_io);
                    Usage {
                        state: match state.as_str() {
                            "RUNNING" => PowerState::Running,
                            "STOPPED" => PowerState::Stopped,
                            _ => PowerState::Unknown,
                        },
                        cpu_time_ns: pid.map_or(0, cpu_time_ns),
                        cpu_fraction: None,
                        memory_bytes,
                        memory_limit_bytes,
                        disk_bytes: guest_disk_bytes(&path.join(&name)),
                        net_rx_bytes,
                        net_tx_bytes,
                        disk_read_bytes,
                        disk_write_bytes,
                        uptime_secs: pid.map_or(0, uptime_secs),
                        name,
                    }
                })
                .collect()
        })
        .await
        .map_err(|e| DriverError::Failed(e.to_string()))
    }

    async fn set_network_limit(&self, name: &str, mbit: u32) -> DriverResult<Notes> {
        self.limit_network(name, mbit).await
    }
}

impl LxcDriver {
    /// The containers under this node's path (directories with a `config`).
    async fn container_names(&self) -> DriverResult<Vec<String>> {
        let mut entries = match tokio::fs::read_dir(&self.path).await {
            Ok(entries) => entries,
            Err(e) => {
                return Err(DriverError::Unreachable(anyhow::anyhow!(
                    "reading {}: {e}",
                    self.path.display()
                )));
            }
        };
        let mut names = Vec::new();
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            if valid_name(&name)
                && tokio::fs::metadata(entry.path().join("config"))
                    .await
                    .is_ok()
            {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// The init process of a running container (for consoles and tests).
    pub async fn init_pid(&self, name: &str) -> Option<u32> {
        self.running_pid(name).await
    }

    /// Runs a command inside a running container and returns its standard output.
    pub async fn attach_output(&self, name: &str, command: &[&str]) -> DriverResult<String> {
        let mut args = attach_args(name).to_vec();
        args.extend_from_slice(command);
        let out = self.run("lxc-attach", &args, None).await?;
        if out.code != 0 {
            return Err(failed("lxc-attach", &out));
        }
        Ok(out.stdout)
    }

    pub fn container_path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse() {
        assert_eq!(template_args("busybox").expect("ok"), ["-t", "busybox"]);
        assert_eq!(
            template_args("download:debian:bookworm:amd64").expect("ok"),
            [
                "-t", "download", "--", "-d", "debian", "-r", "bookworm", "-a", "amd64"
            ]
        );
        for bad in [
            "",
            "busy box",
            "download:debian",
            "x;rm -rf /",
            "download:a:b:c:d",
        ] {
            assert!(template_args(bad).is_err(), "{bad}");
        }
    }
}
