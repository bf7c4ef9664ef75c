//! Backups of LXC guests: the root file system as a `tar` stream compressed with `zstd`
//! (numeric owners, ACLs, extended attributes and so file capabilities kept), with the
//! guest's config and id map alongside as facts.
//!
//! Where the files are read from: a running guest is frozen and read through its init's
//! view of its own root (`/proc/<pid>/root`, staying on that one file system); a stopped
//! guest is read from its directory, or from its loop image mounted read-only. A restore
//! unpacks beside the current disk (a new directory, or a new image of the same size) and
//! swaps it in only once the whole archive has unpacked.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{LxcDriver, failed, tool};
use crate::driver::{
    BackupFacts, ChunkSink, Chunks, DriverError, DriverResult, Hypervisor as _, Notes, PowerState,
};

/// The archive's format, as its facts name it.
pub const FORMAT: &str = "tar+zstd";

/// What `tar` keeps besides the files themselves, for both directions.
const TAR_KEEP: [&str; 4] = [
    "--numeric-owner",
    "--acls",
    "--xattrs",
    "--xattrs-include=*",
];

/// Bytes per message of an archive's stream (gRPC allows 4 MiB).
const CHUNK: usize = 1024 * 1024;

/// Where a guest's disk lives, from its config's `lxc.rootfs.path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Disk {
    Dir(PathBuf),
    Loop(PathBuf),
}

pub(super) fn disk_of(config: &str) -> DriverResult<Disk> {
    let raw = config
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == "lxc.rootfs.path")
        .map(|(_, v)| v.trim().to_owned())
        .ok_or_else(|| {
            DriverError::Failed("the guest's config names no root file system".into())
        })?;
    match raw.split_once(':') {
        Some(("loop", path)) => Ok(Disk::Loop(PathBuf::from(path))),
        Some(("dir", path)) => Ok(Disk::Dir(PathBuf::from(path))),
        None if raw.starts_with('/') => Ok(Disk::Dir(PathBuf::from(raw))),
        _ => Err(DriverError::Failed(format!(
            "backups do not support the root file system {raw:?}"
        ))),
    }
}

fn id_map_of(config: &str) -> Vec<String> {
    config
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == "lxc.idmap")
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

