//! Delivers webhooks to the router the way Meta does: signed with the app secret
//! (`X-Hub-Signature-256: sha256=<lowercase hex>` over exactly the bytes sent), first
//! attempts in the order the events happened, and each delivery not answered `200` retried
//! on its own schedule. Every attempt is recorded for `GET /sim/webhooks`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use switchboard_protocol::sim::{WebhookAttempt, WebhookRecord};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::envelope::Outgoing;
use crate::clock::now_ms;

pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// `sha256=<lowercase hex HMAC-SHA256 of body>`.
pub fn sign(secret: &SecretString, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A cheap handle: clone it into whatever produces webhooks.
#[derive(Clone)]
pub struct WebhookSender {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    url: String,
    secret: SecretString,
    retries: Vec<Duration>,
    log: Mutex<Vec<WebhookRecord>>,
    next_id: AtomicU64,
    queue: mpsc::UnboundedSender<Job>,
    shutdown: CancellationToken,
}

struct Job {
    id: u64,
    body: bytes::Bytes,
    signature: String,
}

/// What one attempt came to.
enum Outcome {
    Delivered,
    RetryLater,
}

impl WebhookSender {
    /// Starts the delivery worker; it stops when `shutdown` is cancelled.
    pub fn start(
        url: String,
        secret: SecretString,
        retries: Vec<Duration>,
        timeout: Duration,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent("facebookexternalua")
            .build()?;
        let (queue, jobs) = mpsc::unbounded_channel();
        let sender = Self {
            inner: Arc::new(Inner {
                client,
                url,
                secret,
                retries,
                log: Mutex::new(Vec::new()),
                next_id: AtomicU64::new(1),
                queue,
                shutdown,
            }),
        };
        tokio::spawn(sender.clone().deliver_in_order(jobs));
        Ok(sender)
    }

    /// Signs and queues one delivery. Never blocks; the worker sends it.
    pub fn send(&self, outgoing: Outgoing) {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let signature = sign(&self.inner.secret, &outgoing.body);
        let body = bytes::Bytes::from(outgoing.body);
        let record = WebhookRecord {
            id,
            events: outgoing.events,
            call_id: outgoing.call_id,
            signature: signature.clone(),
            body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
            attempts: Vec::new(),
            delivered: false,
        };
        tracing::debug!(id, events = ?record.events, "webhook queued");
        self.with_log(|log| log.push(record));
        let job = Job {
            id,
            body,
            signature,
        };
        if self.inner.queue.send(job).is_err() {
            tracing::warn!(id, "webhook not sent: the simulator is shutting down");
        }
    }

    /// Everything sent so far, oldest first.
    pub fn records(&self) -> Vec<WebhookRecord> {
        self.with_log(|log| log.clone())
    }

    fn with_log<T>(&self, f: impl FnOnce(&mut Vec<WebhookRecord>) -> T) -> T {
        let mut log = self
            .inner
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut log)
    }

    async fn deliver_in_order(self, mut jobs: mpsc::UnboundedReceiver<Job>) {
        loop {
            let job = tokio::select! {
                () = self.inner.shutdown.cancelled() => return,
                job = jobs.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
            };
            if let Outcome::RetryLater = self.try_deliver_once(&job).await {
                tokio::spawn(self.clone().retry(job));
            }
        }
    }

    /// Meta's retries for one delivery, independent of later deliveries.
    async fn retry(self, job: Job) {
        for wait in self.inner.retries.clone() {
            tokio::select! {
                () = self.inner.shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            if let Outcome::Delivered = self.try_deliver_once(&job).await {
                return;
            }
        }
        tracing::warn!(id = job.id, "webhook given up after all retries");
    }

    #[tracing::instrument(name = "deliver webhook", skip_all, fields(id = job.id))]
    async fn try_deliver_once(&self, job: &Job) -> Outcome {
        let result = self
            .inner
            .client
            .post(&self.inner.url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, &job.signature)
            .body(job.body.clone())
            .send()
            .await;
        let attempt = match &result {
            Ok(response) => WebhookAttempt {
                at_ms: now_ms(),
                status: Some(response.status().as_u16()),
                error: None,
            },
            Err(error) => WebhookAttempt {
                at_ms: now_ms(),
                status: None,
                error: Some(error.to_string()),
            },
        };
        let delivered = attempt.status == Some(200);
        tracing::debug!(status = ?attempt.status, error = ?attempt.error, "webhook attempt");
        self.with_log(|log| {
            if let Some(record) = log.iter_mut().find(|record| record.id == job.id) {
                record.attempts.push(attempt);
                record.delivered |= delivered;
            }
        });
        if delivered {
            Outcome::Delivered
        } else {
            Outcome::RetryLater
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_lowercase_hex_hmac_sha256() {
        let secret = SecretString::from("test-app-secret");
        let body = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/meta-webhooks/01-text-message.json"
        ))
        .unwrap();
        assert_eq!(
            sign(&secret, &body),
            "sha256=4eda601bc0e7a0607b2709636ec9ddec36ae9aa299886b9b50b573b84ef23f0e"
        );
    }
}
