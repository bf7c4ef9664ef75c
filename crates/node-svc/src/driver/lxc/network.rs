//! A guest's network rate (a plan's traffic throttle): traffic control on the host's end of
//! the guest's veth pair. What leaves that end enters the guest (a token bucket); what
//! arrives at it left the guest (an ingress policer, where the kernel has one). The token
//! bucket is set again by the guest's `script.up` each time it starts.

use tokio::process::Command;

use super::LxcDriver;
use crate::driver::{DriverError, DriverResult, Notes};

impl LxcDriver {
    pub(super) async fn limit_network(&self, name: &str, mbit: u32) -> DriverResult<Notes> {
        let info = self.run("lxc-info", &["-n", name], None).await?;
        if info.code != 0 {
            return Err(DriverError::NotFound(format!("guest {name}")));
        }
        self.keep_limit(name, mbit).await?;
        let links: Vec<String> = info
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("Link:"))
            .map(|l| l.trim().to_owned())
            .filter(|l| {
                !l.is_empty()
                    && l.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
            .collect();
        if links.is_empty() {
            return Ok(vec![
                "the guest is not running; the limit applies to its network only while it runs"
                    .to_owned(),
            ]);
        }
        let mut notes = Notes::new();
        for link in &links {
            // Whatever was there goes first; a missing qdisc is not an error.
            let _ = tc(&["qdisc", "del", "dev", link, "root"]).await;
            let _ = tc(&["qdisc", "del", "dev", link, "ingress"]).await;
            if mbit == 0 {
                continue;
            }
            let rate = format!("{mbit}mbit");
            tc(&[
                "qdisc", "add", "dev", link, "root", "tbf", "rate", &rate, "burst", "256kb",
                "latency", "50ms",
            ])
            .await?;
            // What the guest sends arrives on this end: police it where the kernel can.
            tc(&["qdisc", "add", "dev", link, "handle", "ffff:", "ingress"]).await?;
            let policed = tc(&[
                "filter", "add", "dev", link, "parent", "ffff:", "protocol", "all", "prio", "1",
                "u32", "match", "u32", "0", "0", "police", "rate", &rate, "burst", "256k", "drop",
                "flowid", ":1",
            ])
            .await;
            if let Err(error) = policed {
                let _ = tc(&["qdisc", "del", "dev", link, "ingress"]).await;
                tracing::warn!(link, error = %error, "this kernel cannot police ingress traffic");
                notes.push(
                    "only traffic towards the guest is limited: the host's kernel has no policing action".to_owned(),
                );
            }
        }
        Ok(notes)
    }
}

impl LxcDriver {
    /// Keeps the limit across the guest's restarts: LXC runs the guest's `script.up` with
    /// the host-side device whenever its network comes up, and the script sets the rate
    /// again (it never fails a start). A limit of 0 removes both.
    async fn keep_limit(&self, name: &str, mbit: u32) -> DriverResult<()> {
        const KEY: &str = "lxc.net.0.script.up";
        let script = self.dir(name).join("net-limit");
        if mbit == 0 {
            self.config_edit(name, KEY, None).await?;
            let _ = tokio::fs::remove_file(&script).await;
            return Ok(());
        }
        let config = self.config_text(name).await?;
        if !config.lines().any(|l| {
            l.split_once('=')
                .is_some_and(|(k, v)| k.trim() == "lxc.net.0.type" && v.trim() == "veth")
        }) {
            return Ok(());
        }
        // LXC passes NAME net up veth [LINK] HOST-DEVICE: the device is the last argument.
        let body = format!(
            "#!/bin/sh\n# The plan's traffic throttle, set by the control plane whenever this guest's\n\
             # network comes up.\n\
             PATH=/usr/sbin:/usr/bin:/sbin:/bin\n\
             for dev; do :; done\n\
             tc qdisc replace dev \"$dev\" root tbf rate {mbit}mbit burst 256kb latency 50ms\n\
             exit 0\n"
        );
        let write = async {
            use std::os::unix::fs::PermissionsExt as _;
            tokio::fs::write(&script, body).await?;
            tokio::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).await
        };
        write
            .await
            .map_err(|e| DriverError::Failed(format!("writing {}: {e}", script.display())))?;
        self.config_set(name, KEY, &script.display().to_string())
            .await
    }
}

async fn tc(args: &[&str]) -> DriverResult<()> {
    let out = Command::new("tc")
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| DriverError::Failed(format!("cannot run tc: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(DriverError::Failed(format!(
            "tc {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
