//! What Meta's platform and the simulated users do with each request: the state behind
//! the Graph and control APIs, and the timed scripts that produce webhooks.
//!
//! One mutex guards all state; it is never held across an `.await`. Webhooks are queued
//! while it is held, so they leave in the order the state changed.

pub mod calls;
pub mod error;
pub mod messages;
pub mod users;

pub use error::{ControlError, PlatformError};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use switchboard_protocol::graph::{CallPermissionsResponse, CallingSettings, Settings};
use switchboard_protocol::sim::{SimUser, UserSetup, WebhookRecord};
use switchboard_protocol::UserRef;
use tokio_util::sync::CancellationToken;

use crate::clock::now_secs;
use crate::config::Config;
use crate::webhooks::{Envelopes, WebhookSender};
use calls::CallRecord;
use users::{Population, Users};

/// A cheap, clonable handle on the simulated platform.
#[derive(Clone)]
pub struct Platform {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    state: Mutex<State>,
    webhooks: WebhookSender,
    envelopes: Envelopes,
    shutdown: CancellationToken,
}

struct State {
    users: Users,
    calls: HashMap<String, CallRecord>,
    /// Call ids, oldest first.
    call_order: Vec<String>,
    settings: CallingSettings,
}

impl Platform {
    pub fn new(config: Config, webhooks: WebhookSender, shutdown: CancellationToken) -> Self {
        let settings = CallingSettings {
            status: Some(
                if config.business.calling_enabled {
                    "ENABLED"
                } else {
                    "DISABLED"
                }
                .into(),
            ),
            call_icon_visibility: Some("DEFAULT".into()),
            callback_permission_status: Some("DISABLED".into()),
            other: serde_json::Map::new(),
        };
        Self {
            inner: Arc::new(Inner {
                envelopes: Envelopes::new(config.business.clone()),
                config,
                state: Mutex::new(State {
                    users: Users::default(),
                    calls: HashMap::new(),
                    call_order: Vec::new(),
                    settings,
                }),
                webhooks,
                shutdown,
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn population(&self) -> Population<'_> {
        let config = &self.inner.config;
        Population {
            portfolio: &config.business.waba_id,
            defaults: &config.users,
            temporary_permission: i64::try_from(config.timings.temporary_permission.as_secs())
                .unwrap_or(i64::MAX),
        }
    }

    /// Is `phone_number_id` the number this simulator serves?
    pub fn serves(&self, phone_number_id: &str) -> bool {
        self.inner.config.business.phone_number_id == phone_number_id
    }

    pub fn settings(&self) -> Settings {
        Settings {
            calling: Some(self.lock().settings.clone()),
        }
    }

    /// `POST /settings`: merges the `calling` object, as Meta applies a partial update.
    pub fn update_settings(&self, update: CallingSettings) -> Result<(), PlatformError> {
        check_choice(
            "calling.status",
            update.status.as_deref(),
            &["ENABLED", "DISABLED"],
        )?;
        check_choice(
            "calling.call_icon_visibility",
            update.call_icon_visibility.as_deref(),
            &["DEFAULT", "DISABLE_ALL"],
        )?;
        check_choice(
            "calling.callback_permission_status",
            update.callback_permission_status.as_deref(),
            &["ENABLED", "DISABLED"],
        )?;
        let mut state = self.lock();
        let settings = &mut state.settings;
        if update.status.is_some() {
            settings.status = update.status;
        }
        if update.call_icon_visibility.is_some() {
            settings.call_icon_visibility = update.call_icon_visibility;
        }
        if update.callback_permission_status.is_some() {
            settings.callback_permission_status = update.callback_permission_status;
        }
        settings.other.extend(update.other);
        Ok(())
    }

    fn calling_enabled(state: &State) -> bool {
        state.settings.status.as_deref() == Some("ENABLED")
    }

    /// `GET /call_permissions`.
    pub fn call_permissions(&self, who: &UserRef) -> CallPermissionsResponse {
        let now = now_secs();
        let state = self.lock();
        match state.users.find(who) {
            Some(user) => user.permissions_response(now),
            None => users::unknown_user_permissions(now),
        }
    }

    pub fn setup_user(&self, setup: UserSetup) -> Result<SimUser, ControlError> {
        let people = self.population();
        let mut state = self.lock();
        state
            .users
            .setup(setup, &people, now_secs())
            .map(users::UserRecord::view)
            .map_err(ControlError::BadRequest)
    }

    pub fn users(&self) -> Vec<SimUser> {
        self.lock()
            .users
            .all()
            .map(users::UserRecord::view)
            .collect()
    }

    pub fn webhooks(&self) -> Vec<WebhookRecord> {
        self.inner.webhooks.records()
    }
}

fn check_choice(field: &str, value: Option<&str>, allowed: &[&str]) -> Result<(), PlatformError> {
    match value {
        Some(value) if !allowed.contains(&value) => Err(PlatformError::invalid(format!(
            "Param {field} must be one of {{{}}}, got `{value}`",
            allowed.join(", ")
        ))),
        _ => Ok(()),
    }
}
