//! The store under pressure, through the real server: a full writer queue and a write that
//! does not complete in time answer `503 store_error` (Meta sends the delivery again) and
//! leave nothing half-stored; a prune of a large backlog lets webhooks through; the WAL is
//! truncated once ingest goes idle; jobs of a removed route are failed at start-up and can
//! be retried once it is back; `/metrics` on a listener of its own.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use switchboard::config::Settings;
use switchboard::startup::Application;
use switchboard_testkit::meta::sign;
use switchboard_testkit::receiver::Receiver;
use switchboard_testkit::server::Running;
use switchboard_testkit::wait::{poll, PATIENCE};

use crate::helpers::{config, route, spawn_app, spawn_app_in, text_message, TestApp};

/// The store's write lock, held from outside as another process could hold it: the
/// server's writer waits behind it until it is released.
struct WriteLock(Connection);

impl WriteLock {
    fn take(data_dir: &Path) -> Self {
        let conn = Connection::open(data_dir.join("switchboard.db")).unwrap();
        conn.busy_timeout(PATIENCE).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        Self(conn)
    }

    fn release(self) {
        self.0.execute_batch("ROLLBACK").unwrap();
    }
}

async fn metrics(app: &TestApp) -> String {
    app.client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits until `/metrics` has `line`.
async fn wait_for_metric(app: &TestApp, line: &str) {
    let seen = poll(Duration::from_millis(20), async || {
        metrics(app).await.contains(line).then_some(())
    })
    .await;
    assert!(seen.is_some(), "`{line}` never showed in /metrics");
}

/// The rows a webhook's body left: its delivery, its events, its places in the delivery.
fn rows_of(app: &TestApp, body: &[u8]) -> (i64, i64, i64) {
    let conn = Connection::open(app.data_dir.join("switchboard.db")).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [body], |row| row.get(0)).unwrap() };
    (
        count("SELECT COUNT(*) FROM deliveries WHERE body = ?1"),
        count(
            "SELECT COUNT(*) FROM events WHERE delivery_id IN
             (SELECT id FROM deliveries WHERE body = ?1)",
        ),
        count(
            "SELECT COUNT(*) FROM delivery_events WHERE delivery_id IN
             (SELECT id FROM deliveries WHERE body = ?1)",
        ),
    )
}

async fn post(app: &TestApp, body: Vec<u8>) -> reqwest::Response {
    let signature = sign(&body);
    app.post_webhook(body, Some(&signature)).await
}

