//! The amplification delivery: one signed delivery of about 2 MB whose 1,000 status items
//! share one change `value`. A router that copies the shared value into every item's event
//! turns 2 MB into 2 GB; this posts such deliveries and reports how long each answer took,
//! what the receipt held, and the router's resident memory (VmRSS, and VmHWM, its peak).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};

use crate::bodies::signed;
use crate::client::{Connection, Target};
use crate::rss;

/// Where the bulk of the delivery sits, beside the status items.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// In a key of the change's `value` that is not Meta's: shared by every item, needed by
    /// none.
    Extra,
    /// In `contacts`: one contact per status item, each with a long profile name; every
    /// item needs only its own.
    Contacts,
    /// In `value.errors`, context every item of a change carries: no item's event can be
    /// small, so the delivery is one `other:oversize` event.
    Errors,
}

#[derive(Debug)]
pub struct AmplifyOptions {
    pub url: String,
    pub secret: String,
    /// The router's process, for its memory; none to skip it.
    pub pid: Option<u32>,
    pub shape: Shape,
    /// Status items in the delivery.
    pub items: usize,
    /// The delivery's size, about.
    pub bytes: usize,
    /// Deliveries posted one after another, each with new ids.
    pub repeat: u32,
    pub timeout: Duration,
    pub run_id: u32,
}

/// One delivery's answer.
#[derive(Debug, Serialize)]
pub struct Post {
    pub bytes: usize,
    pub status: u16,
    pub answer_ms: f64,
    /// Events in the receipt, by kind.
    pub events: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub shape: Shape,
    pub items: usize,
    pub posts: Vec<Post>,
    /// The router's memory before the first post and after the last answer.
    pub before: Option<rss::Memory>,
    pub after: Option<rss::Memory>,
}

pub async fn run(options: AmplifyOptions) -> anyhow::Result<Report> {
    let target = Target::parse(&options.url).await?;
    let mut connection = Connection::new(target, options.timeout);
    let memory = |pid: Option<u32>| pid.map(rss::read).transpose();
    let before = memory(options.pid)?;
    let mut posts = Vec::new();
    for n in 0..options.repeat {
        let body = delivery(&options, n);
        let bytes = body.len();
        let request = signed(&options.secret, body);
        let started = Instant::now();
        let (status, answer) = connection
            .post_reading(&request)
            .await
            .with_context(|| format!("posting delivery {n}"))?;
        let answer_ms = started.elapsed().as_secs_f64() * 1000.0;
        posts.push(Post {
            bytes,
            status: status.as_u16(),
            answer_ms,
            events: receipt_kinds(&answer),
        });
    }
    Ok(Report {
        shape: options.shape,
        items: options.items,
        posts,
        before,
        after: memory(options.pid)?,
    })
}

fn receipt_kinds(answer: &[u8]) -> BTreeMap<String, u64> {
    let mut kinds = BTreeMap::new();
    let receipt: Value = serde_json::from_slice(answer).unwrap_or(Value::Null);
    for event in receipt["events"].as_array().into_iter().flatten() {
        let kind = event["kind"].as_str().unwrap_or("?").to_owned();
        *kinds.entry(kind).or_insert(0) += 1;
    }
    kinds
}

/// Delivery `n` of this run: `items` delivered statuses of one change, ids unique to (run,
/// n, item), and the rest of `bytes` where `shape` says.
pub fn delivery(options: &AmplifyOptions, n: u32) -> Bytes {
    let items = options.items.max(1);
    let statuses: Vec<Value> = (0..items).map(|i| status(options.run_id, n, i)).collect();
    let mut value = json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": [contact(0, "Asha Verma")],
        "statuses": statuses,
    });
    let so_far = serde_json::to_vec(&value).map_or(0, |v| v.len());
    let bulk = options.bytes.saturating_sub(so_far + 200);
    match options.shape {
        Shape::Extra => value["shared"] = json!(filler_lines(bulk)),
        Shape::Contacts => {
            let overhead = serde_json::to_vec(&contact(items, "")).map_or(0, |c| c.len() + 1);
            let name_len = (bulk / items).saturating_sub(overhead);
            value["contacts"] = (0..items).map(|i| contact(i, &filler(name_len))).collect();
        }
        Shape::Errors => {
            value["errors"] = json!([{
                "code": 131000,
                "title": "Something went wrong",
                "error_data": {"details": filler(bulk)},
            }]);
        }
    }
    let root = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}],
    });
    Bytes::from(serde_json::to_vec(&root).unwrap_or_default())
}

