//! Values that are safe only on a developer's machine. The example configuration
//! (`config/switchboard.toml`) publishes its secrets and agent tokens so that `make run`
//! works from a fresh clone; anyone can read them, so a server that others can reach, or
//! one deployed behind https, must not start with them.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::raw::{OneOrMany, RawAgent, RawCalls, RawMeta, RawRoute};
use super::{ConfigError, ServerSettings};

/// The secrets the example configuration and the documentation publish: the app secret,
/// the verify token, the access token and a route's signing secret.
const PUBLISHED_SECRETS: [&str; 4] = [
    "test-app-secret",
    "verify-me",
    "EAAG-test",
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
];

/// The agent tokens the example configuration's hashes stand for (named in its comments
/// and in README).
const PUBLISHED_TOKENS: [&str; 2] = ["dev-agent-token", "dev-admin-token"];

/// Why others can reach this server, if they can: it listens beyond loopback, or its
/// public URL is https (a deployment behind a TLS proxy).
pub(super) fn exposure(server: &ServerSettings) -> Option<String> {
    if !server.listen.ip().is_loopback() {
        return Some(format!(
            "server.listen ({}) is not a loopback address",
            server.listen
        ));
    }
    if server.https() {
        return Some(format!(
            "server.public_url ({}) is https",
            server.public_url
        ));
    }
    None
}

/// The sections that hold secrets, as written.
pub(super) struct Secrets<'a> {
    pub meta: &'a RawMeta,
    pub calls: &'a RawCalls,
    pub agents: &'a [RawAgent],
    pub routes: &'a [RawRoute],
}

/// The first published secret or agent token in `secrets`, refused with its key; `why`
/// says why the server counts as reachable.
pub(super) fn refuse_published(secrets: &Secrets<'_>, why: &str) -> Result<(), ConfigError> {
    if let Some((key, hint)) = published_secret(secrets) {
        return Err(ConfigError::invalid(
            key,
            format!(
                "is a development value published with Switchboard, which anyone can read; \
                 it is refused because {why}. {hint}"
            ),
        ));
    }
    for (i, agent) in secrets.agents.iter().enumerate() {
        let published = PUBLISHED_TOKENS
            .iter()
            .find(|token| agent.token_sha256.eq_ignore_ascii_case(&sha256_hex(token)));
        if let Some(token) = published {
            return Err(ConfigError::invalid(
                format!("agents[{i}].token_sha256"),
                format!(
                    "is the hash of `{token}`, a development token published with \
                     Switchboard; it is refused because {why}. Give this agent a token of \
                     its own: echo -n \"$TOKEN\" | switchboard hash-token"
                ),
            ));
        }
    }
    Ok(())
}

/// The key of the first secret that is a published one, and how to set it instead.
fn published_secret(secrets: &Secrets<'_>) -> Option<(String, &'static str)> {
    let meta = secrets.meta;
    let app_secrets: Vec<&SecretString> = match &meta.app_secret {
        OneOrMany::One(secret) => vec![secret],
        OneOrMany::Many(list) => list.iter().collect(),
    };
    let mut candidates: Vec<(String, &SecretString, &'static str)> = app_secrets
        .into_iter()
        .map(|s| {
            (
                "meta.app_secret".to_owned(),
                s,
                "Set the app's own secret (META_APP_SECRET).",
            )
        })
        .collect();
    candidates.push((
        "meta.verify_token".into(),
        &meta.verify_token,
        "Choose your own verify token (META_VERIFY_TOKEN).",
    ));
    candidates.push((
        "meta.access_token".into(),
        &meta.access_token,
        "Set the business's access token (META_ACCESS_TOKEN).",
    ));
    if let Some(turn) = &secrets.calls.turn {
        candidates.push((
            "calls.turn.shared_secret".into(),
            &turn.shared_secret,
            "Use your TURN server's own secret.",
        ));
    }
    for (i, route) in secrets.routes.iter().enumerate() {
        if let Some(secret) = &route.secret {
            candidates.push((
                format!("routes[{i}].secret"),
                secret,
                "Make a signing secret of the route's own.",
            ));
        }
    }
    candidates
        .into_iter()
        .find(|(_, secret, _)| PUBLISHED_SECRETS.contains(&secret.expose_secret().trim()))
        .map(|(key, _, hint)| (key, hint))
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}