async fn error_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_full_write_queue_refuses_the_next_webhook_with_503_and_nothing_is_stored_half() {
    let app = spawn_app("[store]\nwrite_queue = 3\nwrite_timeout = \"60s\"\n").await;
    // The server is up and its start-up writes are done.
    assert_eq!(post(&app, text_message(1)).await.status(), 200);
    let lock = WriteLock::take(&app.data_dir);
    let waiting: Vec<_> = (2..=4)
        .map(|n| {
            let (client, address) = (app.client.clone(), app.address.clone());
            tokio::spawn(async move {
                let body = text_message(n);
                let signature = sign(&body);
                let response = client
                    .post(format!("{address}/webhook"))
                    .header("X-Hub-Signature-256", signature)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                (n, response.status().as_u16())
            })
        })
        .collect();
    wait_for_metric(&app, "switchboard_store_writes_waiting 3").await;

    let refused = post(&app, text_message(5)).await;

    assert_eq!(refused.status(), 503);
    assert_eq!(error_code(refused).await, "store_error");
    lock.release();
    let mut answers = Vec::new();
    for task in waiting {
        answers.push(task.await.unwrap());
    }
    // Waiting behind the lock, each is answered once it is released: stored whole, or (had
    // the writer given up on the lock) refused and absent, never anything between.
    for (n, status) in answers {
        let rows = rows_of(&app, &text_message(n));
        match status {
            200 => assert_eq!(rows, (1, 1, 1), "webhook {n} is stored whole"),
            503 => assert_eq!(rows, (0, 0, 0), "webhook {n} left nothing"),
            other => panic!("webhook {n} was answered {other}"),
        }
    }
    assert_eq!(rows_of(&app, &text_message(5)), (0, 0, 0));
    let text = metrics(&app).await;
    for line in [
        "switchboard_store_writes_refused_total{reason=\"queue_full\"} 1",
        "switchboard_webhook_deliveries_total{outcome=\"store_error\"} 1",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
    // Meta sends the refused delivery again: it is taken in full.
    assert_eq!(post(&app, text_message(5)).await.status(), 200);
    assert_eq!(rows_of(&app, &text_message(5)), (1, 1, 1));
}

#[tokio::test]
async fn a_write_that_does_not_complete_in_time_is_refused_with_503_and_never_stored() {
    let app = spawn_app("[store]\nwrite_timeout = \"1s\"\n").await;
    assert_eq!(post(&app, text_message(1)).await.status(), 200);
    let lock = WriteLock::take(&app.data_dir);

    let late = post(&app, text_message(2)).await;

    assert_eq!(late.status(), 503);
    assert_eq!(error_code(late).await, "store_error");
    lock.release();
    // The refused write had not begun, so it never will: Meta's retry finds no trace of it.
    let again = post(&app, text_message(2)).await;
    assert_eq!(again.status(), 200);
    let receipt: serde_json::Value = again.json().await.unwrap();
    assert_eq!(receipt["events"][0]["duplicate"], false);
    assert_eq!(rows_of(&app, &text_message(2)), (1, 1, 1));
    let text = metrics(&app).await;
    for line in [
        "switchboard_store_writes_refused_total{reason=\"timeout\"} 1",
        "switchboard_webhook_deliveries_total{outcome=\"store_error\"} 1",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}

/// Fills the store in `data_dir` with `count` deliveries received 40 days ago (past the
/// default 30 days' retention), each with one event and one job delivered back then.
fn seed_old_backlog(data_dir: &Path, count: i64) {
    let conn = Connection::open(data_dir.join("switchboard.db")).unwrap();
    let old = switchboard::domain::clock::now_millis() - 40 * 24 * 3_600_000;
    conn.execute_batch("BEGIN").unwrap();
    let numbers = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)";
    for insert in [
        "INSERT INTO deliveries (id, received_at, signature, body, event_count)
         SELECT i + 1000000, ?2, 'sha256=00', randomblob(600), 1 FROM n",
        "INSERT INTO events (id, delivery_id, kind, payload, received_at)
         SELECT printf('evt_%032x', i), i + 1000000, 'message:text', randomblob(300), ?2 FROM n",
        "INSERT INTO delivery_events (delivery_id, seq, event_id, duplicate)
         SELECT i + 1000000, 0, printf('evt_%032x', i), ?2 < 0 FROM n",
        "INSERT INTO jobs (route, mode, event_id, delivery_id, state, attempts, created_at, updated_at)
         SELECT 'crm', 'event', printf('evt_%032x', i), i + 1000000, 'delivered', 1, ?2, ?2 FROM n",
    ] {
        conn.execute(&format!("{numbers} {insert}"), rusqlite::params![count, old])
            .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
}

/// Whether the `count` deliveries [`seed_old_backlog`] left are gone; a quick look, however
/// many there were.
fn backlog_is_gone(data_dir: &Path, count: i64) -> bool {
    let conn = Connection::open(data_dir.join("switchboard.db")).unwrap();
    conn.query_row(
        "SELECT NOT EXISTS (SELECT 1 FROM deliveries WHERE id > 1000000 AND id <= ?1)",
        [1_000_000 + count],
        |row| row.get(0),
    )
    .unwrap()
}

#[tokio::test]
async fn a_prune_of_a_large_backlog_lets_webhooks_through_and_every_one_is_stored() {
    let dir = tempfile::TempDir::new().unwrap();
    let data_dir = dir.path().join("data");
    spawn_app_in(&data_dir, "").await.stop().await;
    let backlog = 100_000;
    seed_old_backlog(&data_dir, backlog);

    // The prune starts with the server; webhooks arrive while it works through the backlog.
    let app = spawn_app_in(&data_dir, "").await;
    let senders: Vec<_> = (0..8_u64)
        .map(|sender| {
            let (client, address) = (app.client.clone(), app.address.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for n in (0..25).map(|i| sender * 100 + i) {
                    let body = text_message(n);
                    let signature = sign(&body);
                    let response = client
                        .post(format!("{address}/webhook"))
                        .header("X-Hub-Signature-256", signature)
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    statuses.push((n, response.status().as_u16()));
                }
                statuses
            })
        })
        .collect();
    let mut answered = Vec::new();
    for sender in senders {
        answered.extend(sender.await.unwrap());
    }

    assert_eq!(answered.len(), 200);
    for (n, status) in &answered {
        assert_eq!(*status, 200, "webhook {n}");
    }
    // And the whole backlog goes, leaving the new deliveries alone.
    let pruned = poll(Duration::from_millis(200), async || {
        backlog_is_gone(&data_dir, backlog).then_some(())
    })
    .await;
    assert!(pruned.is_some(), "the backlog was not pruned");
    for (n, _) in &answered {
        assert_eq!(rows_of(&app, &text_message(*n)), (1, 1, 1), "webhook {n}");
    }
    assert_eq!(app.count_rows("events"), 200);
    assert_eq!(app.count_rows("delivery_events"), 200);
    assert_eq!(app.count_rows("jobs"), 0);
}

#[tokio::test]
async fn once_ingest_is_idle_the_wal_is_truncated() {
    let app = spawn_app("").await;
    for n in 0..50 {
        assert_eq!(post(&app, text_message(n)).await.status(), 200);
    }
    let wal = app.data_dir.join("switchboard.db-wal");
    let truncated = poll(Duration::from_millis(100), async || {
        let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        (size == 0).then_some(())
    })
    .await;
    assert!(truncated.is_some(), "the WAL still holds frames");
    assert_eq!(
        app.count_rows("deliveries"),
        50,
        "what the WAL held is in the database"
    );
}

#[tokio::test]
async fn jobs_of_a_removed_route_are_failed_at_start_up_and_retryable_once_it_is_back() {
    let dir = tempfile::TempDir::new().unwrap();
    let data_dir = dir.path().join("data");
    // crm's consumer is down: its job waits for a retry.
    let down = route("crm", r#"["message"]"#, "http://127.0.0.1:9/hook", "");
    let app = spawn_app_in(&data_dir, &down).await;
    app.post_signed(text_message(1)).await;
    let retrying = poll(Duration::from_millis(50), async || {
        let jobs = app.jobs("state=pending").await;
        jobs.first()
            .filter(|job| job["attempts"] == 1)
            .map(|job| job["id"].as_i64().unwrap())
    })
    .await
    .expect("the first attempt failed and the job waits for the next");
    app.stop().await;

    // The route is removed from the configuration.
    let app = spawn_app_in(&data_dir, "").await;
    let failed = app.jobs("state=failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["id"], retrying);
    assert_eq!(failed[0]["last_error"], "route removed");
    assert!(app.jobs("state=pending").await.is_empty());
    let refused = app
        .admin_post(&format!("/api/deliveries/{retrying}/retry"))
        .await;
    assert_eq!(refused.status(), 409, "no worker would send it");
    app.stop().await;

    // The route is back, its consumer up: the job is retried and delivered.
    let consumer = Receiver::start().await;
    let back = route("crm", r#"["message"]"#, &consumer.url, "");
    let app = spawn_app_in(&data_dir, &back).await;
    assert_eq!(
        app.jobs("state=failed").await.len(),
        1,
        "still failed until retried"
    );
    let retried = app
        .admin_post(&format!("/api/deliveries/{retrying}/retry"))
        .await;
    assert_eq!(retried.status(), 200);
    consumer.wait_for(1).await;
    app.wait_until_idle().await;
    let delivered = app.jobs("state=delivered").await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["id"], retrying);
}

#[tokio::test]
async fn metrics_listen_serves_metrics_there_and_not_on_the_main_listener() {
    let dir = tempfile::TempDir::new().unwrap();
    let toml = config(&dir.path().join("data"), "").toml().replacen(
        "[server]\n",
        "[server]\nmetrics_listen = \"127.0.0.1:0\"\n",
        1,
    );
    let app = Application::build(Settings::from_toml(&toml).unwrap())
        .await
        .unwrap();
    let metrics_port = app.metrics_port().expect("a metrics listener");
    let router = Running::spawn(app);
    let client = reqwest::Client::new();
    let body = text_message(1);
    let signature = sign(&body);
    let stored = client
        .post(format!("{}/webhook", router.url))
        .header("X-Hub-Signature-256", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 200);

    let main = client
        .get(format!("{}/metrics", router.url))
        .send()
        .await
        .unwrap();
    let elsewhere = client
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap();

    assert_eq!(main.status(), 404);
    assert_eq!(elsewhere.status(), 200);
    let text = elsewhere.text().await.unwrap();
    assert!(
        text.contains("switchboard_webhook_deliveries_total{outcome=\"accepted\"} 1"),
        "{text}"
    );
    // Only the metrics are there; the rest stays on the main listener.
    for path in ["/webhook", "/healthz", "/api/me"] {
        let response = client
            .get(format!("http://127.0.0.1:{metrics_port}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let healthy = client
        .get(format!("{}/healthz", router.url))
        .send()
        .await
        .unwrap();
    assert_eq!(healthy.status(), 200);
    router.stop().await;
}
