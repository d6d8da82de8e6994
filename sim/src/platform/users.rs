//! The simulated WhatsApp users: who they are (BSUID, phone number or only a username),
//! how they behave, and their call permission with Meta's limits per business–user pair
//! (research file §7.4): 1 permission request per 24 h and 2 per 7 days (138009), reset by
//! any connected call; a permanent permission refuses new requests (138017); at most 100
//! connected business-initiated calls per 24 h (138012).

use std::collections::HashMap;

use switchboard_protocol::graph::{
    ActionLimit, CallPermissionsResponse, Permission, PermissionAction, MESSAGING_PRODUCT,
};
use switchboard_protocol::sim::{OnCall, OnPermissionRequest, PermissionGrant, SimUser, UserSetup};
use switchboard_protocol::{is_bsuid, Bsuid, User, UserRef, WaId};

use super::error::PlatformError;
use crate::config::UserDefaults;
use crate::ids::{bsuid_for_phone, bsuid_for_username};

const DAY: i64 = 24 * 3600;
const WEEK: i64 = 7 * DAY;
const CONNECTED_CALLS_PER_DAY: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    None,
    /// Until this Unix second.
    Temporary(i64),
    Permanent,
}

#[derive(Debug, Clone)]
pub struct UserRecord {
    /// The user's BSUID: every simulated user has one, as every user of Meta's has.
    pub id: Bsuid,
    /// What the webhooks show of the user; its `user_id` is `id`.
    pub user: User,
    pub grant: Grant,
    pub on_call: OnCall,
    pub on_permission_request: OnPermissionRequest,
    /// Unix seconds of permission requests since the last connected call.
    requests: Vec<i64>,
    /// Unix seconds at which business-initiated calls connected.
    connected_calls: Vec<i64>,
}

impl UserRecord {
    fn new(id: Bsuid, mut user: User, defaults: &UserDefaults, now: i64, temporary: i64) -> Self {
        user.user_id = Some(id.clone());
        let grant = match defaults.initial_permission {
            PermissionGrant::None => Grant::None,
            PermissionGrant::Temporary => Grant::Temporary(now + temporary),
            PermissionGrant::Permanent => Grant::Permanent,
        };
        Self {
            id,
            user,
            grant,
            on_call: defaults.on_call,
            on_permission_request: defaults.on_permission_request,
            requests: Vec::new(),
            connected_calls: Vec::new(),
        }
    }

    pub fn may_be_called(&self, now: i64) -> bool {
        match self.grant {
            Grant::None => false,
            Grant::Temporary(until) => now < until,
            Grant::Permanent => true,
        }
    }

    /// 138017 with a permanent permission, 138009 over the request limits.
    pub fn check_permission_request(&self, now: i64) -> Result<(), PlatformError> {
        if self.grant == Grant::Permanent {
            return Err(PlatformError::PermanentPermissionExists);
        }
        if let Some(next_allowed) = self.next_request_allowed(now) {
            return Err(PlatformError::PermissionRequestLimit { next_allowed });
        }
        Ok(())
    }

    /// When the next request is allowed, if one is not allowed now.
    fn next_request_allowed(&self, now: i64) -> Option<i64> {
        let in_day: Vec<i64> = self.requests_within(now, DAY);
        let in_week: Vec<i64> = self.requests_within(now, WEEK);
        let day_free = in_day.first().map(|first| first + DAY);
        let week_free = (in_week.len() >= 2).then(|| in_week[in_week.len() - 2] + WEEK);
        match (in_day.is_empty(), week_free) {
            (true, None) => None,
            (false, None) => day_free,
            (_, Some(week)) => Some(week.max(day_free.unwrap_or(week))),
        }
    }

    fn requests_within(&self, now: i64, window: i64) -> Vec<i64> {
        self.requests
            .iter()
            .copied()
            .filter(|at| now - at < window)
            .collect()
    }

    pub fn record_permission_request(&mut self, now: i64) {
        self.requests.push(now);
    }