/// The phone number of the `i`th user; status `i` is addressed to it.
fn phone(i: usize) -> String {
    format!("1212{i:07}")
}

fn contact(i: usize, name: &str) -> Value {
    json!({"profile": {"name": name}, "wa_id": phone(i), "user_id": format!("US.{:020}", i)})
}

fn status(run_id: u32, n: u32, i: usize) -> Value {
    json!({
        "id": format!("wamid.AMPLIFY{run_id:08X}{n:06X}{i:06X}"),
        "status": "delivered",
        "timestamp": "1753115160",
        "recipient_id": phone(i),
        "recipient_user_id": format!("US.{:020}", i),
        "conversation": {"id": format!("conv-{i}"), "origin": {"type": "service"}},
        "pricing": {"billable": true, "pricing_model": "PMP", "category": "service"},
    })
}

fn filler(len: usize) -> String {
    "abcdefghijklmnopqrstuvwxyz0123456789"
        .chars()
        .cycle()
        .take(len)
        .collect()
}

/// About `len` bytes as an array of 1 KiB strings.
fn filler_lines(len: usize) -> Vec<String> {
    (0..len.div_ceil(1024)).map(|_| filler(1024)).collect()
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "amplification delivery, shape {:?}, {} status items",
            self.shape, self.items
        )?;
        for (n, post) in self.posts.iter().enumerate() {
            let mut kinds = String::new();
            for (kind, count) in &post.events {
                let _ = write!(kinds, " {kind} x{count}");
            }
            writeln!(
                f,
                "  post {n}: {} bytes -> {} in {:.1} ms;{kinds}",
                post.bytes, post.status, post.answer_ms
            )?;
        }
        for (label, memory) in [("before", &self.before), ("after", &self.after)] {
            if let Some(m) = memory {
                writeln!(
                    f,
                    "  router {label}: VmRSS {} KiB, VmHWM {} KiB",
                    m.vm_rss_kib, m.vm_hwm_kib
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(shape: Shape) -> AmplifyOptions {
        AmplifyOptions {
            url: String::new(),
            secret: String::new(),
            pid: None,
            shape,
            items: 1000,
            bytes: 2_000_000,
            repeat: 1,
            timeout: Duration::from_secs(1),
            run_id: 7,
        }
    }

    #[test]
    fn every_shape_is_about_the_size_asked_with_every_item_in_one_change() {
        for shape in [Shape::Extra, Shape::Contacts, Shape::Errors] {
            let body = delivery(&options(shape), 0);
            assert!(
                (1_950_000..=2_050_000).contains(&body.len()),
                "{shape:?}: {}",
                body.len()
            );
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let changes = json["entry"][0]["changes"].as_array().map_or(0, Vec::len);
            let statuses = json["entry"][0]["changes"][0]["value"]["statuses"]
                .as_array()
                .map_or(0, Vec::len);
            assert_eq!((changes, statuses), (1, 1000), "{shape:?}");
        }
    }

    #[test]
    fn each_delivery_of_a_run_has_its_own_ids() {
        let a = delivery(&options(Shape::Extra), 0);
        let b = delivery(&options(Shape::Extra), 1);
        assert_ne!(a, b);
        assert_eq!(a.len(), b.len());
    }
}