async fn command_ok(program: &str, args: &[&str]) -> DriverResult<()> {
    let out = tool(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| DriverError::Failed(format!("cannot run {program}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(failed(
            program,
            &super::Output {
                code: out.status.code().unwrap_or(-1),
                stdout: String::new(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
        ))
    }
}

/// A loop image mounted at a directory of its own for as long as this lives (unmounted
/// explicitly; on a panic path, lazily in the background).
struct Mounted {
    at: Option<tempfile::TempDir>,
}

impl Mounted {
    async fn image(image: &Path, read_only: bool, beside: &Path) -> DriverResult<Self> {
        let at = tempfile::Builder::new()
            .prefix(".mnt-")
            .tempdir_in(beside)
            .map_err(|e| DriverError::Failed(format!("a mount point: {e}")))?;
        let options = if read_only { "loop,ro" } else { "loop" };
        let target = at.path().display().to_string();
        command_ok(
            "mount",
            &["-o", options, &image.display().to_string(), &target],
        )
        .await?;
        Ok(Self { at: Some(at) })
    }

    fn path(&self) -> &Path {
        self.at
            .as_ref()
            .map_or(Path::new("/nonexistent"), |d| d.path())
    }

    async fn unmount(mut self) -> DriverResult<()> {
        if let Some(at) = self.at.take() {
            command_ok("umount", &[&at.path().display().to_string()]).await?;
            drop(at);
        }
        Ok(())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(at) = self.at.take() {
            let target = at.keep();
            tokio::spawn(async move {
                let _ = command_ok("umount", &["-l", &target.display().to_string()]).await;
                let _ = tokio::fs::remove_dir(&target).await;
            });
        }
    }
}

/// Streams `tar -c` of `root` (this one file system) through zstd into `sink`. `live`: the
/// guest is frozen, and only the kernel's own file systems mounted in it (whose mount
/// points tar sees change) may change meanwhile, so tar's "a file changed as we read it"
/// (exit 1) is not a failure.
async fn pack(root: &Path, sink: &ChunkSink, live: bool) -> DriverResult<u64> {
    let root_arg = root.display().to_string();
    let mut args = vec!["--create", "--file=-", "--one-file-system", "--sparse"];
    if live {
        args.push("--warning=no-file-changed");
    }
    args.extend(TAR_KEEP);
    args.extend(["-I", "zstd -q -T0 -3", "-C", &root_arg, "."]);
    let mut child = tool("tar")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| DriverError::Failed(format!("cannot run tar: {e}")))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| DriverError::Failed("tar: no stdout".into()))?;
    let mut stderr = child
        .stderr
        .take()
        .ok_or_else(|| DriverError::Failed("tar: no stderr".into()))?;
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut total = 0u64;
    loop {
        let mut buffer = bytes::BytesMut::with_capacity(CHUNK);
        while buffer.len() < CHUNK {
            let read = stdout
                .read_buf(&mut buffer)
                .await
                .map_err(|e| DriverError::Failed(format!("reading tar's output: {e}")))?;
            if read == 0 {
                break;
            }
        }
        if buffer.is_empty() {
            break;
        }
        total += buffer.len() as u64;
        if sink.send(buffer.freeze()).await.is_err() {
            // The receiver is gone (the caller hung up): stop making the archive.
            let _ = child.kill().await;
            return Err(DriverError::Failed("the backup's reader went away".into()));
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| DriverError::Failed(format!("tar: {e}")))?;
    let stderr = errors.await.unwrap_or_default();
    // Exit 1 is "some files changed as we read them".
    if !(status.success() || (live && status.code() == Some(1))) {
        return Err(failed(
            "tar",
            &super::Output {
                code: status.code().unwrap_or(-1),
                stdout: String::new(),
                stderr,
            },
        ));
    }
    Ok(total)
}

/// Unpacks the archive `source` yields into `into` (an empty directory).
async fn unpack(into: &Path, mut source: Chunks) -> DriverResult<()> {
    let into_arg = into.display().to_string();
    let mut args = vec!["--extract", "--file=-", "--preserve-permissions"];
    args.extend(TAR_KEEP);
    args.extend(["-I", "zstd -q -d", "-C", &into_arg]);
    let mut child = tool("tar")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| DriverError::Failed(format!("cannot run tar: {e}")))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| DriverError::Failed("tar: no stdin".into()))?;
    let mut stderr = child
        .stderr
        .take()
        .ok_or_else(|| DriverError::Failed("tar: no stderr".into()))?;
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut write_error = None;
    while let Some(chunk) = source.recv().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                // The archive did not arrive whole: stop tar before it finishes.
                let _ = child.kill().await;
                return Err(DriverError::Failed(format!(
                    "the archive was cut short: {e}"
                )));
            }
        };
        if let Err(e) = stdin.write_all(&chunk).await {
            write_error = Some(e.to_string());
            break;
        }
    }
    drop(stdin);
    let status = child
        .wait()
        .await
        .map_err(|e| DriverError::Failed(format!("tar: {e}")))?;
    let stderr = errors.await.unwrap_or_default();
    if !status.success() {
        return Err(failed(
            "tar",
            &super::Output {
                code: status.code().unwrap_or(-1),
                stdout: String::new(),
                stderr,
            },
        ));
    }
    if let Some(e) = write_error {
        return Err(DriverError::Failed(format!("feeding tar: {e}")));
    }
    Ok(())
}

impl LxcDriver {
    pub(super) async fn config_text(&self, name: &str) -> DriverResult<String> {
        tokio::fs::read_to_string(self.dir(name).join("config"))
            .await
            .map_err(|e| DriverError::Failed(format!("reading the guest's config: {e}")))
    }

    pub(super) async fn backup_guest(
        &self,
        name: &str,
        sink: ChunkSink,
    ) -> DriverResult<BackupFacts> {
        self.require(name).await?;
        // Not while a snapshot or rollback rewrites the guest.
        let lock = self.lock(name).await;
        let _held = lock.lock().await;
        let config = self.config_text(name).await?;
        let disk = disk_of(&config)?;
        let facts = |was_running| BackupFacts {
            format: FORMAT.to_owned(),
            volume: None,
            id_map: id_map_of(&config),
            was_running,
            config: config.clone(),
        };
        match self.state(name).await? {
            PowerState::Running => {
                let pid = self.running_pid(name).await.ok_or_else(|| {
                    DriverError::Conflict("the guest is running but has no init".into())
                })?;
                let frozen = self.run("lxc-freeze", &["-n", name], None).await?;
                if frozen.code != 0 {
                    return Err(failed("lxc-freeze", &frozen));
                }
                let root = PathBuf::from(format!("/proc/{pid}/root"));
                let packed = pack(&root, &sink, true).await;
                let thawed = self.run("lxc-unfreeze", &["-n", name], None).await;
                match thawed {
                    Ok(out) if out.code == 0 => {}
                    Ok(out) => return Err(failed("lxc-unfreeze", &out)),
                    Err(e) => return Err(e),
                }
                packed?;
                Ok(facts(true))
            }
            PowerState::Stopped => {
                match &disk {
                    Disk::Dir(root) => {
                        pack(root, &sink, false).await?;
                    }
                    Disk::Loop(image) => {
                        let mounted = Mounted::image(image, true, &self.dir(name)).await?;
                        let packed = pack(mounted.path(), &sink, false).await;
                        mounted.unmount().await?;
                        packed?;
                    }
                }
                Ok(facts(false))
            }
            PowerState::Unknown => Err(DriverError::Conflict(
                "the guest is neither running nor stopped".into(),
            )),
        }
    }

