//! The mail pipeline of a running stack: COUNT payment reminders published to JetStream (as
//! server-svc's outbox relay publishes them) for the user OWNER_ID, each to become one mail
//! at the SMTP server that appends what it receives to SINK (crates/tests/support/
//! smtp_sink.py, with --raw so it keeps up). Prints mails per second, end to end, and the delay from publish to the
//! SMTP server's receipt (p50, p99). deploy/bench.sh starts it all; on its own:
//!
//!     NATS_URL=nats://... SINK=/path/mails.jsonl OWNER_ID=1 COUNT=2000 [RATE=50] \
//!         cargo bench -p notify-svc --bench pipeline

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (Ok(url), Ok(sink)) = (std::env::var("NATS_URL"), std::env::var("SINK")) else {
        println!("(mail pipeline skipped: set NATS_URL and SINK; deploy/bench.sh does)");
        return Ok(());
    };
    let owner: i64 = std::env::var("OWNER_ID")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let count: usize = std::env::var("COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    // Events per second; 0: all at once (a burst).
    let rate: u64 = std::env::var("RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let already = std::fs::read_to_string(&sink)
        .map(|t| t.lines().count())
        .unwrap_or(0);
    let js = async_nats::jetstream::new(platform::outbox::connect(&url).await?);
    let run = uuid::Uuid::now_v7().simple().to_string();
    let mut published = HashMap::new();
    let started = Instant::now();
    let mut acks = Vec::with_capacity(count);
    let mut tick =
        (rate > 0).then(|| tokio::time::interval(Duration::from_micros(1_000_000 / rate)));
    for n in 0..count {
        if let Some(tick) = tick.as_mut() {
            tick.tick().await;
        }
        // The balance tells the mails apart: it is in every mail's text.
        let balance = 1_000_000 + n as i64;
        let id = uuid::Uuid::now_v7().to_string();
        let event = serde_json::json!({
            "id": id, "version": 1, "type": "payment_reminder",
            "at": chrono::Utc::now().to_rfc3339(), "ownerId": owner,
            "balance": balance, "needed": 10, "stage": "overdue", "run": run,
        });
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.as_str());
        published.insert(balance, now_secs());
        acks.push(
            js.publish_with_headers(
                "vps.events.billing.payment_reminder",
                headers,
                serde_json::to_vec(&event)?.into(),
            )
            .await?,
        );
    }
    for ack in acks {
        ack.await?;
    }
    let publish_time = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut delays = Vec::with_capacity(count);
    let mut last_arrival = 0.0_f64;
    loop {
        delays.clear();
        let text = std::fs::read_to_string(&sink).unwrap_or_default();
        for line in text.lines().skip(already) {
            let mail: serde_json::Value = serde_json::from_str(line)?;
            // A parsed record has the text part; a raw one (smtp_sink.py --raw) the message,
            // whose quoted-printable soft breaks are undone here.
            let body = match mail["text"].as_str() {
                Some(text) => text.to_owned(),
                None => mail["raw"]
                    .as_str()
                    .unwrap_or_default()
                    .replace("=\r\n", ""),
            };
            let Some(balance) = body
                .split("balance of ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|b| b.parse::<i64>().ok())
            else {
                continue;
            };
            if let Some(sent) = published.get(&balance) {
                let at = mail["received_at"].as_f64().unwrap_or_default();
                last_arrival = last_arrival.max(at);
                delays.push(at - sent);
            }
        }
        if delays.len() >= count || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::ensure!(
        delays.len() == count,
        "only {} of {count} mails arrived",
        delays.len()
    );
    let first = published.values().copied().fold(f64::MAX, f64::min);
    delays.sort_by(f64::total_cmp);
    let pace = if rate > 0 {
        format!("at {rate}/s")
    } else {
        "at once".to_owned()
    };
    println!(
        "{count} events published {pace} in {:.2} s; {count} mails received, {:.0} mails/s end to end",
        publish_time.as_secs_f64(),
        count as f64 / (last_arrival - first)
    );
    println!(
        "event published -> mail at the SMTP server: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&delays, 0.5) * 1000.0,
        percentile(&delays, 0.99) * 1000.0,
        delays[delays.len() - 1] * 1000.0
    );
    Ok(())
}
