//! Owed against delivered: the events the router's receipts promised (the load generator's
//! owed file) beside what the consumer answered (its log), event by event.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;

use anyhow::Context;

/// One event id, as far as the soak saw it.
#[derive(Debug, Default, Clone)]
struct Record {
    kind: u16,
    /// Listed in a receipt of a 200.
    owed: bool,
    /// The first webhook (request number) whose receipt listed it.
    webhook: u64,
    /// 200s and 503s the consumer answered for it.
    delivered: u32,
    unavailable: u32,
}

/// Per kind of event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KindCounts {
    pub owed: u64,
    /// Owed events the consumer answered 200 for at least once.
    pub delivered: u64,
    pub missing: u64,
    /// Events delivered though no 200 listed them: stored by a webhook whose answer was lost.
    pub unacknowledged: u64,
    /// Deliveries past the first of each event.
    pub duplicates: u64,
    /// 503 answers the consumer gave.
    pub unavailable: u64,
}

#[derive(Debug, Default)]
pub struct Ledger {
    kinds: Vec<String>,
    kind_index: HashMap<String, u16>,
    events: HashMap<u128, Record>,
    /// Lines whose event id was not `evt_` and 32 hex digits.
    pub bad_lines: u64,
    /// Unix ms of the consumer's first and last 200.
    pub first_delivery_ms: Option<u64>,
    pub last_delivery_ms: Option<u64>,
}

/// An owed event the consumer never got.
#[derive(Debug, PartialEq, Eq)]
pub struct Missing {
    pub id: String,
    pub kind: String,
    pub webhook: u64,
}

impl Ledger {
    pub fn load(owed: &Path, consumer_log: &Path) -> anyhow::Result<Self> {
        let mut ledger = Self::default();
        for_each_line(owed, |line| ledger.owed_line(line))?;
        if consumer_log.exists() {
            for_each_line(consumer_log, |line| ledger.consumer_line(line))?;
        }
        Ok(ledger)
    }

    fn kind(&mut self, name: &str) -> u16 {
        if let Some(index) = self.kind_index.get(name) {
            return *index;
        }
        let index = u16::try_from(self.kinds.len()).unwrap_or(u16::MAX);
        self.kinds.push(name.to_owned());
        self.kind_index.insert(name.to_owned(), index);
        index
    }

    /// `id <TAB> kind <TAB> webhook <TAB> duplicate`.
    fn owed_line(&mut self, line: &str) {
        let mut fields = line.split('\t');
        let (Some(id), Some(kind), Some(webhook)) = (fields.next(), fields.next(), fields.next())
        else {
            self.bad_lines += 1;
            return;
        };
        let (Some(id), Ok(webhook)) = (parse_event_id(id), webhook.parse::<u64>()) else {
            self.bad_lines += 1;
            return;
        };
        let kind = self.kind(kind);
        let record = self.events.entry(id).or_default();
        if !record.owed || webhook < record.webhook {
            record.webhook = webhook;
        }
        record.owed = true;
        record.kind = kind;
    }

