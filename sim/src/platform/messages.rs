//! Messages the business sends: call-permission requests (interactive or template) and
//! plain texts. Each gets Meta's `sent`, `delivered` and `read` statuses; a permission
//! request also gets the user's `call_permission_reply`, as the user is set to give it.

use switchboard_protocol::graph::{IdRef, MessageContact, MessageResponse, MESSAGING_PRODUCT};
use switchboard_protocol::sim::OnPermissionRequest;
use switchboard_protocol::webhook::{PermissionReply, Timestamp};
use switchboard_protocol::UserRef;

use super::error::PlatformError;
use super::users::Grant;
use super::Platform;
use crate::clock::now_secs;
use crate::ids::new_message_id;

/// A validated `POST /messages`.
pub struct OutboundMessage {
    pub user: UserRef,
    /// `to` or `recipient` exactly as sent, echoed as `contacts[].input`.
    pub input: String,
    pub asks_call_permission: bool,
}

impl Platform {
    pub fn send_message(&self, message: OutboundMessage) -> Result<MessageResponse, PlatformError> {
        let now = now_secs();
        let wamid = new_message_id();
        let people = self.population();
        {
            let mut state = self.lock();
            let user = state.users.find_or_create(&message.user, &people, now);
            if message.asks_call_permission {
                user.check_permission_request(now)?;
                user.record_permission_request(now);
            }
            let sent = self
                .inner
                .envelopes
                .message_status(&user.user, &wamid, "sent", now);
            self.inner.webhooks.send(sent);
        }
        // Meta returns `wa_id` for phone sends and `user_id` for BSUID-only sends.
        let (wa_id, user_id) = message.user.to_and_recipient();
        let contact = MessageContact {
            input: message.input.clone(),
            wa_id,
            user_id,
        };
        tokio::spawn(self.clone().deliver(message, wamid.clone()));
        Ok(MessageResponse {
            messaging_product: MESSAGING_PRODUCT.into(),
            contacts: vec![contact],
            messages: vec![IdRef { id: wamid }],
        })
    }

    /// The message reaches the phone, is read, and the user answers a permission request.
    async fn deliver(self, message: OutboundMessage, wamid: String) {
        let delay = self.inner.config.timings.permission_reply_delay;
        let people = self.population();
        {
            let mut state = self.lock();
            let user = state
                .users
                .find_or_create(&message.user, &people, now_secs());
            let delivered =
                self.inner
                    .envelopes
                    .message_status(&user.user, &wamid, "delivered", now_secs());
            self.inner.webhooks.send(delivered);
        }
        tokio::select! {
            () = self.inner.shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        let temporary = people.temporary_permission;
        let mut state = self.lock();
        let now = now_secs();
        let user = state.users.find_or_create(&message.user, &people, now);
        let read = self
            .inner
            .envelopes
            .message_status(&user.user, &wamid, "read", now);
        self.inner.webhooks.send(read);
        if !message.asks_call_permission {
            return;
        }
        let reply = match user.on_permission_request {
            OnPermissionRequest::Ignore => return,
            OnPermissionRequest::Accept => {
                let until = now + temporary;
                user.grant = Grant::Temporary(until);
                reply("accept", false, Some(until))
            }
            OnPermissionRequest::AcceptPermanent => {
                user.grant = Grant::Permanent;
                reply("accept", true, None)
            }
            OnPermissionRequest::Reject => {
                user.grant = Grant::None;
                reply("reject", false, None)
            }
        };
        let webhook = self
            .inner
            .envelopes
            .permission_reply(&user.user, &wamid, reply, now);
        self.inner.webhooks.send(webhook);
    }
}

fn reply(response: &str, is_permanent: bool, until: Option<i64>) -> PermissionReply {
    PermissionReply {
        response: response.into(),
        is_permanent,
        expiration_timestamp: until.map(Timestamp),
        response_source: Some("user_action".into()),
    }
}
