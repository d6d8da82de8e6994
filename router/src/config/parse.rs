//! From the configuration as written to [`Settings`]: every value parsed into its type
//! once, each error naming its key.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

use super::raw::{
    OneOrMany, RawAgent, RawCalls, RawMeta, RawRoute, RawServer, RawSettings, RawStore, RawTemplate,
};
use super::safety::{exposure, refuse_published, Secrets};
use super::{
    CallSettings, ConfigError, DeliveryLimits, MetaSettings, ServerSettings, Settings,
    StoreSettings, TurnSettings,
};
use crate::agents::address::{Network, TrustedProxies};
use crate::agents::auth::{AgentEntry, Agents};
use crate::agents::socket::SocketLimits;
use crate::agents::throttle::ThrottleSettings;
use crate::calls::PermissionRequestStyle;
use crate::domain::agent::Agent;
use crate::domain::route::{EventSelector, RouteName};
use crate::fanout::outbound::Signer;
use crate::fanout::routes::{Route, Routes};
use crate::meta::graph::check_base;
use crate::meta::signature::AppSecret;

/// Shorter than Meta's retry window, a retried webhook could be taken for a new one.
const MIN_RETENTION: Duration = Duration::from_secs(8 * 24 * 3600);

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::invalid(key, reason)
}

fn url(key: &str, text: &str) -> Result<Url, ConfigError> {
    Url::parse(text).map_err(|e| invalid(key, e.to_string()))
}

impl TryFrom<RawSettings> for Settings {
    type Error = ConfigError;

    fn try_from(raw: RawSettings) -> Result<Self, ConfigError> {
        let server = server(raw.server)?;
        if let Some(why) = exposure(&server) {
            let secrets = Secrets {
                meta: &raw.meta,
                calls: &raw.calls,
                agents: &raw.agents,
                routes: &raw.routes,
            };
            refuse_published(&secrets, &why)?;
        }
        Ok(Settings {
            server,
            calls: calls(raw.calls)?,
            meta: meta(raw.meta)?,
            agents: agents(&raw.agents)?,
            routes: routes(raw.routes)?,
            store: store(&raw.store)?,
        })
    }
}

fn store(raw: &RawStore) -> Result<StoreSettings, ConfigError> {
    if raw.write_queue == 0 {
        return Err(invalid("store.write_queue", "must be above zero"));
    }
    if raw.write_timeout.is_zero() {
        return Err(invalid("store.write_timeout", "must be above zero"));
    }
    Ok(StoreSettings {
        write_queue: raw.write_queue,
        write_timeout: raw.write_timeout,
    })
}

fn server(raw: RawServer) -> Result<ServerSettings, ConfigError> {
    let listen = raw
        .listen
        .parse()
        .map_err(|e| invalid("server.listen", format!("`{}`: {e}", raw.listen)))?;
    let public_url = url("server.public_url", &raw.public_url)?;
    if raw.retention < MIN_RETENTION {
        return Err(invalid(
            "server.retention",
            "must be at least 8 days: Meta retries a webhook for up to 7",
        ));
    }
    if raw.max_websockets == 0 {
        return Err(invalid("server.max_websockets", "must be above zero"));
    }
    if raw.max_body_bytes == 0 {
        return Err(invalid("server.max_body_bytes", "must be above zero"));
    }
    check_webhook_limits(&raw)?;
    check_agent_limits(&raw)?;
    let trusted_proxies = trusted_proxies(&raw.trusted_proxies)?;
    let metrics_listen = raw
        .metrics_listen
        .as_deref()
        .map(|text| {
            text.parse()
                .map_err(|e| invalid("server.metrics_listen", format!("`{text}`: {e}")))
        })
        .transpose()?;
    Ok(ServerSettings {
        listen,
        public_url,
        data_dir: raw.data_dir,
        max_body_bytes: raw.max_body_bytes,
        static_dir: raw.static_dir,
        retention: raw.retention,
        max_websockets: raw.max_websockets,
        allowed_origins: raw.allowed_origins,
        body_timeout: raw.body_timeout,
        max_webhooks_in_flight: raw.max_webhooks_in_flight,
        ignore_replays: raw.ignore_replays,
        delivery_limits: DeliveryLimits {
            max_items: raw.max_delivery_items,
            max_event_bytes: raw.max_event_bytes,
        },
        trusted_proxies,
        session_lifetime: raw.session_lifetime,
        login_throttle: ThrottleSettings {
            max_failures: raw.max_failed_logins,
            window: raw.failed_login_window,
        },
        max_websockets_per_agent: raw.max_websockets_per_agent,
        websocket_limits: SocketLimits {
            max_frame_bytes: raw.websocket_max_frame_bytes,
            max_messages: raw.websocket_max_messages,
            message_window: raw.websocket_message_window,
            send_timeout: raw.websocket_send_timeout,
        },
        metrics_listen,
    })
}