    /// 138012 once 100 business-initiated calls connected in 24 h.
    pub fn check_connected_call_limit(&self, now: i64) -> Result<(), PlatformError> {
        let recent: Vec<i64> = self
            .connected_calls
            .iter()
            .copied()
            .filter(|at| now - at < DAY)
            .collect();
        if recent.len() >= CONNECTED_CALLS_PER_DAY {
            let next_allowed = recent.first().map_or(now, |first| first + DAY);
            return Err(PlatformError::ConnectedCallLimit { next_allowed });
        }
        Ok(())
    }

    /// A call connected: Meta resets the permission-request counters.
    pub fn call_connected(&mut self, now: i64, business_initiated: bool) {
        self.requests.clear();
        if business_initiated {
            self.connected_calls.push(now);
        }
    }

    pub fn view(&self) -> SimUser {
        let (permission, permission_expires_at) = match self.grant {
            Grant::None => (PermissionGrant::None, None),
            Grant::Temporary(until) => (PermissionGrant::Temporary, Some(until)),
            Grant::Permanent => (PermissionGrant::Permanent, None),
        };
        SimUser {
            user: self.user.clone(),
            permission,
            permission_expires_at,
            on_call: self.on_call,
            on_permission_request: self.on_permission_request,
        }
    }

    /// `GET /call_permissions`, Meta's shape.
    pub fn permissions_response(&self, now: i64) -> CallPermissionsResponse {
        let (status, expiration_time) = match self.grant {
            Grant::Temporary(until) if now < until => ("temporary", Some(until)),
            Grant::Permanent => ("permanent", None),
            Grant::None | Grant::Temporary(_) => ("no_permission", None),
        };
        let next_request = self.next_request_allowed(now);
        let in_day = self.requests_within(now, DAY);
        let in_week = self.requests_within(now, WEEK);
        let connected: Vec<i64> = self
            .connected_calls
            .iter()
            .copied()
            .filter(|at| now - at < DAY)
            .collect();
        let calls_full = connected.len() >= CONNECTED_CALLS_PER_DAY;
        CallPermissionsResponse {
            messaging_product: MESSAGING_PRODUCT.into(),
            permission: Permission {
                status: status.into(),
                expiration_time,
            },
            actions: vec![
                PermissionAction {
                    action_name: "send_call_permission_request".into(),
                    can_perform_action: self.check_permission_request(now).is_ok(),
                    limits: vec![
                        limit("PT24H", 1, in_day.len(), in_day.first().map(|t| t + DAY)),
                        limit(
                            "P7D",
                            2,
                            in_week.len(),
                            next_request.filter(|_| in_week.len() >= 2),
                        ),
                    ],
                },
                PermissionAction {
                    action_name: "start_call".into(),
                    can_perform_action: self.may_be_called(now) && !calls_full,
                    limits: vec![limit(
                        "PT24H",
                        CONNECTED_CALLS_PER_DAY as u32,
                        connected.len(),
                        connected.first().map(|t| t + DAY),
                    )],
                },
            ],
        }
    }
}

fn limit(period: &str, max: u32, used: usize, expires: Option<i64>) -> ActionLimit {
    let used = u32::try_from(used).unwrap_or(u32::MAX);
    ActionLimit {
        time_period: period.into(),
        max_allowed: max,
        current_usage: used,
        limit_expiration_time: expires.filter(|_| used >= max),
    }
}

/// `GET /call_permissions` for a user the simulator has never seen.
pub fn unknown_user_permissions(now: i64) -> CallPermissionsResponse {
    let defaults = UserDefaults::default();
    let nobody = UserRecord::new(Bsuid::default(), User::default(), &defaults, now, 0);
    nobody.permissions_response(now)
}

/// Every simulated user, by BSUID, with an index by phone number.
#[derive(Debug, Default)]
pub struct Users {
    by_id: HashMap<Bsuid, UserRecord>,
    by_phone: HashMap<WaId, Bsuid>,
    /// Insertion order, for stable listings.
    order: Vec<Bsuid>,
}

/// Who the simulator plays for one business portfolio, with these defaults.
pub struct Population<'a> {
    pub portfolio: &'a str,
    pub defaults: &'a UserDefaults,
    pub temporary_permission: i64,
}

