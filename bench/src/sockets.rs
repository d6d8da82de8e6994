//! Idle agent sockets, held open so a script can read the router's memory with them.
//!
//! Opens `count` sockets on `/ws` (each waits for its `hello`), prints `connected N sockets`
//! once all are up, then reads them (answering the router's pings, noticing closes) until the
//! hold time passes, SIGINT/SIGTERM arrives or, if asked, stdin closes; then closes them all.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::{oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::ws::{self, Socket, Tokens};

#[derive(Debug)]
pub struct SocketsOptions {
    pub url: String,
    pub tokens: Tokens,
    pub count: usize,
    /// Sockets being opened at once.
    pub parallel: usize,
    pub connect_timeout: Duration,
    /// `None`: until a signal (or stdin closing).
    pub hold: Option<Duration>,
    pub until_stdin_closes: bool,
}

#[derive(Debug, Serialize)]
pub struct SocketsReport {
    pub bench: &'static str,
    pub url: String,
    pub sockets: usize,
    /// Distinct agents the hellos named.
    pub agents: usize,
    pub connect_s: f64,
    pub held_s: f64,
    /// What ended the hold: `time`, `signal` or `stdin`.
    pub ended_by: &'static str,
    /// Sockets the router closed (or that failed) during the hold.
    pub closed_by_router: u64,
    pub first_close: Option<String>,
    /// Text frames received after the hellos, over all sockets (idle: none expected).
    pub events: u64,
}

#[derive(Default)]
struct Counters {
    closed_by_router: AtomicU64,
    events: AtomicU64,
    first_close: std::sync::Mutex<Option<String>>,
}

impl Counters {
    fn note_close(&self, how: String) {
        self.closed_by_router.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first_close
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        first.get_or_insert(how);
    }
}

async fn hold(mut socket: Socket, counters: Arc<Counters>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            message = socket.next() => match message {
                Some(Ok(Message::Text(_))) => {
                    counters.events.fetch_add(1, Ordering::Relaxed);
                }
                Some(Ok(Message::Close(frame))) => {
                    counters.note_close(format!("closed by the router: {frame:?}"));
                    return;
                }
                // Pings are answered by tungstenite on the next read.
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    counters.note_close(format!("socket error: {e}"));
                    return;
                }
                None => {
                    counters.note_close("socket ended".into());
                    return;
                }
            },
            _ = stop.changed() => break,
        }
    }
    ws::close(socket, Duration::from_secs(5)).await;
}

/// Resolves when stdin reaches end of file (read on a thread of its own: std's stdin is
/// blocking).
fn stdin_closed() -> oneshot::Receiver<()> {
    let (closed, receiver) = oneshot::channel();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = closed.send(());
    });
    receiver
}

pub async fn run(options: SocketsOptions) -> anyhow::Result<SocketsReport> {
    // Registered first, so a signal sent as soon as the "connected" line shows is not fatal.
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let start = Instant::now();
    let sockets = ws::open_many(
        &options.url,
        &options.tokens,
        options.count,
        options.parallel,
        options.connect_timeout,
    )
    .await?;
    let connect_s = start.elapsed().as_secs_f64();
    let mut agents: Vec<&str> = sockets.iter().map(|(_, agent)| agent.as_str()).collect();
    agents.sort_unstable();
    agents.dedup();
    let agents = agents.len();

    let counters = Arc::new(Counters::default());
    let (stop, stopped) = watch::channel(false);
    let holders: Vec<_> = sockets
        .into_iter()
        .map(|(socket, _)| tokio::spawn(hold(socket, counters.clone(), stopped.clone())))
        .collect();
    // Scripts wait for this line before reading the router's memory.
    println!(
        "connected {} sockets ({agents} agents) in {connect_s:.2} s",
        options.count
    );

    let held_from = Instant::now();
    let stdin = async {
        if options.until_stdin_closes {
            let _ = stdin_closed().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let time = async {
        match options.hold {
            Some(hold) => tokio::time::sleep(hold).await,
            None => std::future::pending::<()>().await,
        }
    };
    let ended_by = tokio::select! {
        () = time => "time",
        _ = terminate.recv() => "signal",
        _ = interrupt.recv() => "signal",
        () = stdin => "stdin",
    };
    let held_s = held_from.elapsed().as_secs_f64();
    let _ = stop.send(true);
    for holder in holders {
        holder.await?;
    }
    let first_close = counters
        .first_close
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    Ok(SocketsReport {
        bench: "sockets",
        url: options.url,
        sockets: options.count,
        agents,
        connect_s,
        held_s,
        ended_by,
        closed_by_router: counters.closed_by_router.load(Ordering::Relaxed),
        first_close,
        events: counters.events.load(Ordering::Relaxed),
    })
}

impl SocketsReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| unreachable!("a report always serialises"))
    }
}

impl fmt::Display for SocketsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sockets: {} on {} ({} agents), opened in {:.2} s, held {:.1} s (ended by {}), \
             closed by the router meanwhile {}, events received {}",
            self.sockets,
            self.url,
            self.agents,
            self.connect_s,
            self.held_s,
            self.ended_by,
            self.closed_by_router,
            self.events
        )?;
        if let Some(how) = &self.first_close {
            write!(f, "\n  first close: {how}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::fake_router::fake_router;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn holds_every_socket_for_the_given_time_then_closes_them() {
        let (_, ws_url) = fake_router(None).await;
        let report = run(SocketsOptions {
            url: ws_url,
            tokens: Tokens::Numbered {
                prefix: "t-".into(),
                count: 3,
            },
            count: 7,
            parallel: 2,
            connect_timeout: Duration::from_secs(5),
            hold: Some(Duration::from_millis(300)),
            until_stdin_closes: false,
        })
        .await
        .unwrap();

        assert_eq!((report.sockets, report.agents), (7, 3));
        assert_eq!(report.ended_by, "time");
        assert!(report.held_s >= 0.3);
        assert_eq!((report.closed_by_router, report.first_close), (0, None));
        // The fake sends each socket two frames after its hello.
        assert_eq!(report.events, 14);
    }

    #[tokio::test]
    async fn a_refused_socket_fails_the_run_with_the_status() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (mut stream, _) = listener.accept().await.unwrap();
            let _ = stream
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy")
                .await;
        });
        let error = run(SocketsOptions {
            url,
            tokens: Tokens::One("x".into()),
            count: 1,
            parallel: 1,
            connect_timeout: Duration::from_secs(5),
            hold: Some(Duration::ZERO),
            until_stdin_closes: false,
        })
        .await
        .unwrap_err();
        assert!(format!("{error:#}").contains("503"), "{error:#}");
    }
}
