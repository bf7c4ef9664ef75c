//! The outbox against a real `nats-server -js` and SQLite: committed events are published in
//! order with their ids, rolled-back ones never, and a republish after a crash is dropped by
//! JetStream's duplicate window.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream;
use platform::outbox::{self, AddTraceParent, CreateOutbox, Relay};
use sea_orm::{ConnectionTrait, TransactionTrait};
use sea_orm_migration::prelude::*;

struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateOutbox), Box::new(AddTraceParent)]
    }
}

struct Nats {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Nats {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (apt-get install nats-server)");
        Self {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            dir,
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The servers' logs, for a failure's message.
fn logs(servers: &[Nats]) -> String {
    servers
        .iter()
        .map(|s| {
            let log = std::fs::read_to_string(s.dir.path().join("nats.log")).unwrap_or_default();
            format!("--- {} ---\n{log}", s.url)
        })
        .collect()
}

async fn connect(url: &str) -> async_nats::Client {
    for _ in 0..100 {
        if let Ok(client) = async_nats::connect(url).await {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nats-server did not come up at {url}");
}

#[tokio::test]
async fn committed_events_are_published_once_in_order() {
    let nats = Nats::start();
    let js = jetstream::new(connect(&nats.url).await);
    outbox::ensure_stream(&js).await.expect("stream");
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("svc.db").display());
    let db = platform::db::connect_and_migrate::<Migrator>(&url, 2)
        .await
        .expect("db");

    let ids: Vec<uuid::Uuid> = (0..3).map(|_| uuid::Uuid::now_v7()).collect();
    let txn = db.begin().await.expect("begin");
    for (n, id) in ids.iter().enumerate() {
        outbox::enqueue(
            &txn,
            "vps.events.server.created",
            *id,
            &serde_json::json!({"n": n}),
        )
        .await
        .expect("enqueue");
    }
    txn.commit().await.expect("commit");
    let rolled_back = db.begin().await.expect("begin");
    outbox::enqueue(
        &rolled_back,
        "vps.events.server.deleted",
        uuid::Uuid::now_v7(),
        &serde_json::json!({}),
    )
    .await
    .expect("enqueue");
    rolled_back.rollback().await.expect("rollback");

    let relay = Relay::new(db.clone(), js.clone());
    assert_eq!(relay.publish_pending().await.expect("publish"), 3);
    assert_eq!(
        relay.publish_pending().await.expect("publish"),
        0,
        "nothing twice"
    );

    // A crash after publishing but before marking: the row is published again, and the
    // stream keeps one copy.
    db.execute_unprepared(&format!(
        "UPDATE outbox SET published_at = NULL WHERE event_id = '{}'",
        ids[1]
    ))
    .await
    .expect("forget one");
    assert_eq!(relay.publish_pending().await.expect("republish"), 1);

    let mut stream = js.get_stream(outbox::STREAM).await.expect("stream");
    let info = stream.info().await.expect("info");
    assert_eq!(info.state.messages, 3, "the duplicate was dropped");
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("test".into()),
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut messages = consumer
        .fetch()
        .max_messages(10)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .expect("fetch");
    let mut seen = Vec::new();
    use futures_util::StreamExt as _;
    while let Some(Ok(message)) = messages.next().await {
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.to_string())
            .expect("id");
        let body: serde_json::Value = serde_json::from_slice(&message.payload).expect("json");
        seen.push((id, body["n"].as_i64().expect("n")));
        message.ack().await.expect("ack");
    }
    let expected: Vec<(String, i64)> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| (id.to_string(), n as i64))
        .collect();
    assert_eq!(seen, expected);
}

/// Three `nats-server -js` in one cluster on loopback: the streams are kept on all three,
/// and events are still taken and read with one server down.
#[tokio::test]
async fn on_a_cluster_the_streams_are_replicated_and_survive_a_server() {
    let clients: Vec<u16> = (0..3).map(|_| testkit::free_port()).collect();
    let routes: Vec<u16> = (0..3).map(|_| testkit::free_port()).collect();
    let all_routes = routes
        .iter()
        .map(|p| format!("nats://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut servers = Vec::new();
    for i in 0..3 {
        let dir = tempfile::tempdir().expect("dir");
        let log = std::fs::File::create(dir.path().join("nats.log")).expect("log");
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &clients[i].to_string()])
            .args(["-n", &format!("n{i}"), "--cluster_name", "vps"])
            .args(["--cluster", &format!("nats://127.0.0.1:{}", routes[i])])
            .args(["--routes", &all_routes, "-sd"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server");
        servers.push(Nats {
            child,
            url: format!("nats://127.0.0.1:{}", clients[i]),
            dir,
        });
    }
    // A client keeps the INFO it was first sent, so the cluster is watched on fresh
    // connections until one hears of all three servers; its streams then get three replicas.
    let mut formed = None;
    for _ in 0..120 {
        let ended = servers
            .iter_mut()
            .find_map(|s| s.child.try_wait().ok().flatten());
        if let Some(status) = ended {
            panic!("a cluster member ended ({status}):\n{}", logs(&servers));
        }
        let client = connect(&servers[0].url).await;
        if client.server_info().connect_urls.len() == 3 {
            formed = Some(client);
            break;
        }
        drop(client);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let client = formed.unwrap_or_else(|| panic!("the cluster never formed:\n{}", logs(&servers)));
    assert_eq!(outbox::stream_replicas(&client.server_info()), 3);
    let js = jetstream::new(client.clone());
    // The cluster elects its JetStream leader in a few seconds; this waits up to 30 s for it.
    let made = outbox::ensure_stream(&js).await;
    if let Err(error) = made {
        panic!(
            "the streams are made on the cluster: {error:#}\n{}",
            logs(&servers)
        );
    }
    for name in [outbox::STREAM, outbox::ALERTS_STREAM] {
        let info = js
            .get_stream(name)
            .await
            .expect("stream")
            .info()
            .await
            .expect("info")
            .clone();
        assert_eq!(info.config.num_replicas, 3, "{name}");
    }
    // One server goes; events are still taken (a quorum of two) and read back.
    let mut third = servers.pop().expect("a third server");
    let _ = third.child.kill();
    let _ = third.child.wait();
    let mut acked = 0;
    for n in 0..20 {
        for _ in 0..50 {
            let published = js
                .publish(format!("vps.events.test.{n}"), "{}".into())
                .await;
            if let Ok(ack) = published
                && ack.await.is_ok()
            {
                acked += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert_eq!(acked, 20, "every event was taken with one server down");
    let stream_info = js
        .get_stream(outbox::STREAM)
        .await
        .expect("stream")
        .info()
        .await
        .expect("info")
        .clone();
    assert_eq!(stream_info.state.messages, 20);
}