impl Users {
    pub fn find(&self, who: &UserRef) -> Option<&UserRecord> {
        match who {
            UserRef::Phone(phone) => self.by_id.get(self.by_phone.get(phone)?),
            UserRef::Bsuid(id) => self.by_id.get(id),
        }
    }

    pub fn get_mut(&mut self, user_id: &str) -> Option<&mut UserRecord> {
        self.by_id.get_mut(user_id)
    }

    pub fn get(&self, user_id: &str) -> Option<&UserRecord> {
        self.by_id.get(user_id)
    }

    /// The user a business addresses: known, or created on first contact as Meta's
    /// world already has them (a phone number gets its BSUID; an unknown BSUID becomes a
    /// user without a visible number).
    pub fn find_or_create(
        &mut self,
        who: &UserRef,
        people: &Population<'_>,
        now: i64,
    ) -> &mut UserRecord {
        let user_id = match who {
            UserRef::Phone(phone) => match self.by_phone.get(phone) {
                Some(id) => id.clone(),
                None => self.insert(
                    bsuid_for_phone(people.portfolio, phone),
                    User {
                        wa_id: Some(phone.clone()),
                        ..User::default()
                    },
                    people,
                    now,
                ),
            },
            UserRef::Bsuid(id) if self.by_id.contains_key(id) => id.clone(),
            UserRef::Bsuid(id) => self.insert(id.clone(), User::default(), people, now),
        };
        self.by_id.entry(user_id).or_insert_with_key(|id| {
            UserRecord::new(
                id.clone(),
                User::default(),
                people.defaults,
                now,
                people.temporary_permission,
            )
        })
    }

    fn insert(&mut self, id: Bsuid, user: User, people: &Population<'_>, now: i64) -> Bsuid {
        if let Some(phone) = &user.wa_id {
            self.by_phone.insert(phone.clone(), id.clone());
        }
        if !self.by_id.contains_key(&id) {
            self.order.push(id.clone());
        }
        let record = UserRecord::new(
            id.clone(),
            user,
            people.defaults,
            now,
            people.temporary_permission,
        );
        self.by_id.insert(id.clone(), record);
        id
    }

    /// Creates or updates a user from the control API.
    pub fn setup(
        &mut self,
        setup: UserSetup,
        people: &Population<'_>,
        now: i64,
    ) -> Result<&UserRecord, String> {
        let phone = match &setup.wa_id {
            Some(text) => match UserRef::parse(text) {
                Ok(UserRef::Phone(phone)) => Some(phone),
                _ => return Err(format!("`{text}` is not a phone number (6-15 digits)")),
            },
            None => None,
        };
        if let Some(id) = setup.user_id.as_deref().filter(|id| !is_bsuid(id)) {
            return Err(format!(
                "`{id}` is not a BSUID like US.13491208655302741918"
            ));
        }
        if setup
            .username
            .as_deref()
            .is_some_and(|name| name.trim().is_empty())
        {
            return Err("the username is empty".into());
        }
        let known = phone
            .as_ref()
            .and_then(|phone| self.by_phone.get(phone).cloned())
            .or_else(|| {
                setup
                    .user_id
                    .clone()
                    .filter(|id| self.by_id.contains_key(id))
            });
        let user_id = match known {
            Some(id) => id,
            None => {
                let user_id = match (&setup.user_id, &phone, &setup.username) {
                    (Some(id), _, _) => id.clone(),
                    (None, Some(phone), _) => bsuid_for_phone(people.portfolio, phone),
                    (None, None, Some(username)) => bsuid_for_username(people.portfolio, username),
                    (None, None, None) => {
                        return Err("give at least one of wa_id, user_id and username".into());
                    }
                };
                self.insert(
                    user_id,
                    User {
                        wa_id: phone.clone(),
                        ..User::default()
                    },
                    people,
                    now,
                )
            }
        };
        let record = self
            .by_id
            .get_mut(&user_id)
            .ok_or_else(|| "the user vanished".to_owned())?;
        if setup.name.is_some() {
            record.user.name = setup.name;
        }
        if setup.username.is_some() {
            record.user.username = setup.username;
        }
        if let Some(grant) = setup.permission {
            record.grant = match grant {
                PermissionGrant::None => Grant::None,
                PermissionGrant::Temporary => Grant::Temporary(now + people.temporary_permission),
                PermissionGrant::Permanent => Grant::Permanent,
            };
        }
        if let Some(on_call) = setup.on_call {
            record.on_call = on_call;
        }
        if let Some(on_request) = setup.on_permission_request {
            record.on_permission_request = on_request;
        }
        Ok(record)
    }

