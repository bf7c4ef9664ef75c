//! A guest's network rate (a plan's traffic throttle): traffic control on the host's end of
//! the guest's veth pair. What leaves that end enters the guest (a token bucket); what
//! arrives at it left the guest (an ingress policer, where the kernel has one).

use tokio::process::Command;

use super::LxcDriver;
use crate::driver::{DriverError, DriverResult, Notes};

impl LxcDriver {
    pub(super) async fn limit_network(&self, name: &str, mbit: u32) -> DriverResult<Notes> {
        let info = self.run("lxc-info", &["-n", name], None).await?;
        if info.code != 0 {
            return Err(DriverError::NotFound(format!("guest {name}")));
        }
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
