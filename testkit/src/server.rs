//! A server of this workspace (the router's `Application`, wa-sim's `Simulator`) built on
//! port 0, serving in the background until stopped as SIGTERM would stop it.

use std::future::Future;
use std::net::TcpListener;

use tokio::task::JoinHandle;

/// What the router's `Application` and wa-sim's `Simulator` share: built with their
/// listener bound, they report the port, hand out a stopper and serve until stopped.
pub trait Server: Send + 'static {
    type Stopper: Send + Sync + 'static;

    fn port(&self) -> u16;
    fn stopper(&self) -> Self::Stopper;
    fn serve(self) -> impl Future<Output = anyhow::Result<()>> + Send + 'static;
    fn stop(stopper: &Self::Stopper) -> impl Future<Output = ()> + Send + '_;
}

/// The router's `Application` and wa-sim's `Simulator` have the same four methods under
/// the same names; each is a [`Server`] through them.
macro_rules! serves_like_the_others {
    ($server:ty, $stopper:ty) => {
        impl Server for $server {
            type Stopper = $stopper;

            fn port(&self) -> u16 {
                self.port()
            }

            fn stopper(&self) -> Self::Stopper {
                self.stopper()
            }

            fn serve(self) -> impl Future<Output = anyhow::Result<()>> + Send + 'static {
                self.run_until_stopped()
            }

            fn stop(stopper: &Self::Stopper) -> impl Future<Output = ()> + Send + '_ {
                stopper.stop()
            }
        }
    };
}

serves_like_the_others!(
    switchboard::startup::Application,
    switchboard::startup::Stopper
);
#[cfg(feature = "sim")]
serves_like_the_others!(wa_sim::Simulator, wa_sim::startup::Stopper);

/// A server serving on `http://127.0.0.1:<port>` in a task of its own.
pub struct Running<S: Server> {
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub url: String,
    port: u16,
    stopper: S::Stopper,
    serving: JoinHandle<anyhow::Result<()>>,
}

impl<S: Server> Running<S> {
    /// Starts serving `server` in the background.
    pub fn spawn(server: S) -> Self {
        let port = server.port();
        let stopper = server.stopper();
        let serving = tokio::spawn(server.serve());
        Self {
            url: format!("http://127.0.0.1:{port}"),
            port,
            stopper,
            serving,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server as SIGTERM would and waits until it has stopped; a server that
    /// stops with an error fails the test.
    pub async fn stop(self) {
        S::stop(&self.stopper).await;
        self.serving
            .await
            .expect("the server's task ends")
            .expect("the server stops cleanly");
    }
}

/// A port on 127.0.0.1 with nothing listening on it (it was free a moment ago).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}