    pub fn all(&self) -> impl Iterator<Item = &UserRecord> {
        self.order.iter().filter_map(|id| self.by_id.get(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people(defaults: &UserDefaults) -> Population<'_> {
        Population {
            portfolio: "102290129340398",
            defaults,
            temporary_permission: WEEK,
        }
    }

    #[test]
    fn one_request_a_day_and_two_a_week_until_a_call_connects() {
        let defaults = UserDefaults::default();
        let mut users = Users::default();
        let who = UserRef::Phone("12125550100".into());
        let user = users.find_or_create(&who, &people(&defaults), 0);
        let t0 = 1_000_000;
        assert!(user.check_permission_request(t0).is_ok());
        user.record_permission_request(t0);
        let err = user.check_permission_request(t0 + 60).unwrap_err();
        assert_eq!(err.code(), 138009);
        assert!(
            matches!(err, PlatformError::PermissionRequestLimit { next_allowed } if next_allowed == t0 + DAY)
        );
        assert!(user.check_permission_request(t0 + DAY).is_ok());
        user.record_permission_request(t0 + DAY);
        let err = user.check_permission_request(t0 + 3 * DAY).unwrap_err();
        assert!(
            matches!(err, PlatformError::PermissionRequestLimit { next_allowed } if next_allowed == t0 + WEEK)
        );
        user.call_connected(t0 + 3 * DAY, true);
        assert!(user.check_permission_request(t0 + 3 * DAY).is_ok());
    }

    #[test]
    fn a_permanent_permission_refuses_new_requests() {
        let defaults = UserDefaults {
            initial_permission: PermissionGrant::Permanent,
            ..UserDefaults::default()
        };
        let mut users = Users::default();
        let user =
            users.find_or_create(&UserRef::Phone("12125550100".into()), &people(&defaults), 0);
        assert_eq!(user.check_permission_request(0).unwrap_err().code(), 138017);
        assert!(user.may_be_called(0));
        assert_eq!(user.permissions_response(0).permission.status, "permanent");
    }

    #[test]
    fn a_user_set_up_by_username_has_no_phone_number() {
        let defaults = UserDefaults::default();
        let mut users = Users::default();
        let setup = UserSetup {
            username: Some("@pablo".into()),
            ..UserSetup::default()
        };
        let user = users
            .setup(setup, &people(&defaults), 0)
            .unwrap()
            .user
            .clone();
        assert!(user.wa_id.is_none());
        let id = user.user_id.clone().expect("a BSUID");
        assert!(is_bsuid(&id));
        assert!(users.find(&UserRef::Bsuid(id)).is_some());
    }

    #[test]
    fn permissions_are_reported_in_metas_shape() {
        let defaults = UserDefaults::default();
        let mut users = Users::default();
        let user =
            users.find_or_create(&UserRef::Phone("12125550100".into()), &people(&defaults), 0);
        user.record_permission_request(100);
        user.grant = Grant::Temporary(100 + WEEK);
        let response = user.permissions_response(200);
        assert_eq!(response.permission.status, "temporary");
        assert_eq!(response.permission.expiration_time, Some(100 + WEEK));
        let request = &response.actions[0];
        assert!(!request.can_perform_action);
        assert_eq!(request.limits[0].current_usage, 1);
        assert_eq!(request.limits[0].limit_expiration_time, Some(100 + DAY));
        assert!(response.actions[1].can_perform_action);
    }
}
