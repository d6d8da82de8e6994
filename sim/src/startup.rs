//! Builds the simulator on any address (port 0 in tests) and runs it until stopped.

use std::net::TcpListener;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing_actix_web::TracingLogger;

use crate::config::Config;
use crate::platform::Platform;
use crate::webhooks::WebhookSender;
use crate::{control, graph};

/// A simulator bound to its port; it serves once [`Simulator::run_until_stopped`] is
/// awaited (tests spawn that future).
pub struct Simulator {
    port: u16,
    server: Server,
    platform: Platform,
    shutdown: CancellationToken,
}

impl Simulator {
    /// Binds the listener and starts the webhook worker. Must be called inside a Tokio
    /// runtime.
    pub fn build(config: Config) -> anyhow::Result<Self> {
        config
            .validate()
            .map_err(anyhow::Error::msg)
            .context("invalid configuration")?;
        let listener = TcpListener::bind(config.listen)
            .with_context(|| format!("binding {}", config.listen))?;
        let port = listener
            .local_addr()
            .context("reading the bound port")?
            .port();
        let shutdown = CancellationToken::new();
        let webhooks = WebhookSender::start(
            config.webhook_url.clone(),
            config.app_secret.clone(),
            config.webhook_retries.clone(),
            config.webhook_timeout,
            shutdown.clone(),
        )
        .context("building the webhook client")?;
        let platform = Platform::new(config, webhooks, shutdown.clone());
        let data = web::Data::new(platform.clone());
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .app_data(data.clone())
                .configure(control::configure)
                .configure(graph::configure)
        })
        .workers(2)
        .disable_signals()
        .listen(listener)
        .context("listening")?
        .run();
        Ok(Self {
            port,
            server,
            platform,
            shutdown,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The platform behind the HTTP API, for in-process inspection.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// A handle that stops the simulator: the HTTP server, the webhook worker and every
    /// call's script.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            server: self.server.handle(),
            shutdown: self.shutdown.clone(),
        }
    }

    /// Serves until stopped through a [`Stopper`].
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let result = self.server.await.context("serving HTTP");
        self.shutdown.cancel();
        result
    }
}

#[derive(Clone)]
pub struct Stopper {
    server: ServerHandle,
    shutdown: CancellationToken,
}

impl Stopper {
    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.server.stop(true).await;
    }
}
