//! What an ingest run is asked to do: where to post, how fast, for how long.

use std::sync::Arc;
use std::time::Duration;

use super::request_log::RequestLog;
use crate::bodies::Mix;

/// How requests are paced.
#[derive(Clone, Copy, Debug)]
pub enum Load {
    /// Open loop at this many requests per second.
    Rate(f64),
    /// Closed loop: every connection busy all the time.
    Saturate,
}

#[derive(Debug)]
pub struct IngestOptions {
    /// `http://host:port/path` of the router's webhook endpoint.
    pub url: String,
    pub secret: String,
    pub load: Load,
    pub duration: Duration,
    pub warmup: Duration,
    pub connections: usize,
    pub timeout: Duration,
    /// Makes this run's event ids differ from every other run's.
    pub run_id: u32,
    /// Which fixtures the bodies are made from.
    pub mix: Mix,
    /// Fixed rate only: where each request's due and send times and outcome are noted, for
    /// measurements that follow a request past its answer (the push benchmark).
    pub log: Option<Arc<RequestLog>>,
}
