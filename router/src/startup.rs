//! Building the application: store, routes, workers and the HTTP server, on any port.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{dev::Server, web, App, HttpServer};
use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing_actix_web::TracingLogger;

use crate::agents::auth::{Access, Agents, AllowedOrigins};
use crate::agents::dialer::{DialerSettings, TurnMint};
use crate::agents::hub::{Hub, HubLimits};
use crate::agents::revocation::Revocations;
use crate::agents::session::SessionKey;
use crate::agents::throttle::LoginThrottle;
use crate::calls::Calling;
use crate::config::{CallSettings, MetaSettings, ServerSettings, Settings, StoreSettings};
use crate::domain::clock::{now_millis, now_secs};
use crate::domain::delivery::Pruned;
use crate::fanout::admin::Deliveries;
use crate::fanout::routes::Routes;
use crate::fanout::{self, Wakers};
use crate::http;
use crate::ingest::{Ingest, WebhookAuth, WebhookLimits};
use crate::meta::graph::GraphClient;
use crate::state::AppState;
use crate::store::sqlite::{OpenMode, Options, QueueLimits};
use crate::store::{Readiness, SqliteStore, Store};
use crate::telemetry::{Metrics, RequestSpan};

pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics` on `server.metrics_listen`, when set: its port and server.
    metrics: Option<(u16, Server)>,
    shutdown: CancellationToken,
    workers: Vec<JoinHandle<()>>,
    /// Released to the next server once this one has stopped.
    store: SqliteStore,
}

fn webhook_auth(server: &ServerSettings, meta: &MetaSettings) -> Arc<WebhookAuth> {
    Arc::new(WebhookAuth {
        secrets: meta.app_secrets.clone(),
        verify_token: meta.verify_token.clone(),
        max_body_bytes: server.max_body_bytes,
    })
}

fn webhook_limits(server: &ServerSettings) -> Arc<WebhookLimits> {
    Arc::new(WebhookLimits::new(
        server.max_webhooks_in_flight,
        server.delivery_limits,
        server.ignore_replays.then_some(server.retention),
    ))
}

impl Application {
    /// Opens the store, starts the delivery workers and binds the listener. With
    /// `listen = "127.0.0.1:0"` the OS picks the port; [`Application::port`] tells which.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let Settings {
            server,
            meta,
            calls,
            agents,
            routes,
            store: store_settings,
        } = settings;
        let metrics = Metrics::new();
        let sqlite = open_store(&server, store_settings, &metrics)?;
        let store: Arc<dyn Store> = Arc::new(sqlite.clone());
        let shutdown = CancellationToken::new();
        let hub = Hub::new(
            HubLimits {
                max_connections: server.max_websockets,
                max_per_agent: server.max_websockets_per_agent,
            },
            shutdown.child_token(),
        );
        let access = access(&server, agents, &store, &hub).await?;
        let calling = Calling::new(
            store.clone(),
            graph_client(&meta, calls.graph_timeout)?,
            Arc::new(hub.clone()),
            calls.permission_style.clone(),
        );
        let wakers = Wakers::for_routes(&routes);
        let deliveries = Deliveries::new(store.clone(), routes.clone(), wakers.clone());
        // Before any worker claims: jobs no worker would ever claim are failed, visibly.
        deliveries.fail_removed_routes().await?;
        let workers = spawn_background(
            &calling,
            &store,
            &routes,
            &wakers,
            &metrics,
            server.retention,
            &shutdown,
        )?;

        let ingest = Ingest {
            auth: webhook_auth(&server, &meta),
            limits: webhook_limits(&server),
            store: store.clone(),
            routes: routes.clone(),
            wakers: wakers.clone(),
            metrics: metrics.clone(),
            calling: Some(calling.clone()),
        };
        let state = web::Data::new(AppState {
            ingest,
            deliveries,
            calling,
            access,
            dialer: dialer_settings(&server, &meta, &calls),
            hub,
            sockets: server.websocket_limits,
            readiness: Readiness::new(store),
            metrics,
        });
        let metrics = server
            .metrics_listen
            .map(|address| serve_metrics(address, state.clone()))
            .transpose()?;
        let (port, server) = serve(&server, state)?;
        Ok(Self {
            port,
            server,
            metrics,
            shutdown,
            workers,
            store: sqlite,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` is served on when `server.metrics_listen` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// Stops the server from elsewhere, as a signal would; `run_until_stopped` then returns.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            server: self.server.handle(),
            metrics: self.metrics.as_ref().map(|(_, server)| server.handle()),
            shutdown: self.shutdown.clone(),
        }
    }

    /// Serves until SIGINT or SIGTERM (or [`Application::stopper`]): then agents'
    /// sockets are closed at once (so dialers reconnect elsewhere without waiting),
    /// requests under way finish, and the workers stop.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let stopper = self.stopper();
        tokio::spawn(async move {
            stop_signal().await;
            tracing::info!("stopping");
            stopper.stop().await;
        });
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            (handle, tokio::spawn(server))
        });
        let result = self.server.await;
        self.shutdown.cancel();
        if let Some((handle, serving)) = metrics {
            handle.stop(true).await;
            let _ = serving.await;
        }
        for worker in self.workers {
            let _ = worker.await;
        }
        self.store.release_lock();
        result.context("the HTTP server failed")
    }
}

