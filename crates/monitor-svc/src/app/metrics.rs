//! Per-server metrics in the Prometheus text format, named in the style of
//! prometheus-pve-exporter: `vps_server_*` with the labels kept to ids (`server_id`,
//! `node`), and `vps_server_info` carrying the names. Each replica serves the servers of the
//! nodes it polls; Prometheus scrapes every replica.

use std::fmt::Write as _;

use proto::monitor::v1 as pb;

use super::App;

/// One node as this replica last polled it.
#[derive(Clone, Debug, Default)]
pub struct NodeReadings {
    pub status: pb::PolledNode,
    /// Each server's latest sample and its name.
    pub samples: Vec<(pb::Sample, String)>,
}

type Gauge = (
    &'static str,
    &'static str,
    &'static str,
    fn(&pb::Sample) -> f64,
);

const SERVER_METRICS: &[Gauge] = &[
    (
        "vps_server_up",
        "gauge",
        "1 when the guest is running",
        |s| f64::from(u8::from(s.state == "running")),
    ),
    (
        "vps_server_cpu_usage_ratio",
        "gauge",
        "CPU in use, as a fraction of the server's cores",
        |s| s.cpu,
    ),
    (
        "vps_server_cpu_usage_limit",
        "gauge",
        "The server's cores",
        |s| f64::from(s.cores),
    ),
    (
        "vps_server_memory_usage_bytes",
        "gauge",
        "Memory in use",
        |s| s.memory_used_bytes as f64,
    ),
    (
        "vps_server_memory_size_bytes",
        "gauge",
        "Memory the server may use",
        |s| s.memory_max_bytes as f64,
    ),
    ("vps_server_disk_usage_bytes", "gauge", "Disk in use", |s| {
        s.disk_used_bytes as f64
    }),
    (
        "vps_server_disk_size_bytes",
        "gauge",
        "The server's disk size",
        |s| s.disk_max_bytes as f64,
    ),
    (
        "vps_server_network_receive_bytes_total",
        "counter",
        "Bytes received since the guest started",
        |s| s.net_in_bytes as f64,
    ),
    (
        "vps_server_network_transmit_bytes_total",
        "counter",
        "Bytes sent since the guest started",
        |s| s.net_out_bytes as f64,
    ),
    (
        "vps_server_disk_read_bytes_per_second",
        "gauge",
        "Disk reads over the last interval",
        |s| s.disk_read_rate,
    ),
    (
        "vps_server_disk_write_bytes_per_second",
        "gauge",
        "Disk writes over the last interval",
        |s| s.disk_write_rate,
    ),
    (
        "vps_server_uptime_seconds",
        "gauge",
        "Seconds since the guest started",
        |s| s.uptime_secs as f64,
    ),
    (
        "vps_server_traffic_month_receive_bytes",
        "gauge",
        "Bytes received this calendar month (UTC)",
        |s| s.month_in_bytes as f64,
    ),
    (
        "vps_server_traffic_month_transmit_bytes",
        "gauge",
        "Bytes sent this calendar month (UTC)",
        |s| s.month_out_bytes as f64,
    ),
];

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl App {
    /// The metrics page.
    pub fn render_metrics(&self) -> String {
        let nodes: Vec<NodeReadings> = self
            .polled
            .read()
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default();
        render(&nodes)
    }
}

pub fn render(nodes: &[NodeReadings]) -> String {
    let mut out = String::new();
    let samples: Vec<&(pb::Sample, String)> = nodes.iter().flat_map(|n| &n.samples).collect();
    for (name, kind, help, value) in SERVER_METRICS {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (s, _) in &samples {
            let _ = writeln!(
                out,
                "{name}{{server_id=\"{}\",node=\"{}\"}} {}",
                s.server_id,
                s.node_id,
                value(s)
            );
        }
    }
    out.push_str("# HELP vps_server_info The server's name\n# TYPE vps_server_info gauge\n");
    for (s, server_name) in &samples {
        let _ = writeln!(
            out,
            "vps_server_info{{server_id=\"{}\",node=\"{}\",name=\"{}\"}} 1",
            s.server_id,
            s.node_id,
            escape(server_name)
        );
    }
    type NodeGauge = (&'static str, &'static str, fn(&pb::PolledNode) -> f64);
    const NODE_METRICS: [NodeGauge; 2] = [
        (
            "vps_monitor_node_up",
            "1 when the node answered its last poll",
            |n| f64::from(u8::from(n.error.is_empty())),
        ),
        (
            "vps_monitor_node_poll_seconds",
            "How long the node's last poll took",
            |n| f64::from(n.took_ms) / 1000.0,
        ),
    ];
    for (name, help, value) in NODE_METRICS {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for n in nodes {
            let _ = writeln!(
                out,
                "{name}{{node=\"{}\"}} {}",
                n.status.node_id,
                value(&n.status)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_ids_and_names_are_escaped() {
        let sample = pb::Sample {
            server_id: 7,
            node_id: 2,
            state: "running".into(),
            cpu: 0.5,
            net_in_bytes: 1234,
            ..pb::Sample::default()
        };
        let text = render(&[NodeReadings {
            status: pb::PolledNode {
                node_id: 2,
                took_ms: 1500,
                ..pb::PolledNode::default()
            },
            samples: vec![(sample, "web \"1\"".into())],
        }]);
        assert!(text.contains("vps_server_cpu_usage_ratio{server_id=\"7\",node=\"2\"} 0.5\n"));
        assert!(
            text.contains(
                "vps_server_network_receive_bytes_total{server_id=\"7\",node=\"2\"} 1234\n"
            )
        );
        assert!(text.contains("vps_server_up{server_id=\"7\",node=\"2\"} 1\n"));
        assert!(
            text.contains("vps_server_info{server_id=\"7\",node=\"2\",name=\"web \\\"1\\\"\"} 1\n")
        );
        assert!(text.contains("vps_monitor_node_poll_seconds{node=\"2\"} 1.5\n"));
    }
}
