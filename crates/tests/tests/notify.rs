//! notify-svc against a real SMTP server on loopback (aiosmtpd) and a real NATS JetStream:
//! the mails seed 000 names (a created server, a resource alert, a payment reminder, a
//! ticket's answer) reach their recipients once each, through an SMTP outage, a duplicate
//! event and a restart of notify-svc; preferences and the daily cap hold; a mail that
//! keeps failing is kept for an administrator to send again; tickets go round; webhooks
//! are signed (checked with the Standard Webhooks reference library), retried, disabled by
//! a 410, replayable, private to their owner, and never sent inside unless allowed.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::fleet::{ContainerDir, Nats, Smtp, WebhookReceiver, grant, lxc_node};
use tests::{Backend, Cred, Options, TestApp};

/// A stack with NATS and notify-svc mailing to `smtp`.
async fn stack(smtp: &Smtp, nats: &Nats, change: impl FnOnce(&mut Options)) -> TestApp {
    let mut options = Options::default();
    let url = || Some(nats.url.clone().into());
    options.server.nats_url = url();
    options.monitor.nats_url = url();
    options.notify.nats_url = url();
    options.notify.smtp = smtp.config();
    options.notify.mail.from = "VPS Panel <noreply@panel.example>".to_owned();
    options.notify.mail.panel_url = "https://panel.example".to_owned();
    change(&mut options);
    TestApp::start_with(Backend::Sqlite, options).await
}

/// Publishes an event as a service's outbox relay does: JSON, with its id as `Nats-Msg-Id`.
async fn publish(nats: &Nats, subject: &str, event: &Value) {
    let client = async_nats::connect(&nats.url).await.expect("nats");
    let js = async_nats::jetstream::new(client);
    platform::outbox::ensure_stream(&js).await.expect("streams");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", event["id"].as_str().expect("an event id"));
    js.publish_with_headers(
        subject.to_owned(),
        headers,
        serde_json::to_vec(event).expect("json").into(),
    )
    .await
    .expect("publish")
    .await
    .expect("stored");
}

fn alert(id: &str, server_id: i64, owner_id: i64, kind: &str, value: f64) -> Value {
    json!({
        "id": id, "version": 1, "type": kind, "at": "2026-11-30T12:00:00Z",
        "serverId": server_id, "ownerId": owner_id, "serverName": format!("srv-{server_id}"),
        "metric": "cpu", "level": "warning", "value": value, "threshold": 90.0,
        "message": format!("CPU usage is at {value}%"),
    })
}

fn reminder(id: &str, owner_id: i64) -> Value {
    json!({
        "id": id, "version": 1, "type": "payment_reminder", "at": "2026-11-30T12:00:00Z",
        "ownerId": owner_id, "balance": 3, "needed": 10, "stage": "overdue",
    })
}