/// Binds `server.listen` and starts serving the API, the webhook and the dialer, every
/// answer with the security headers (HSTS too when the public URL is `https`), every
/// request's client resolved first (through `server.trusted_proxies`); the bound port and
/// the running server.
fn serve(server: &ServerSettings, state: web::Data<AppState>) -> anyhow::Result<(u16, Server)> {
    let address = server.listen;
    let static_dir = server.static_dir.clone();
    let https = server.https();
    let body_timeout = server.body_timeout;
    let proxies = server.trusted_proxies.clone();
    let metrics_elsewhere = server.metrics_listen.is_some();
    let listener =
        TcpListener::bind(address).with_context(|| format!("cannot listen on {address}"))?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(move |req, next| {
                http::deadline::enforce(body_timeout, req, next)
            }))
            .wrap(http::headers::security_headers(https))
            .wrap(TracingLogger::<RequestSpan>::new())
            .wrap(from_fn({
                let proxies = proxies.clone();
                move |req, next| http::auth::resolve_client(proxies.clone(), req, next)
            }))
            .app_data(state.clone())
            .configure(|cfg| http::configure(cfg, &static_dir, !metrics_elsewhere))
    })
    // Pushes to agents are small frames one way; with Nagle's algorithm each would wait
    // for the delayed ACK of the one before.
    .tcp_nodelay(true)
    // A request's head must arrive within this, its body within `body_timeout` (408 for
    // either), and an idle kept-alive connection is closed after KEEP_ALIVE.
    .client_request_timeout(HEAD_TIMEOUT.min(body_timeout))
    .keep_alive(KEEP_ALIVE)
    // Signals are handled in `run_until_stopped`, which closes agents' sockets first.
    .disable_signals()
    .listen(listener)?
    .shutdown_timeout(10)
    .run();
    tracing::info!(
        address = %format!("{}:{port}", address.ip()),
        "listening on {}:{port}",
        address.ip()
    );
    Ok((port, server))
}

/// Binds `address` and serves `/metrics` alone there (`server.metrics_listen`); the bound
/// port and the server.
fn serve_metrics(
    address: std::net::SocketAddr,
    state: web::Data<AppState>,
) -> anyhow::Result<(u16, Server)> {
    let listener = TcpListener::bind(address)
        .with_context(|| format!("cannot listen on {address} (server.metrics_listen)"))?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(http::health::configure_metrics)
    })
    .workers(1)
    .client_request_timeout(HEAD_TIMEOUT)
    .keep_alive(KEEP_ALIVE)
    .disable_signals()
    .listen(listener)?
    .shutdown_timeout(1)
    .run();
    tracing::info!("metrics served on {}:{port}", address.ip());
    Ok((port, server))
}

/// Opens the store in `data_dir` with its writer's queue as configured, counted in
/// `metrics`.
fn open_store(
    server: &ServerSettings,
    settings: StoreSettings,
    metrics: &Metrics,
) -> anyhow::Result<SqliteStore> {
    let options = Options {
        queue: QueueLimits {
            places: settings.write_queue,
            timeout: settings.write_timeout,
        },
        metrics: Some(metrics.store.clone()),
    };
    SqliteStore::open_with(&server.data_dir, OpenMode::Server, options)
}