/// The longest a session may last: a stolen cookie is good for at most this long.
const MAX_SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

fn check_agent_limits(raw: &RawServer) -> Result<(), ConfigError> {
    if raw.session_lifetime.is_zero() || raw.session_lifetime > MAX_SESSION_LIFETIME {
        return Err(invalid(
            "server.session_lifetime",
            "must be above zero and at most 30 days",
        ));
    }
    for (key, value) in [
        ("server.failed_login_window", raw.failed_login_window),
        (
            "server.websocket_message_window",
            raw.websocket_message_window,
        ),
        ("server.websocket_send_timeout", raw.websocket_send_timeout),
    ] {
        if value.is_zero() {
            return Err(invalid(key, "must be above zero"));
        }
    }
    for (key, value) in [
        ("server.max_failed_logins", raw.max_failed_logins),
        (
            "server.max_websockets_per_agent",
            raw.max_websockets_per_agent,
        ),
        (
            "server.websocket_max_frame_bytes",
            raw.websocket_max_frame_bytes,
        ),
        (
            "server.websocket_max_messages",
            raw.websocket_max_messages as usize,
        ),
    ] {
        if value == 0 {
            return Err(invalid(key, "must be above zero"));
        }
    }
    Ok(())
}

fn trusted_proxies(raw: &[String]) -> Result<TrustedProxies, ConfigError> {
    let networks = raw
        .iter()
        .enumerate()
        .map(|(i, text)| {
            Network::parse(text).map_err(|e| invalid(format!("server.trusted_proxies[{i}]"), e))
        })
        .collect::<Result<_, _>>()?;
    Ok(TrustedProxies::new(networks))
}

/// The longest a body may take to arrive: Meta sends a delivery in well under a second.
const MAX_BODY_TIMEOUT: Duration = Duration::from_secs(30);

fn check_webhook_limits(raw: &RawServer) -> Result<(), ConfigError> {
    if raw.body_timeout.is_zero() || raw.body_timeout > MAX_BODY_TIMEOUT {
        return Err(invalid(
            "server.body_timeout",
            "must be above zero and at most 30s",
        ));
    }
    for (key, value) in [
        ("server.max_webhooks_in_flight", raw.max_webhooks_in_flight),
        ("server.max_delivery_items", raw.max_delivery_items),
        ("server.max_event_bytes", raw.max_event_bytes),
    ] {
        if value == 0 {
            return Err(invalid(key, "must be above zero"));
        }
    }
    Ok(())
}

fn calls(raw: RawCalls) -> Result<CallSettings, ConfigError> {
    let turn = match raw.turn {
        Some(turn) => {
            if turn.urls.is_empty() {
                return Err(invalid("calls.turn.urls", "list at least one turn: URL"));
            }
            if turn.shared_secret.expose_secret().is_empty() {
                return Err(invalid("calls.turn.shared_secret", "must not be empty"));
            }
            Some(TurnSettings {
                urls: turn.urls,
                shared_secret: turn.shared_secret,
                ttl: turn.ttl,
            })
        }
        None => None,
    };
    for (i, server) in raw.ice_servers.iter().enumerate() {
        if server.urls.is_empty() {
            return Err(invalid(
                format!("calls.ice_servers[{i}].urls"),
                "list at least one URL",
            ));
        }
    }
    let permission_style = match raw.permission_template {
        Some(RawTemplate { name, language }) => PermissionRequestStyle::Template { name, language },
        None => PermissionRequestStyle::Interactive {
            text: raw.permission_request_text,
        },
    };
    Ok(CallSettings {
        ice_servers: raw.ice_servers,
        turn,
        ice_gathering_timeout: raw.ice_gathering_timeout,
        permission_style,
        graph_timeout: raw.graph_timeout,
    })
}

