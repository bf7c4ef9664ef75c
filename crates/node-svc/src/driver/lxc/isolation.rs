//! What keeps a guest apart from the host: the user namespace (subordinate ids), the
//! container path's permissions, a loop image owned by the mapped root, and no host
//! directories bound in.

use std::path::Path;

use super::{Backing, IdMap, LxcDriver, TAG_FILE, TOOL_PATH, tool};
use crate::driver::{DriverError, DriverResult, GuestSpec};

pub(super) const USERNS_CONF: &str = "/usr/share/lxc/config/userns.conf";

/// Whether a config line binds a host directory into the guest (the busybox template binds
/// the host's library directories read-only).
pub(super) fn host_bind(line: &str) -> bool {
    let Some((key, value)) = line.split_once('=') else {
        return false;
    };
    key.trim() == "lxc.mount.entry" && value.trim_start().starts_with('/')
}

/// Whether root has the node's subordinate id range in /etc/subuid and /etc/subgid (LXC
/// maps guest ids with it through newuidmap/newgidmap).
pub(super) fn check_subordinate_ids(idmap: IdMap) -> DriverResult<()> {
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let covered = text.lines().any(|line| {
            let mut parts = line.trim().split(':');
            let (Some(owner), Some(start), Some(count)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return false;
            };
            let (Ok(start), Ok(count)) = (start.parse::<u64>(), count.parse::<u64>()) else {
                return false;
            };
            (owner == "root" || owner == "0")
                && start <= u64::from(idmap.start)
                && u64::from(idmap.start) + u64::from(idmap.count) <= start + count
        });
        if !covered {
            return Err(DriverError::Failed(format!(
                "root has no subordinate ids {start}-{end} in {file}; add the line root:{start}:{count}",
                start = idmap.start,
                end = u64::from(idmap.start) + u64::from(idmap.count) - 1,
                count = idmap.count
            )));
        }
    }
    Ok(())
}

/// Whether the host's busybox is statically linked (an ELF without an interpreter), so a
/// guest made from it needs none of the host's libraries.
pub(super) fn static_busybox() -> bool {
    TOOL_PATH
        .split(':')
        .map(|dir| Path::new(dir).join("busybox"))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::read(p).ok())
        .is_some_and(|elf| elf_without_interpreter(&elf))
}

/// Reads an ELF64 little-endian program header table and looks for `PT_INTERP`.
pub(super) fn elf_without_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let field = |at: usize, len: usize| -> Option<u64> {
        let bytes = elf.get(at..at + len)?;
        Some(
            bytes
                .iter()
                .rev()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
        )
    };
    if elf.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) =
        (field(0x20, 8), field(0x36, 2), field(0x38, 2))
    else {
        return false;
    };
    (0..phnum).all(|i| {
        usize::try_from(phoff + i * phentsize)
            .ok()
            .and_then(|at| field(at, 4))
            .is_some_and(|kind| kind != u64::from(PT_INTERP))
    })
}

