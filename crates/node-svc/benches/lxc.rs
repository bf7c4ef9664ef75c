//! Measures the `lxc` driver against the raw `lxc-*` commands it runs, on this machine:
//! median times of create, start, stop, snapshot, rollback and delete over several busybox
//! containers, and one usage pass over 50 containers. Needs root, LXC and lxc-net.
//! Run: `cargo bench -p node-svc --bench lxc` (ROUNDS, default 7; FLEET, default 50).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use node_svc::driver::lxc::LxcDriver;
use node_svc::driver::{GuestSpec, Hypervisor, Resources};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn raw(path: &Path, args: &[&str]) -> Duration {
    let started = Instant::now();
    let out = Command::new(args[0])
        .arg("-P")
        .arg(path)
        .args(&args[1..])
        .output()
        .expect("lxc tool");
    assert!(
        out.status.success() || args[0] == "lxc-stop",
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let fleet: usize = std::env::var("FLEET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let dir = tempfile::Builder::new()
        .prefix("vps-bench")
        .tempdir_in("/var/tmp")
        .expect("dir");
    let path = dir.path().to_owned();
    // busybox ignores the halt signal, so stops wait out their grace; both sides use the
    // same one second to compare like with like.
    let driver = LxcDriver::new(&path).with_internal_grace(Duration::from_secs(1));
    let grace = Duration::from_secs(1);
    let spec = |name: &str| GuestSpec {
        name: name.to_owned(),
        template: "busybox".to_owned(),
        hostname: String::new(),
        resources: Resources::default(),
        root_password: None,
    };

    let names = ["create", "start", "stop", "snapshot", "rollback", "delete"];
    let mut ours: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    let mut theirs: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    for round in 0..rounds {
        let name = format!("bench-{round}");
        let t = Instant::now();
        driver.create(&spec(&name)).await.expect("create");
        ours[0].push(t.elapsed());
        let t = Instant::now();
        driver.start(&name).await.expect("start");
        ours[1].push(t.elapsed());
        let t = Instant::now();
        driver.stop(&name, grace).await.expect("stop");
        ours[2].push(t.elapsed());
        let t = Instant::now();
        driver
            .snapshot_create(&name, "s1", "")
            .await
            .expect("snapshot");
        ours[3].push(t.elapsed());
        let t = Instant::now();
        driver
            .snapshot_rollback(&name, "s1")
            .await
            .expect("rollback");
        ours[4].push(t.elapsed());
        let t = Instant::now();
        driver.delete(&name).await.expect("delete");
        ours[5].push(t.elapsed());

        let raw_name = format!("raw-{round}");
        let n = raw_name.as_str();
        theirs[0].push(raw(&path, &["lxc-create", "-n", n, "-t", "busybox"]));
        theirs[1].push(
            raw(&path, &["lxc-start", "-n", n])
                + raw(&path, &["lxc-wait", "-n", n, "-s", "RUNNING", "-t", "30"]),
        );
        theirs[2].push(raw(&path, &["lxc-stop", "-n", n, "-t", "1"]));
        theirs[3].push(raw(&path, &["lxc-snapshot", "-n", n]));
        theirs[4].push(raw(&path, &["lxc-snapshot", "-n", n, "-r", "snap0"]));
        theirs[5].push(raw(&path, &["lxc-destroy", "-n", n, "-f", "-s"]));
    }

    println!("lxc driver vs raw lxc-* commands, busybox template, median of {rounds} rounds");
    println!(
        "{:<10} {:>12} {:>12} {:>10}",
        "operation", "driver", "raw", "overhead"
    );
    for (i, op) in names.iter().enumerate() {
        let (a, b) = (median(ours[i].clone()), median(theirs[i].clone()));
        println!(
            "{op:<10} {:>12} {:>12} {:>10}",
            ms(a),
            ms(b),
            ms(a.saturating_sub(b))
        );
    }

    for i in 0..fleet {
        let name = format!("fleet-{i}");
        driver.create(&spec(&name)).await.expect("create");
        driver.start(&name).await.expect("start");
    }
    let mut passes = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let usage = driver.usage().await.expect("usage");
        passes.push(t.elapsed());
        assert_eq!(usage.len(), fleet);
    }
    let mut infos = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        for i in 0..fleet {
            let out = Command::new("lxc-info")
                .arg("-P")
                .arg(&path)
                .args(["-n", &format!("fleet-{i}"), "-S", "-H"])
                .output()
                .expect("lxc-info");
            assert!(out.status.success());
        }
        infos.push(t.elapsed());
    }
    println!(
        "usage pass over {fleet} running containers: driver {} (one /proc scan plus cgroup reads); raw lxc-info -S for each: {}",
        ms(median(passes)),
        ms(median(infos))
    );
    for i in 0..fleet {
        driver.delete(&format!("fleet-{i}")).await.expect("delete");
    }
}