fn meta(raw: RawMeta) -> Result<MetaSettings, ConfigError> {
    let app_secrets = app_secrets(raw.app_secret)?;
    if raw.verify_token.expose_secret().trim().is_empty() {
        return Err(invalid("meta.verify_token", "must not be empty"));
    }
    if raw.access_token.expose_secret().trim().is_empty() {
        return Err(invalid("meta.access_token", "must not be empty"));
    }
    if raw.phone_number_id.trim().is_empty() {
        return Err(invalid("meta.phone_number_id", "must not be empty"));
    }
    let graph_api_base = url("meta.graph_api_base", &raw.graph_api_base)?;
    check_base(&graph_api_base).map_err(|reason| invalid("meta.graph_api_base", reason))?;
    Ok(MetaSettings {
        app_secrets,
        verify_token: raw.verify_token,
        access_token: raw.access_token,
        phone_number_id: raw.phone_number_id,
        graph_api_base,
        graph_api_version: raw.graph_api_version,
    })
}

fn app_secrets(raw: OneOrMany) -> Result<Vec<AppSecret>, ConfigError> {
    let secrets: Vec<SecretString> = match raw {
        OneOrMany::One(secret) => vec![secret],
        OneOrMany::Many(list) => list,
    };
    if secrets.is_empty() {
        return Err(invalid("meta.app_secret", "at least one secret is needed"));
    }
    secrets
        .into_iter()
        .map(|s| AppSecret::parse(s).map_err(|e| invalid("meta.app_secret", e)))
        .collect()
}

fn agents(raw: &[RawAgent]) -> Result<Agents, ConfigError> {
    let mut entries: Vec<AgentEntry> = Vec::with_capacity(raw.len());
    for (i, agent) in raw.iter().enumerate() {
        if agent.name.trim().is_empty() {
            return Err(invalid(format!("agents[{i}].name"), "must not be empty"));
        }
        // Two agents of one name would share sessions and the call log's attribution.
        if let Some(j) = entries
            .iter()
            .position(|e| e.agent.name.trim().eq_ignore_ascii_case(agent.name.trim()))
        {
            return Err(invalid(
                format!("agents[{i}].name"),
                format!("`{}` is already the name of agents[{j}]", agent.name),
            ));
        }
        let mut token_sha256 = [0u8; 32];
        let hash_ok = agent.token_sha256.len() == 64
            && hex::decode_to_slice(&agent.token_sha256, &mut token_sha256).is_ok();
        if !hash_ok {
            return Err(invalid(
                format!("agents[{i}].token_sha256"),
                "must be the 64 hex digits of the token's SHA-256",
            ));
        }
        // One token for two agents would sign in as whichever is found last.
        if let Some(j) = entries.iter().position(|e| e.token_sha256 == token_sha256) {
            return Err(invalid(
                format!("agents[{i}].token_sha256"),
                format!("is agents[{j}]'s too: every agent needs a token of its own"),
            ));
        }
        entries.push(AgentEntry {
            agent: Agent {
                name: agent.name.clone(),
                role: agent.role,
            },
            token_sha256,
        });
    }
    Ok(Agents::new(entries))
}

fn routes(raw: Vec<RawRoute>) -> Result<Routes, ConfigError> {
    let mut names = HashSet::new();
    let mut routes = Vec::with_capacity(raw.len());
    for (i, raw) in raw.into_iter().enumerate() {
        let route = route(&format!("routes[{i}]"), raw)?;
        if !names.insert(route.name.clone()) {
            return Err(invalid(
                format!("routes[{i}].name"),
                format!("`{}` is used by two routes", route.name),
            ));
        }
        routes.push(route);
    }
    Ok(Routes::new(routes))
}

fn route(key: &str, raw: RawRoute) -> Result<Route, ConfigError> {
    let name = RouteName::parse(&raw.name).map_err(|e| invalid(format!("{key}.name"), e))?;
    if raw.events.is_empty() {
        return Err(invalid(
            format!("{key}.events"),
            "list at least one event kind",
        ));
    }
    let selectors = raw
        .events
        .iter()
        .map(|s| EventSelector::parse(s).map_err(|e| invalid(format!("{key}.events"), e)))
        .collect::<Result<_, _>>()?;
    let url = url(&format!("{key}.url"), &raw.url)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            format!("{key}.url"),
            "must be an http or https URL",
        ));
    }
    let signer = raw
        .secret
        .as_ref()
        .map(|secret| Signer::parse(secret).map_err(|e| invalid(format!("{key}.secret"), e)))
        .transpose()?;
    if raw.concurrency == 0 {
        return Err(invalid(format!("{key}.concurrency"), "must be above zero"));
    }
    if raw.timeout.is_zero() {
        return Err(invalid(format!("{key}.timeout"), "must be above zero"));
    }
    Ok(Route {
        name,
        selectors,
        url,
        mode: raw.mode,
        signer,
        timeout: raw.timeout,
        concurrency: raw.concurrency,
        retry_schedule: raw.retry_schedule,
    })
}