    pub(super) async fn restore_guest(&self, name: &str, source: Chunks) -> DriverResult<Notes> {
        self.require(name).await?;
        let lock = self.lock(name).await;
        let _held = lock.lock().await;
        if self.state(name).await? != PowerState::Stopped {
            return Err(DriverError::Conflict(
                "the guest must be stopped for a restore".into(),
            ));
        }
        let config = self.config_text(name).await?;
        let dir = self.dir(name);
        match disk_of(&config)? {
            Disk::Dir(root) => {
                let fresh = dir.join("rootfs.restoring");
                let _ = tokio::fs::remove_dir_all(&fresh).await;
                tokio::fs::create_dir(&fresh)
                    .await
                    .map_err(|e| DriverError::Failed(format!("{}: {e}", fresh.display())))?;
                if let Err(e) = unpack(&fresh, source).await {
                    let _ = tokio::fs::remove_dir_all(&fresh).await;
                    return Err(e);
                }
                // The root directory's own owner and mode come from the archive's `.`.
                let old = dir.join("rootfs.old");
                let _ = tokio::fs::remove_dir_all(&old).await;
                rename(&root, &old).await?;
                rename(&fresh, &root).await?;
                let _ = tokio::fs::remove_dir_all(&old).await;
            }
            Disk::Loop(image) => {
                replace_image(
                    &image,
                    &dir,
                    |root| async move { unpack(&root, source).await },
                )
                .await?;
            }
        }
        Ok(vec![
            "the guest's disk was replaced by the archive's; its config was kept".to_owned(),
        ])
    }
}

/// Replaces the loop image `image` with a new one of the same size, filled by `fill`
/// (given where the new image is mounted); the old one stays until `fill` has succeeded.
pub(super) async fn replace_image<F, Fut>(image: &Path, beside: &Path, fill: F) -> DriverResult<()>
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: std::future::Future<Output = DriverResult<()>>,
{
    let size = tokio::fs::metadata(image)
        .await
        .map_err(|e| DriverError::Failed(format!("{}: {e}", image.display())))?
        .len();
    let fresh = image.with_extension("restoring");
    let _ = tokio::fs::remove_file(&fresh).await;
    let file = tokio::fs::File::create(&fresh)
        .await
        .map_err(|e| DriverError::Failed(format!("{}: {e}", fresh.display())))?;
    file.set_len(size)
        .await
        .map_err(|e| DriverError::Failed(format!("{}: {e}", fresh.display())))?;
    drop(file);
    let made = async {
        command_ok("mkfs.ext4", &["-q", "-F", &fresh.display().to_string()]).await?;
        let mounted = Mounted::image(&fresh, false, beside).await?;
        let filled = fill(mounted.path().to_owned()).await;
        mounted.unmount().await?;
        filled
    };
    if let Err(e) = made.await {
        let _ = tokio::fs::remove_file(&fresh).await;
        return Err(e);
    }
    rename(&fresh, image).await
}

/// Copies the tree at `from` into `into`, keeping owners, modes, links, ACLs and extended
/// attributes.
pub(super) async fn copy_tree(from: &Path, into: &Path) -> DriverResult<()> {
    let source = format!("{}/.", from.display());
    command_ok(
        "cp",
        &[
            "-a",
            "--sparse=always",
            &source,
            &into.display().to_string(),
        ],
    )
    .await
}

async fn rename(from: &Path, to: &Path) -> DriverResult<()> {
    tokio::fs::rename(from, to).await.map_err(|e| {
        DriverError::Failed(format!(
            "moving {} to {}: {e}",
            from.display(),
            to.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disks_from_configs() {
        assert_eq!(
            disk_of("lxc.rootfs.path = loop:/var/lib/vps/lxc/vps-1/rootdev\n").unwrap(),
            Disk::Loop(PathBuf::from("/var/lib/vps/lxc/vps-1/rootdev"))
        );
        assert_eq!(
            disk_of("lxc.rootfs.path = dir:/x/rootfs").unwrap(),
            Disk::Dir(PathBuf::from("/x/rootfs"))
        );
        assert_eq!(
            disk_of("lxc.rootfs.path = /x/rootfs").unwrap(),
            Disk::Dir(PathBuf::from("/x/rootfs"))
        );
        assert!(disk_of("lxc.rootfs.path = zfs:tank/x").is_err());
        assert!(disk_of("lxc.uts.name = x").is_err());
    }

    #[test]
    fn id_maps_from_configs() {
        let config = "lxc.idmap = u 0 1000000 65536\nlxc.idmap = g 0 1000000 65536\nlxc.x = y\n";
        assert_eq!(
            id_map_of(config),
            vec!["u 0 1000000 65536", "g 0 1000000 65536"]
        );
    }
}