    /// `unix ms <TAB> status <TAB> webhook-id <TAB> kind`.
    fn consumer_line(&mut self, line: &str) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [at, status, id, kind] = fields[..] else {
            self.bad_lines += 1;
            return;
        };
        let (Ok(at), Some(id)) = (at.parse::<u64>(), parse_event_id(id)) else {
            self.bad_lines += 1;
            return;
        };
        let kind = self.kind(kind);
        let record = self.events.entry(id).or_insert_with(|| Record {
            kind,
            ..Record::default()
        });
        if status == "200" {
            record.delivered += 1;
            self.first_delivery_ms = Some(self.first_delivery_ms.map_or(at, |t| t.min(at)));
            self.last_delivery_ms = Some(self.last_delivery_ms.map_or(at, |t| t.max(at)));
        } else {
            record.unavailable += 1;
        }
    }

    /// Counts per kind, by kind name.
    pub fn by_kind(&self) -> BTreeMap<String, KindCounts> {
        let mut out: BTreeMap<String, KindCounts> = BTreeMap::new();
        for record in self.events.values() {
            let name = self.kinds.get(usize::from(record.kind)).cloned();
            let counts = out.entry(name.unwrap_or_default()).or_default();
            let got = record.delivered > 0;
            counts.owed += u64::from(record.owed);
            counts.delivered += u64::from(record.owed && got);
            counts.missing += u64::from(record.owed && !got);
            counts.unacknowledged += u64::from(!record.owed && got);
            counts.duplicates += u64::from(record.delivered.saturating_sub(1));
            counts.unavailable += u64::from(record.unavailable);
        }
        out
    }

    /// The sum over every kind.
    pub fn total(&self) -> KindCounts {
        self.by_kind()
            .into_values()
            .fold(KindCounts::default(), |mut sum, c| {
                sum.owed += c.owed;
                sum.delivered += c.delivered;
                sum.missing += c.missing;
                sum.unacknowledged += c.unacknowledged;
                sum.duplicates += c.duplicates;
                sum.unavailable += c.unavailable;
                sum
            })
    }

    /// How many events were delivered once, twice, ... (count of 200s -> events).
    pub fn delivery_counts(&self) -> BTreeMap<u32, u64> {
        let mut out = BTreeMap::new();
        for record in self.events.values().filter(|r| r.delivered > 0) {
            *out.entry(record.delivered).or_default() += 1;
        }
        out
    }

    /// Owed events never delivered, the first `limit` by webhook, and how many
    /// acknowledged webhooks they belong to.
    pub fn missing(&self, limit: usize) -> (Vec<Missing>, u64) {
        let mut missing: Vec<(u128, &Record)> = self
            .events
            .iter()
            .filter(|(_, r)| r.owed && r.delivered == 0)
            .map(|(id, r)| (*id, r))
            .collect();
        missing.sort_by_key(|(id, r)| (r.webhook, *id));
        let webhooks: HashSet<u64> = missing.iter().map(|(_, r)| r.webhook).collect();
        let listed = missing
            .iter()
            .take(limit)
            .map(|(id, r)| Missing {
                id: format!("evt_{id:032x}"),
                kind: self
                    .kinds
                    .get(usize::from(r.kind))
                    .cloned()
                    .unwrap_or_default(),
                webhook: r.webhook,
            })
            .collect();
        (listed, webhooks.len() as u64)
    }
}

/// `evt_` and 32 hex digits, as the router makes them.
pub fn parse_event_id(text: &str) -> Option<u128> {
    let hex = text.strip_prefix("evt_")?;
    if hex.len() != 32 {
        return None;
    }
    u128::from_str_radix(hex, 16).ok()
}

fn for_each_line(path: &Path, mut each: impl FnMut(&str)) -> anyhow::Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if !line.is_empty() {
            each(&line);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn id(n: u8) -> String {
        format!("evt_{}", format!("{n:02x}").repeat(16))
    }

    fn ledger(owed: &[String], consumer: &[String]) -> Ledger {
        let mut ledger = Ledger::default();
        owed.iter().for_each(|l| ledger.owed_line(l));
        consumer.iter().for_each(|l| ledger.consumer_line(l));
        ledger
    }

    #[test]
    fn owed_events_are_matched_with_what_the_consumer_answered() {
        let owed = [
            format!("{}\tmessage:text\t0\t0", id(1)),
            format!("{}\tmessage:text\t1\t0", id(2)),
            format!("{}\tcall:connect\t2\t0", id(3)),
            // A retry of webhook 2 whose first answer was lost: listed again.
            format!("{}\tcall:connect\t9\t1", id(3)),
        ];
        let consumer = [
            format!("10\t503\t{}\tmessage:text", id(1)),
            format!("11\t200\t{}\tmessage:text", id(1)),
            format!("12\t200\t{}\tmessage:text", id(1)),
            format!("13\t200\t{}\tcall:connect", id(3)),
            format!("14\t200\t{}\tother:x", id(4)),
            "garbage".to_owned(),
        ];
        let ledger = ledger(&owed, &consumer);
        let total = ledger.total();
        assert_eq!(
            total,
            KindCounts {
                owed: 3,
                delivered: 2,
                missing: 1,
                unacknowledged: 1,
                duplicates: 1,
                unavailable: 1,
            }
        );
        assert_eq!(ledger.bad_lines, 1);
        let (missing, webhooks) = ledger.missing(10);
        assert_eq!(webhooks, 1);
        assert_eq!(
            missing,
            vec![Missing {
                id: id(2),
                kind: "message:text".into(),
                webhook: 1
            }]
        );
        assert_eq!(ledger.delivery_counts(), BTreeMap::from([(1, 2), (2, 1)]));
        assert_eq!(ledger.by_kind()["call:connect"].delivered, 1);
        assert_eq!(ledger.first_delivery_ms, Some(11));
        assert_eq!(ledger.last_delivery_ms, Some(14));
    }

    #[test]
    fn event_ids_parse_only_in_the_routers_form() {
        assert_eq!(parse_event_id(&id(255)), Some(u128::MAX));
        for bad in ["evt_12", "xyz_00000000000000000000000000000000", "-"] {
            assert_eq!(parse_event_id(bad), None, "{bad}");
        }
    }
}