/// How long a request's head may take to arrive (actix's default).
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a kept-alive connection may sit idle between requests (actix's default).
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// The work that runs beside the server until `shutdown`: one delivery worker per route,
/// the sweep of silent calls and the prune of old deliveries; and, once, the replay of
/// recent calling events that a crash may have cut short.
fn spawn_background(
    calling: &Calling,
    store: &Arc<dyn Store>,
    routes: &Routes,
    wakers: &Wakers,
    metrics: &Metrics,
    retention: Duration,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let recovering = calling.clone();
    tokio::spawn(async move {
        match recovering.recover().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "recent calling events replayed"),
            Err(e) => tracing::error!(error = %e, "cannot replay recent calling events"),
        }
    });
    let mut workers =
        fanout::spawn_workers(routes, store.clone(), wakers, metrics, shutdown.clone())?;
    workers.push(tokio::spawn(sweep_periodically(
        calling.clone(),
        shutdown.clone(),
    )));
    workers.push(tokio::spawn(prune_periodically(
        store.clone(),
        retention,
        shutdown.clone(),
    )));
    Ok(workers)
}

/// Who may use the API: the agents, their sessions (the signing key in the data
/// directory, the revocations in the store), the sign-in throttle and the dialer's origins.
async fn access(
    server: &ServerSettings,
    agents: Agents,
    store: &Arc<dyn Store>,
    hub: &Hub,
) -> anyhow::Result<Access> {
    if server.https() && server.trusted_proxies.is_empty() {
        tracing::warn!(
            "server.public_url is https, so a TLS proxy stands in front, but \
             server.trusted_proxies is empty: every client will seem to be the proxy, and \
             the sign-in throttle will count them all as one"
        );
    }
    let revocations = Revocations::load(store.clone(), hub.clone(), now_secs())
        .await
        .context("cannot read the revoked sessions")?;
    Ok(Access {
        agents,
        sessions: SessionKey::load_or_create(&server.data_dir)?,
        revocations,
        throttle: LoginThrottle::new(server.login_throttle),
        session_lifetime: server.session_lifetime,
        origins: AllowedOrigins(server.origins()),
    })
}

/// The Graph API client for the configured business number.
pub fn graph_client(meta: &MetaSettings, timeout: Duration) -> anyhow::Result<GraphClient> {
    GraphClient::new(
        meta.graph_api_base.clone(),
        meta.graph_api_version.clone(),
        meta.phone_number_id.clone(),
        meta.access_token.clone(),
        timeout,
    )
}

fn dialer_settings(
    server: &ServerSettings,
    meta: &MetaSettings,
    calls: &CallSettings,
) -> DialerSettings {
    DialerSettings {
        ice_servers: calls.ice_servers.clone(),
        turn: calls.turn.as_ref().map(|turn| TurnMint {
            urls: turn.urls.clone(),
            secret: turn.shared_secret.clone(),
            ttl_secs: i64::try_from(turn.ttl.as_secs()).unwrap_or(i64::MAX),
        }),
        phone_number_id: meta.phone_number_id.clone(),
        ice_gathering_timeout_ms: u32::try_from(calls.ice_gathering_timeout.as_millis())
            .unwrap_or(u32::MAX),
        secure_cookies: server.secure_cookies(),
    }
}

/// How often old deliveries are pruned.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

async fn prune_periodically(
    store: Arc<dyn Store>,
    retention: std::time::Duration,
    shutdown: CancellationToken,
) {
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    loop {
        let before = now_millis().saturating_sub(retention_ms);
        // Each step of a prune is atomic: one cut short by shutdown resumes next time.
        let pruning = tokio::select! {
            () = shutdown.cancelled() => return,
            pruning = store.prune(before) => pruning,
        };
        match pruning {
            Ok(pruned) if pruned != Pruned::default() => {
                tracing::info!(?pruned, "old deliveries pruned");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "pruning failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(PRUNE_EVERY) => {}
        }
    }
}

/// Stops a running [`Application`].
#[derive(Clone)]
pub struct Stopper {
    server: actix_web::dev::ServerHandle,
    metrics: Option<actix_web::dev::ServerHandle>,
    shutdown: CancellationToken,
}

impl Stopper {
    /// Closes agents' sockets, lets requests under way finish, and stops the server.
    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.server.stop(true).await;
        if let Some(metrics) = &self.metrics {
            metrics.stop(true).await;
        }
    }
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// How often live calls are checked for silence.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

async fn sweep_periodically(calling: Calling, shutdown: CancellationToken) {
    loop {
        match calling.sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(calls = n, "ended calls Meta said nothing more about"),
            Err(e) => tracing::error!(error = %e, "cannot check live calls"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(SWEEP_EVERY) => {}
        }
    }
}
