//! One poll cycle over 10,000 servers on 100 nodes, as monitor-svc runs it after the
//! nodes have answered: each node's recorded `/cluster/resources` answer (100 guests, in
//! Proxmox VE's JSON) is parsed, matched with its placements, turned into samples, traffic
//! and alert changes, and written to a SQLite sample store in one transaction per node.
//! Prints the CPU time and wall time per cycle, rows written per second, and (with
//! `NATS_URL` set) the time to publish the cycle's 10,000 samples.
//!
//! `cargo bench -p monitor-svc --bench cycle` (ROUNDS, default 5).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use monitor_svc::app::cycle::{compute, rules};
use monitor_svc::store;
use proto::node::v1 as nodepb;
use proto::server::v1 as serverpb;
use serde_json::{Value, json};

const NODES: i64 = 100;
const PER_NODE: i64 = 100;

/// This process's CPU time so far (user + system), from /proc.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rfind(')').map_or("", |i| &stat[i + 2..]);
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}

/// A node's `/cluster/resources?type=vm` answer at `round`: counters grow every round.
fn resources(node: i64, round: u64) -> String {
    let entries: Vec<Value> = (0..PER_NODE)
        .map(|i| {
            let vmid = 100 + i;
            let grow = round * 1_000_000 + (i as u64) * 1000;
            json!({
                "id": format!("lxc/{vmid}"), "type": "lxc", "vmid": vmid, "node": format!("pve{node}"),
                "name": format!("g{node}-{i}"), "status": "running", "tags": format!("vps-g{node}-{i}"),
                "cpu": 0.05 + (i % 10) as f64 / 100.0, "maxcpu": 2, "mem": 268_435_456u64, "maxmem": 1_073_741_824u64,
                "disk": 2_147_483_648u64, "maxdisk": 21_474_836_480u64, "netin": grow * 3, "netout": grow,
                "diskread": grow / 2, "diskwrite": grow / 4, "uptime": 10_000 + round * 30, "template": 0,
            })
        })
        .collect();
    json!({ "data": entries }).to_string()
}

/// What node-svc's Proxmox driver makes of the answer.
fn parse(body: &str) -> Vec<nodepb::GuestUsage> {
    let doc: Value = serde_json::from_str(body).expect("JSON");
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    doc["data"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| {
                    let name = e["tags"].as_str()?.strip_prefix("vps-")?.to_owned();
                    Some(nodepb::GuestUsage {
                        name,
                        state: nodepb::PowerState::Running.into(),
                        cpu_time_ns: 0,
                        memory_bytes: n(&e["mem"]),
                        memory_limit_bytes: n(&e["maxmem"]),
                        disk_bytes: n(&e["disk"]),
                        net_rx_bytes: n(&e["netin"]),
                        net_tx_bytes: n(&e["netout"]),
                        uptime_secs: n(&e["uptime"]),
                        cpu_fraction: e["cpu"].as_f64().unwrap_or(0.0),
                        disk_read_bytes: n(&e["diskread"]),
                        disk_write_bytes: n(&e["diskwrite"]),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn placements(node: i64) -> Vec<serverpb::Placement> {
    (0..PER_NODE)
        .map(|i| serverpb::Placement {
            server_id: node * PER_NODE + i + 1,
            owner_id: 2 + i % 50,
            guest_name: format!("g{node}-{i}"),
            cores: 2,
            memory_mb: 1024,
            disk_gb: 20,
            name: format!("server-{node}-{i}"),
            status: serverpb::ServerStatus::Running.into(),
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let rounds: u64 = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let dir = tempfile::tempdir()?;
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("monitor.db").display()
        );
        let db = platform::db::connect_and_migrate::<store::migration::Migrator>(&url, 4).await?;
        let rules = rules(&monitor_svc::AlertConfig::default());
        let placements: HashMap<i64, Vec<serverpb::Placement>> =
            (1..=NODES).map(|n| (n, placements(n))).collect();
        let nats = match std::env::var("NATS_URL") {
            Ok(url) => Some(async_nats::connect(url).await?),
            Err(_) => None,
        };
        let start_ms = chrono::Utc::now().timestamp_millis() - 3_600_000;
        println!(
            "monitor cycle: {NODES} nodes x {PER_NODE} servers, {rounds} rounds (round 0 warms up)"
        );
        let mut cpu_per_cycle = Vec::new();
        let mut wall_per_cycle = Vec::new();
        let mut compute_cpu = Vec::new();
        let mut rows_per_sec = Vec::new();
        let mut publish_ms = Vec::new();
        for round in 0..=rounds {
            // The answers arrive as bytes, as node-svc would receive them.
            let bodies: Vec<(i64, String)> =
                (1..=NODES).map(|n| (n, resources(n, round))).collect();
            let now_ms = start_ms + i64::try_from(round).unwrap_or(0) * 30_000;
            let month = monitor_svc::domain::traffic::month_of(now_ms);
            let (cpu0, wall0) = (cpu_time(), Instant::now());
            let mut compute_time = Duration::ZERO;
            let mut rows = 0usize;
            let mut samples = Vec::with_capacity((NODES * PER_NODE) as usize);
            for (node, body) in &bodies {
                let servers = &placements[node];
                let ids: Vec<i64> = servers.iter().map(|s| s.server_id).collect();
                let known = store::known(&db, &ids, &month).await?;
                let c0 = cpu_time();
                let guests = parse(body);
                let cycle = compute(*node, now_ms, servers, &guests, known, &rules)?;
                compute_time += cpu_time().saturating_sub(c0);
                store::write_cycle(&db, *node, &cycle.readings, &cycle.events).await?;
                // A sample, two rollups, the latest row and the month's traffic per server.
                rows += cycle.readings.len() * 5 + cycle.events.len();
                samples.extend(
                    cycle
                        .published
                        .into_iter()
                        .map(|(s, _, json)| (s.server_id, json)),
                );
            }
            let (cpu, wall) = (cpu_time().saturating_sub(cpu0), wall0.elapsed());
            let published = if let Some(nats) = &nats {
                let t = Instant::now();
                for (id, json) in samples {
                    nats.publish(proto::events::v1::subject::stats(id), json.into())
                        .await?;
                }
                nats.flush().await?;
                Some(t.elapsed())
            } else {
                None
            };
            if round == 0 {
                continue;
            }
            cpu_per_cycle.push(cpu.as_secs_f64() * 1000.0);
            wall_per_cycle.push(wall.as_secs_f64() * 1000.0);
            compute_cpu.push(compute_time.as_secs_f64() * 1000.0);
            rows_per_sec.push(rows as f64 / wall.as_secs_f64());
            if let Some(p) = published {
                publish_ms.push(p.as_secs_f64() * 1000.0);
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        };
        println!(
            "  CPU per cycle (parse + compute + store):  {:.0} ms (median)",
            median(&mut cpu_per_cycle)
        );
        println!(
            "    of which parse + compute:              {:.0} ms",
            median(&mut compute_cpu)
        );
        println!(
            "  wall time per cycle:                      {:.0} ms",
            median(&mut wall_per_cycle)
        );
        println!(
            "  rows written per second (SQLite):         {:.0}",
            median(&mut rows_per_sec)
        );
        if publish_ms.is_empty() {
            println!("  publish: skipped (set NATS_URL)");
        } else {
            println!(
                "  publishing 10,000 samples (core NATS):   {:.0} ms",
                median(&mut publish_ms)
            );
        }
        anyhow::Ok(())
    })
}
