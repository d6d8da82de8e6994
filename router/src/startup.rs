//! Building the application: store, routes, workers and the HTTP server, on any port.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{dev::Server, web, App, HttpServer};
use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing_actix_web::TracingLogger;

use crate::agents::auth::Agents;
use crate::config::Settings;
use crate::fanout::routes::{Route, Routes};
use crate::fanout::{self, Wakers};
use crate::http::{self, webhook::WebhookAuth};
use crate::ingest::Ingest;
use crate::store::sqlite::OpenMode;
use crate::store::{SqliteStore, Store};
use crate::telemetry::Metrics;

pub struct Application {
    port: u16,
    server: Server,
    shutdown: CancellationToken,
    workers: Vec<JoinHandle<()>>,
}

impl Application {
    /// Opens the store, starts the delivery workers and binds the listener. With
    /// `listen = "127.0.0.1:0"` the OS picks the port; [`Application::port`] tells which.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = SqliteStore::open(&settings.server.data_dir, OpenMode::Server)?;
        let store: Arc<dyn Store> = Arc::new(store);
        let routes = Routes::new(
            settings
                .routes
                .iter()
                .map(Route::from_settings)
                .collect::<Result<_, _>>()
                .map_err(anyhow::Error::msg)?,
        );
        let agents = Agents::from_settings(&settings.agents).map_err(anyhow::Error::msg)?;
        let metrics = Metrics::new();
        let wakers = Wakers::for_routes(&routes);
        let shutdown = CancellationToken::new();
        let workers =
            fanout::spawn_workers(&routes, store.clone(), &wakers, &metrics, shutdown.clone())?;

        let ingest = web::Data::new(Ingest {
            store: store.clone(),
            routes: routes.clone(),
            wakers: wakers.clone(),
            metrics: metrics.clone(),
        });
        let webhook_auth = web::Data::new(WebhookAuth {
            secrets: settings.app_secrets()?,
            verify_token: settings.meta.verify_token.clone(),
            max_body_bytes: settings.server.max_body_bytes,
        });
        let store = web::Data::new(store);
        let routes = web::Data::new(routes);
        let wakers = web::Data::new(wakers);
        let metrics = web::Data::new(metrics);
        let agents = web::Data::new(agents);

        let address = settings.listen_addr()?;
        let listener =
            TcpListener::bind(address).with_context(|| format!("cannot listen on {address}"))?;
        let port = listener.local_addr()?.port();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .app_data(ingest.clone())
                .app_data(webhook_auth.clone())
                .app_data(store.clone())
                .app_data(routes.clone())
                .app_data(wakers.clone())
                .app_data(metrics.clone())
                .app_data(agents.clone())
                .configure(http::webhook::configure)
                .configure(http::health::configure)
                .configure(http::admin::configure)
        })
        .listen(listener)?
        .shutdown_timeout(10)
        .run();
        tracing::info!(
            address = %format!("{}:{port}", address.ip()),
            "listening on {}:{port}",
            address.ip()
        );
        Ok(Self {
            port,
            server,
            shutdown,
            workers,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server gracefully from elsewhere; `run_until_stopped` then returns.
    pub fn stop_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server stops (SIGINT/SIGTERM), then stops the workers.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let result = self.server.await;
        self.shutdown.cancel();
        for worker in self.workers {
            let _ = worker.await;
        }
        result.context("the HTTP server failed")
    }
}