/// The admin's view of the mails.
async fn mails(app: &TestApp, admin: &str, state: &str) -> Vec<Value> {
    let path = if state.is_empty() {
        "/api/admin/mails".to_owned()
    } else {
        format!("/api/admin/mails?state={state}")
    };
    let reply = app.get(&path, Cred::Bearer(admin)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let listed = reply.json.as_array().cloned().expect("a list");
    let ids: Vec<i64> = listed.iter().filter_map(|m| m["id"].as_i64()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "the newest first: {ids:?}"
    );
    listed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_server_and_its_alerts_are_mailed_once_as_the_user_wants() {
    let smtp = Smtp::start(Some(("mailer", "s3cret-pass")));
    let nats = Nats::start().await;
    let app = stack(&smtp, &nats, |o| o.notify.mail.alert_daily_cap = 3).await;
    let dir = ContainerDir::new();
    lxc_node(&app, &dir, 4096).await;
    let admin = app.admin_token().await;
    let (amy, jwt) = app.user("amy").await;
    let (bob, _) = app.user("bob").await;
    grant(&app, &admin, amy, 100).await;

    // A created server: its owner hears once it is ready; the root password is not in it.
    let created = app
        .post(
            "/api/server/create",
            Cred::Bearer(&jwt),
            json!({"osId": 1, "tariffId": 1, "name": "mailed"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["id"].as_i64().expect("id");
    let password = created.json["rootPassword"]
        .as_str()
        .expect("a root password")
        .to_owned();
    let ready = smtp
        .wait_for(1, |m| m["subject"] == "Your server mailed is ready")
        .await;
    let mail = &ready[0];
    assert_eq!(mail["rcpt_tos"], json!(["amy@example.com"]));
    assert_eq!(mail["from"], "VPS Panel <noreply@panel.example>");
    assert_eq!(mail["auth"], true, "the SMTP server's login was used");
    for part in ["text", "html"] {
        let body = mail[part].as_str().expect("a part");
        assert!(body.contains("Hello amy"), "{part}: {body}");
        assert!(
            body.contains(&format!("https://panel.example/servers/{id}")),
            "{part}: {body}"
        );
        assert!(
            !body.contains(&password),
            "{part} carries the root password"
        );
    }
    assert!(
        mail["message_id"]
            .as_str()
            .is_some_and(|m| m.ends_with("@panel.example>")),
        "{mail}"
    );

    // An alert fires: one mail, even when the event comes twice; resolving it mails nobody.
    let first = alert(
        "0199a000-0000-7000-8000-000000000001",
        id,
        amy,
        "fired",
        95.2,
    );
    publish(&nats, &format!("vps.alerts.{id}"), &first).await;
    publish(&nats, &format!("vps.alerts.{id}"), &first).await;
    let mut resolved = first.clone();
    resolved["id"] = json!("0199a000-0000-7000-8000-000000000002");
    resolved["type"] = json!("resolved");
    publish(&nats, &format!("vps.alerts.{id}"), &resolved).await;
    let alerts = smtp
        .wait_for(1, |m| {
            m["subject"] == format!("Warning: CPU usage on srv-{id} is at 95%")
        })
        .await;
    assert_eq!(alerts[0]["rcpt_tos"], json!(["amy@example.com"]));
    assert!(
        alerts[0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("above the 90% threshold")),
        "{}",
        alerts[0]
    );

    // Amy turns alerts off; billing notices cannot be.
    let reply = app
        .call(
            reqwest::Method::PUT,
            "/api/account/notifications",
            Cred::Bearer(&jwt),
            Some(json!({"alert": false})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.json,
        json!({"serverCreated": true, "alert": false, "ticketReply": true})
    );
    let refused = app
        .call(
            reqwest::Method::PUT,
            "/api/account/notifications",
            Cred::Bearer(&jwt),
            Some(json!({"paymentReminder": false})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert!(refused.json["error"].is_string());
    let read = app
        .get("/api/account/notifications", Cred::Bearer(&jwt))
        .await;
    assert_eq!(read.json["alert"], false);

    publish(
        &nats,
        &format!("vps.alerts.{id}"),
        &alert(
            "0199a000-0000-7000-8000-000000000003",
            id,
            amy,
            "fired",
            97.0,
        ),
    )
    .await;
    // Bob still wants alerts; three of his go through, the fourth and fifth are over the
    // daily cap. His alerts come after Amy's on the same stream, so once his are in, hers
    // would have been too.
    for n in 0..5 {
        publish(
            &nats,
            "vps.alerts.999",
            &alert(
                &format!("0199a000-0000-7000-8000-00000000010{n}"),
                999,
                bob,
                "fired",
                91.0 + f64::from(n),
            ),
        )
        .await;
    }
    smtp.wait_for(3, |m| m["rcpt_tos"] == json!(["bob@example.com"]))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = smtp.mails();
    let amy_alerts = all
        .iter()
        .filter(|m| m["rcpt_tos"] == json!(["amy@example.com"]))
        .filter(|m| m["subject"].as_str().is_some_and(|s| s.contains("usage")))
        .count();
    assert_eq!(
        amy_alerts, 1,
        "after turning alerts off Amy got more: {all:#?}"
    );
    let bob_alerts = all
        .iter()
        .filter(|m| m["rcpt_tos"] == json!(["bob@example.com"]))
        .count();
    assert_eq!(bob_alerts, 3, "the daily cap of 3 holds: {all:#?}");

    // Each mail went once: no Message-ID twice.
    let ids: Vec<&str> = all
        .iter()
        .filter_map(|m| m["message_id"].as_str())
        .collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "{ids:?}");

    // The admin's log shows them sent; nobody else may read it.
    let sent = mails(&app, &admin, "sent").await;
    assert_eq!(sent.len(), all.len(), "{sent:#?}");
    assert!(sent.iter().all(|m| m.get("textBody").is_none()));
    let forbidden = app.get("/api/admin/mails", Cred::Bearer(&jwt)).await;
    assert_eq!(
        forbidden.status,
        StatusCode::FORBIDDEN,
        "{}",
        forbidden.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_outage_delays_mail_and_a_restart_loses_or_doubles_none() {
    let mut smtp = Smtp::start(None);
    let nats = Nats::start().await;
    let mut app = stack(&smtp, &nats, |_| {}).await;
    let admin = app.admin_token().await;
    let (cid, _) = app.user("cid").await;

    // The SMTP server is down when the event comes: the mail waits and is retried.
    smtp.stop();
    publish(
        &nats,
        "vps.events.billing.payment_reminder",
        &reminder("0199b000-0000-7000-8000-000000000001", cid),
    )
    .await;
    let mut waited = Vec::new();
    for _ in 0..100 {
        waited = mails(&app, &admin, "pending").await;
        if waited
            .first()
            .is_some_and(|m| m["attempts"].as_u64() >= Some(2))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        waited[0]["attempts"].as_u64() >= Some(2),
        "the mail was retried: {waited:#?}"
    );
    assert!(
        !waited[0]["lastError"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{waited:#?}"
    );
    smtp.resume();
    let got = smtp
        .wait_for(1, |m| {
            m["subject"] == "Payment overdue: your servers will be suspended"
        })
        .await;
    assert_eq!(got[0]["rcpt_tos"], json!(["cid@example.com"]));

    // notify-svc restarts while events keep coming: each is mailed once.
    let total = 40;
    for n in 0..total {
        if n == total / 2 {
            app.stop_notify_svc();
        }
        let event = reminder(&format!("0199b000-0000-7000-8000-0000000001{n:02}"), cid);
        publish(&nats, "vps.events.billing.payment_reminder", &event).await;
    }
    app.restart_notify_svc(|_| {}).await;
    smtp.wait_for(total + 1, |m| m["rcpt_tos"] == json!(["cid@example.com"]))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = smtp.mails();
    assert_eq!(all.len(), total + 1, "no mail twice: {all:#?}");
    let ids: HashSet<&str> = all
        .iter()
        .filter_map(|m| m["message_id"].as_str())
        .collect();
    assert_eq!(ids.len(), total + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_over_starttls_and_implicit_tls_trusting_a_private_ca() {
    for mode in ["starttls", "implicit"] {
        let nats = Nats::start().await;
        let smtp = Smtp::start_tls(mode);
        let app = stack(&smtp, &nats, |_| {}).await;
        let (hal, _) = app.user("hal").await;
        let event = reminder("0199e000-0000-7000-8000-000000000001", hal);
        publish(&nats, "vps.events.billing.payment_reminder", &event).await;
        let got = smtp.wait_for(1, |m| m["tls"] == true).await;
        assert_eq!(
            got[0]["subject"], "Payment overdue: your servers will be suspended",
            "{mode}"
        );
    }
    // Without the CA the relay's certificate is refused: the mail waits, and nothing goes
    // out in the clear.
    let nats = Nats::start().await;
    let smtp = Smtp::start_tls("starttls");
    let app = stack(&smtp, &nats, |o| o.notify.smtp.ca_file = None).await;
    let admin = app.admin_token().await;
    let (ivy, _) = app.user("ivy").await;
    let event = reminder("0199e000-0000-7000-8000-000000000002", ivy);
    publish(&nats, "vps.events.billing.payment_reminder", &event).await;
    let mut waiting = Vec::new();
    for _ in 0..100 {
        waiting = mails(&app, &admin, "pending").await;
        if waiting.iter().any(|m| m["attempts"].as_u64() >= Some(1)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        waiting
            .iter()
            .any(|m| m["recipient"] == "ivy@example.com" && m["attempts"].as_u64() >= Some(1)),
        "{waiting:#?}"
    );
    assert!(smtp.mails().is_empty(), "{:#?}", smtp.mails());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_events_and_mail_each_once() {
    let smtp = Smtp::start(None);
    let nats = Nats::start().await;
    let app = stack(&smtp, &nats, |_| {}).await;
    let (gus, _) = app.user("gus").await;
    let second = app.another_notify_svc(|_| {}).await;
    let third = app.another_notify_svc(|_| {}).await;
    let total = 60;
    for n in 0..total {
        if n == total / 2 {
            // One replica leaves half-way, as in a rolling update.
            third.trigger();
        }
        let event = reminder(&format!("0199d000-0000-7000-8000-0000000001{n:02}"), gus);
        publish(&nats, "vps.events.billing.payment_reminder", &event).await;
    }
    smtp.wait_for(total, |m| m["rcpt_tos"] == json!(["gus@example.com"]))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = smtp.mails();
    assert_eq!(all.len(), total, "each event mailed once: {}", all.len());
    second.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_that_keeps_failing_is_kept_for_an_administrator_to_send_again() {
    let mut smtp = Smtp::start(None);
    let nats = Nats::start().await;
    let app = stack(&smtp, &nats, |o| o.notify.mail.max_attempts = 2).await;
    let admin = app.admin_token().await;
    let (dan, jwt) = app.user("dan").await;
    smtp.stop();
    publish(
        &nats,
        "vps.events.billing.payment_reminder",
        &reminder("0199c000-0000-7000-8000-000000000001", dan),
    )
    .await;
    let mut failed = Vec::new();
    for _ in 0..100 {
        failed = mails(&app, &admin, "failed").await;
        if !failed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(failed.len(), 1, "the mail is kept as failed");
    let mail = &failed[0];
    assert_eq!(mail["attempts"], 2);
    assert_eq!(mail["recipient"], "dan@example.com");
    assert_eq!(mail["kind"], "payment_reminder");
    let id = mail["id"].as_i64().expect("id");

    // Only an administrator sends it again, and only a failed one.
    let path = format!("/api/admin/mails/{id}/resend");
    let denied = app.post(&path, Cred::Bearer(&jwt), json!({})).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.text);
    let missing = app
        .post(
            "/api/admin/mails/999999/resend",
            Cred::Bearer(&admin),
            json!({}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text);
    smtp.resume();
    let resent = app.post(&path, Cred::Bearer(&admin), json!({})).await;
    assert_eq!(resent.status, StatusCode::OK, "{}", resent.text);
    assert_eq!(resent.json["state"], "pending");
    smtp.wait_for(1, |m| m["rcpt_tos"] == json!(["dan@example.com"]))
        .await;
    let mut sent = Vec::new();
    for _ in 0..50 {
        sent = mails(&app, &admin, "sent").await;
        if !sent.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sent.len(), 1, "{sent:#?}");
    let again = app.post(&path, Cred::Bearer(&admin), json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert_eq!(smtp.mails().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_goes_round_and_staff_answers_are_mailed() {
    let smtp = Smtp::start(None);
    let nats = Nats::start().await;
    let app = stack(&smtp, &nats, |_| {}).await;
    let admin = app.admin_token().await;
    let (eve, jwt) = app.user("eve").await;
    let (_, other) = app.user("fox").await;

    // Refused: empty or too long, a server that is not hers, unknown fields.
    for (body, field) in [
        (json!({"subject": " ", "body": "x"}), "subject"),
        (json!({"subject": "x", "body": ""}), "body"),
        (json!({"subject": "x".repeat(201), "body": "x"}), "subject"),
        (json!({"subject": "x", "body": "x".repeat(10_001)}), "body"),
    ] {
        let reply = app.post("/api/tickets", Cred::Bearer(&jwt), body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{field}: {}",
            reply.text
        );
        assert!(
            reply.json["error"]
                .as_str()
                .is_some_and(|e| e.contains(field)),
            "{}",
            reply.text
        );
    }
    let foreign = app
        .post(
            "/api/tickets",
            Cred::Bearer(&jwt),
            json!({"subject": "x", "body": "x", "serverId": 424242}),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.text);
    let unknown = app
        .post(
            "/api/tickets",
            Cred::Bearer(&jwt),
            json!({"subject": "x", "body": "x", "priority": "high"}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.text);

    // Opened.
    let opened = app
        .post(
            "/api/tickets",
            Cred::Bearer(&jwt),
            json!({"subject": "SSH times out", "body": "Since this morning."}),
        )
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.text);
    let ticket = opened.json["id"].as_i64().expect("id");
    assert_eq!(opened.json["status"], "open");
    assert_eq!(opened.json["userId"], eve);
    assert_eq!(opened.json["messages"][0]["body"], "Since this morning.");
    assert_eq!(opened.json["messages"][0]["staff"], false);
    let path = format!("/api/tickets/{ticket}");

    // Private: another user sees nothing of it, not even that it exists.
    for reply in [
        app.get(&path, Cred::Bearer(&other)).await,
        app.post(
            &format!("{path}/replies"),
            Cred::Bearer(&other),
            json!({"body": "hi"}),
        )
        .await,
        app.post(&format!("{path}/close"), Cred::Bearer(&other), json!({}))
            .await,
    ] {
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
        assert!(reply.json["error"].is_string());
    }
    let theirs = app.get("/api/tickets", Cred::Bearer(&other)).await;
    assert_eq!(theirs.json, json!([]));
    let all_denied = app.get("/api/admin/tickets", Cred::Bearer(&jwt)).await;
    assert_eq!(all_denied.status, StatusCode::FORBIDDEN);

    // Staff see it among all tickets and answer: Eve gets the answer by mail.
    let all = app
        .get("/api/admin/tickets?status=open", Cred::Bearer(&admin))
        .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert!(
        all.json
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["id"] == ticket)),
        "{}",
        all.text
    );
    let answered = app
        .post(
            &format!("{path}/replies"),
            Cred::Bearer(&admin),
            json!({"body": "We restarted the <router>; try again."}),
        )
        .await;
    assert_eq!(answered.status, StatusCode::CREATED, "{}", answered.text);
    assert_eq!(answered.json["messages"][1]["staff"], true);
    let mail = smtp
        .wait_for(1, |m| {
            m["subject"] == format!("Re: SSH times out [ticket #{ticket}]")
        })
        .await;
    assert_eq!(mail[0]["rcpt_tos"], json!(["eve@example.com"]));
    let text = mail[0]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("We restarted the <router>; try again."),
        "{text}"
    );
    let html = mail[0]["html"].as_str().unwrap_or_default();
    assert!(
        html.contains("We restarted the &lt;router&gt;; try again."),
        "{html}"
    );

    // Eve closes it; her reply reopens it, and does not mail her.
    let closed = app
        .post(&format!("{path}/close"), Cred::Bearer(&jwt), json!({}))
        .await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.text);
    assert_eq!(closed.json["status"], "closed");
    let closed_list = app
        .get("/api/tickets?status=closed", Cred::Bearer(&jwt))
        .await;
    assert_eq!(closed_list.json.as_array().map(Vec::len), Some(1));
    let bad_filter = app
        .get("/api/tickets?status=maybe", Cred::Bearer(&jwt))
        .await;
    assert_eq!(bad_filter.status, StatusCode::BAD_REQUEST);
    let replied = app
        .post(
            &format!("{path}/replies"),
            Cred::Bearer(&jwt),
            json!({"body": "Works, thanks."}),
        )
        .await;
    assert_eq!(replied.status, StatusCode::CREATED, "{}", replied.text);
    assert_eq!(replied.json["status"], "open");
    assert_eq!(replied.json["messageCount"], 3);
    let closed = app
        .post(&format!("{path}/close"), Cred::Bearer(&admin), json!({}))
        .await;
    assert_eq!(closed.json["status"], "closed");
    let reopened = app
        .post(&format!("{path}/reopen"), Cred::Bearer(&jwt), json!({}))
        .await;
    assert_eq!(reopened.json["status"], "open");

    // Only the one staff answer was mailed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(smtp.mails().len(), 1, "{:#?}", smtp.mails());

    // Listings show the newest first, so a long list shows its newest 1000; a queue read
    // oldest first shows the longest-waiting 1000 instead.
    let newer = app
        .post(
            "/api/tickets",
            Cred::Bearer(&jwt),
            json!({"subject": "Disk full", "body": "It says so."}),
        )
        .await;
    assert_eq!(newer.status, StatusCode::CREATED, "{}", newer.text);
    let newer = newer.json["id"].as_i64().expect("id");
    for (path, token) in [("/api/tickets", &jwt), ("/api/admin/tickets", &admin)] {
        let ids = |listed: &Value| -> Vec<i64> {
            let list = listed.as_array().expect("a list");
            list.iter().filter_map(|t| t["id"].as_i64()).collect()
        };
        let newest = ids(&app.get(path, Cred::Bearer(token)).await.json);
        assert_eq!(newest.first(), Some(&newer), "{path}");
        assert!(newest.windows(2).all(|w| w[0] > w[1]), "{path}: {newest:?}");
        let oldest = app
            .get(
                &format!("{path}?status=open&order=oldest"),
                Cred::Bearer(token),
            )
            .await;
        assert_eq!(oldest.status, StatusCode::OK, "{path}: {}", oldest.text);
        let oldest = ids(&oldest.json);
        assert_eq!(oldest.last(), Some(&newer), "{path}");
        assert!(oldest.len() >= 2, "{path}: both open tickets: {oldest:?}");
        assert!(oldest.windows(2).all(|w| w[0] < w[1]), "{path}: {oldest:?}");
        let wrong = app
            .get(&format!("{path}?order=sideways"), Cred::Bearer(token))
            .await;
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(wrong.json["error"].as_str().is_some(), "{}", wrong.text);
    }
}

/// Registers a webhook for the owner of `jwt` at `receiver`'s `path`: its id.
async fn webhook(
    app: &TestApp,
    jwt: &str,
    receiver: &WebhookReceiver,
    path: &str,
    body: Value,
) -> i64 {
    let mut body = body;
    body["url"] = json!(format!("{}{path}", receiver.base));
    let reply = app.post("/api/webhooks", Cred::Bearer(jwt), body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let secret = reply.json["secret"].as_str().expect("the secret, once");
    assert!(secret.starts_with("whsec_"), "{secret}");
    receiver.secret(path, secret);
    reply.json["id"].as_i64().expect("id")
}

async fn open_ticket(app: &TestApp, jwt: &str, subject: &str) -> i64 {
    let reply = app
        .post(
            "/api/tickets",
            Cred::Bearer(jwt),
            json!({"subject": subject, "body": "help"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.json["id"].as_i64().expect("id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_disabled_by_410_and_private() {
    let smtp = Smtp::start(None);
    let nats = Nats::start().await;
    let receiver = WebhookReceiver::start();
    let app = stack(&smtp, &nats, |o| {
        // The receiver is on loopback; retries come a second apart.
        o.notify.webhooks.allow_internal_destinations = true;
        o.notify.webhooks.retry_schedule_secs = vec![1, 1, 1];
        o.notify.webhooks.deliver_interval_ms = 100;
    })
    .await;
    let admin = app.admin_token().await;
    let (_, amy) = app.user("amy").await;
    let (_, bob) = app.user("bob").await;

    // Refused: an unknown type, `all` from a user, credentials in the URL.
    for (body, field) in [
        (
            json!({"url": format!("{}/x", receiver.base), "eventTypes": ["server.exploded"]}),
            "event type",
        ),
        (
            json!({"url": format!("{}/x", receiver.base), "all": true}),
            "administrators",
        ),
        (
            json!({"url": "http://user:pw@127.0.0.1:1/x"}),
            "user or password",
        ),
    ] {
        let reply = app.post("/api/webhooks", Cred::Bearer(&amy), body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
        assert!(
            reply.json["error"]
                .as_str()
                .is_some_and(|e| e.contains(field)),
            "{field}: {}",
            reply.text
        );
    }

    let amy_hook = webhook(
        &app,
        &amy,
        &receiver,
        "/amy",
        json!({"eventTypes": ["ticket.opened"]}),
    )
    .await;
    let everything = webhook(&app, &admin, &receiver, "/all", json!({"all": true})).await;
    let flaky = webhook(
        &app,
        &amy,
        &receiver,
        "/flaky",
        json!({"eventTypes": ["ticket.opened"]}),
    )
    .await;
    receiver.statuses("/flaky", &[500, 503]);
    let gone = webhook(
        &app,
        &amy,
        &receiver,
        "/gone",
        json!({"eventTypes": ["ticket.opened"]}),
    )
    .await;
    receiver.statuses("/gone", &[410]);
    let moved = webhook(
        &app,
        &amy,
        &receiver,
        "/moved",
        json!({"eventTypes": ["ticket.opened"]}),
    )
    .await;
    receiver.statuses("/moved", &[302]);

    let ticket = open_ticket(&app, &amy, "first").await;
    let got = receiver.wait_for("/amy", 1).await;
    assert_eq!(got[0]["verified"], true, "{}", got[0]);
    assert_eq!(got[0]["body"]["type"], "ticket.opened");
    assert_eq!(got[0]["body"]["data"]["ticketId"], ticket);
    assert!(got[0]["id"].as_str().is_some_and(|i| i.starts_with("msg_")));

    // Retried after 500 and 503 with the same webhook-id, then delivered.
    let tries = receiver.wait_for("/flaky", 3).await;
    assert!(tries.iter().all(|t| t["verified"] == true), "{tries:#?}");
    assert!(
        tries.iter().all(|t| t["id"] == tries[0]["id"]),
        "{tries:#?}"
    );
    let mut listed = Value::Null;
    for _ in 0..50 {
        listed = app
            .get(
                &format!("/api/webhooks/{flaky}/deliveries"),
                Cred::Bearer(&amy),
            )
            .await
            .json;
        if listed[0]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed[0]["state"], "delivered", "{listed}");
    assert_eq!(listed[0]["attempts"], 3);
    assert_eq!(listed[0]["lastStatus"], 200);

    // A redirect is not followed: it is a failed attempt, and the next one is delivered.
    receiver.wait_for("/moved", 2).await;
    let mut moved_list = Value::Null;
    for _ in 0..50 {
        moved_list = app
            .get(
                &format!("/api/webhooks/{moved}/deliveries"),
                Cred::Bearer(&amy),
            )
            .await
            .json;
        if moved_list[0]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(moved_list[0]["attempts"], 2, "{moved_list}");
    assert!(
        receiver.received().iter().all(|r| r["path"] != "/trap"),
        "a redirect was followed"
    );

    // 410 Gone disables the endpoint; nothing more goes there.
    receiver.wait_for("/gone", 1).await;
    let mut hook = Value::Null;
    for _ in 0..50 {
        hook = app
            .get(&format!("/api/webhooks/{gone}"), Cred::Bearer(&amy))
            .await
            .json;
        if hook["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(hook["enabled"], false, "{hook}");
    assert!(
        hook["disabledReason"]
            .as_str()
            .is_some_and(|r| r.contains("410")),
        "{hook}"
    );
    let deliveries = app
        .get(
            &format!("/api/webhooks/{gone}/deliveries"),
            Cred::Bearer(&amy),
        )
        .await
        .json;
    assert_eq!(deliveries[0]["state"], "failed", "{deliveries}");
    assert_eq!(deliveries[0]["lastStatus"], 410);

    // Bob's events reach the administrator's endpoint, never Amy's.
    open_ticket(&app, &bob, "bob's").await;
    open_ticket(&app, &amy, "second").await;
    receiver.wait_for("/amy", 2).await;
    let all = receiver.wait_for("/all", 3).await;
    assert!(all.iter().all(|r| r["verified"] == true), "{all:#?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let to_amy: Vec<Value> = receiver
        .received()
        .into_iter()
        .filter(|r| r["path"] == "/amy")
        .collect();
    assert_eq!(to_amy.len(), 2, "{to_amy:#?}");
    assert!(
        to_amy
            .iter()
            .all(|r| r["body"]["data"]["subject"] != "bob's")
    );
    assert_eq!(
        receiver.wait_for("/gone", 1).await.len(),
        1,
        "a disabled endpoint gets nothing"
    );

    // Replayed as it was: the same webhook-id, verified again.
    let first = app
        .get(
            &format!("/api/webhooks/{amy_hook}/deliveries"),
            Cred::Bearer(&amy),
        )
        .await
        .json;
    let oldest = first
        .as_array()
        .and_then(|d| d.last())
        .cloned()
        .expect("a delivery");
    let replay_path = format!("/api/webhooks/deliveries/{}/replay", oldest["id"]);
    let foreign = app.post(&replay_path, Cred::Bearer(&bob), json!({})).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.text);
    let replayed = app.post(&replay_path, Cred::Bearer(&amy), json!({})).await;
    assert_eq!(replayed.status, StatusCode::OK, "{}", replayed.text);
    let again = receiver.wait_for("/amy", 3).await;
    assert_eq!(again[2]["id"], oldest["messageId"]);
    assert_eq!(again[2]["verified"], true);

    // Private to their owner; no secret is shown again.
    for reply in [
        app.get(&format!("/api/webhooks/{amy_hook}"), Cred::Bearer(&bob))
            .await,
        app.get(
            &format!("/api/webhooks/{amy_hook}/deliveries"),
            Cred::Bearer(&bob),
        )
        .await,
        app.delete(&format!("/api/webhooks/{amy_hook}"), Cred::Bearer(&bob))
            .await,
    ] {
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
    }
    let listed = app.get("/api/webhooks", Cred::Bearer(&amy)).await;
    assert_eq!(listed.json.as_array().map(Vec::len), Some(4));
    assert!(
        listed
            .json
            .as_array()
            .is_some_and(|l| l.iter().all(|w| w.get("secret").is_none())),
        "{}",
        listed.text
    );
    let admins = app
        .get(&format!("/api/webhooks/{everything}"), Cred::Bearer(&admin))
        .await;
    assert_eq!(admins.json["all"], true, "{}", admins.text);

    // Turned on again, it delivers again.
    let enabled = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/webhooks/{gone}"),
            Cred::Bearer(&amy),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.text);
    assert_eq!(enabled.json["enabled"], true);
    open_ticket(&app, &amy, "third").await;
    receiver.wait_for("/gone", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_never_reach_internal_addresses_unless_allowed() {
    let smtp = Smtp::start(None);
    let nats = Nats::start().await;
    let receiver = WebhookReceiver::start();
    let app = stack(&smtp, &nats, |o| {
        o.notify.webhooks.retry_schedule_secs = vec![];
        o.notify.webhooks.deliver_interval_ms = 100;
    })
    .await;
    let (_, amy) = app.user("amy").await;
    let port = receiver.base.rsplit(':').next().expect("port");
    for url in [
        format!("https://127.0.0.1:{port}/x"),
        "https://10.0.3.1/x".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "https://[::1]/x".to_owned(),
        format!("http://localhost:{port}/x"),
    ] {
        let reply = app
            .post("/api/webhooks", Cred::Bearer(&amy), json!({"url": url}))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{url}: {}",
            reply.text
        );
    }
    // A name is checked where it resolves, at the attempt: localhost is loopback.
    let reply = app
        .post(
            "/api/webhooks",
            Cred::Bearer(&amy),
            json!({"url": format!("https://localhost:{port}/x")}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let id = reply.json["id"].as_i64().expect("id");
    open_ticket(&app, &amy, "inside?").await;
    let mut deliveries = Value::Null;
    for _ in 0..100 {
        deliveries = app
            .get(
                &format!("/api/webhooks/{id}/deliveries"),
                Cred::Bearer(&amy),
            )
            .await
            .json;
        if deliveries[0]["state"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(deliveries[0]["state"], "failed", "{deliveries}");
    assert!(
        deliveries[0]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("internal address")),
        "{deliveries}"
    );
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );
}