impl LxcDriver {
    /// The guests' mapped root must be able to reach its root filesystem: the container
    /// path is opened to traversal (not listing), and every directory above it must allow
    /// traversal already.
    pub(super) fn open_path_to_guests(&self) -> DriverResult<()> {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::create_dir_all(&self.path)
            .map_err(|e| DriverError::Failed(format!("creating the container path: {e}")))?;
        let meta = std::fs::metadata(&self.path)
            .map_err(|e| DriverError::Failed(format!("container path: {e}")))?;
        if meta.permissions().mode() & 0o001 == 0 {
            let mode = (meta.permissions().mode() & 0o7777) | 0o011;
            std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| DriverError::Failed(format!("opening the container path: {e}")))?;
        }
        for ancestor in self.path.ancestors().skip(1) {
            let Ok(meta) = std::fs::metadata(ancestor) else {
                continue;
            };
            if meta.permissions().mode() & 0o001 == 0 {
                return Err(DriverError::Failed(format!(
                    "unprivileged guests cannot reach {}: {} is closed to other users (chmod o+x, or put the containers elsewhere)",
                    self.path.display(),
                    ancestor.display()
                )));
            }
        }
        Ok(())
    }

    /// After `lxc-create`: the tag, a root filesystem owned by the mapped root, nothing of
    /// the host's filesystem bound in, the hostname and the limits.
    pub(super) async fn finish_create(&self, spec: &GuestSpec, idmap: IdMap) -> DriverResult<()> {
        let dir = self.dir(&spec.name);
        tokio::fs::write(dir.join(TAG_FILE), b"vps\n")
            .await
            .map_err(|e| DriverError::Failed(format!("tagging the container: {e}")))?;
        if self.options.backing == Backing::Loop {
            self.own_loop_root(&spec.name, idmap).await?;
            // LXC mounts an image under its own library directory by default, which the
            // template's read-only bind of the host's /usr/lib would cover: mount it beside
            // the container instead.
            let mount_point = dir.join("rootfs.mount");
            tokio::fs::create_dir_all(&mount_point)
                .await
                .map_err(|e| DriverError::Failed(format!("rootfs mount point: {e}")))?;
            self.config_set(
                &spec.name,
                "lxc.rootfs.mount",
                &mount_point.display().to_string(),
            )
            .await?;
        }
        if spec.template == "busybox" && static_busybox() {
            // A static busybox needs none of the host's libraries the template binds in.
            self.drop_host_binds(&spec.name).await?;
        }
        if !spec.hostname.is_empty() {
            self.config_set(&spec.name, "lxc.uts.name", &spec.hostname)
                .await?;
        }
        Ok(())
    }

    /// mkfs leaves an image's root directory owned by host root, which the guest's root
    /// (mapped) could not write to.
    pub(super) async fn own_loop_root(&self, name: &str, idmap: IdMap) -> DriverResult<()> {
        let image = self.dir(name).join("rootdev");
        let mount_point = self.dir(name).join(".own-root");
        tokio::fs::create_dir_all(&mount_point)
            .await
            .map_err(|e| DriverError::Failed(format!("mount point: {e}")))?;
        let image_arg = image.display().to_string();
        let mount_arg = mount_point.display().to_string();
        let mounted = tool("mount")
            .args(["-o", "loop", &image_arg, &mount_arg])
            .output()
            .await
            .map_err(|e| DriverError::Failed(format!("mount: {e}")))?;
        if !mounted.status.success() {
            let _ = tokio::fs::remove_dir(&mount_point).await;
            return Err(DriverError::Failed(format!(
                "mounting the disk image failed: {}",
                String::from_utf8_lossy(&mounted.stderr).trim()
            )));
        }
        let owned = ["", "lost+found"].iter().try_for_each(|sub| {
            let path = mount_point.join(sub);
            if path.exists() {
                std::os::unix::fs::chown(&path, Some(idmap.start), Some(idmap.start))
            } else {
                Ok(())
            }
        });
        let unmounted = tool("umount").arg(&mount_arg).output().await;
        let _ = tokio::fs::remove_dir(&mount_point).await;
        owned.map_err(|e| DriverError::Failed(format!("chown of the disk image's root: {e}")))?;
        match unmounted {
            Ok(out) if out.status.success() => Ok(()),
            _ => Err(DriverError::Failed(
                "unmounting the disk image failed".into(),
            )),
        }
    }

    /// Removes the template's read-only binds of the host's library directories.
    pub(super) async fn drop_host_binds(&self, name: &str) -> DriverResult<()> {
        let lock = self.lock(name).await;
        let _held = lock.lock().await;
        let file = self.dir(name).join("config");
        let text = tokio::fs::read_to_string(&file)
            .await
            .map_err(|e| DriverError::Failed(format!("reading config: {e}")))?;
        let kept: Vec<&str> = text.lines().filter(|line| !host_bind(line)).collect();
        tokio::fs::write(&file, kept.join("\n") + "\n")
            .await
            .map_err(|e| DriverError::Failed(format!("writing config: {e}")))
    }
}
