//! Asking a user for permission to call them, within Meta's limits, and what their
//! permission is now.

use switchboard_protocol::api::PermissionState;
use switchboard_protocol::graph::MessageRequest;
use switchboard_protocol::UserRef;

use super::{Calling, CallingError, PermissionRequestStyle};
use crate::domain::clock::now_secs;
use crate::domain::permission::{Permission, RequestRefused};

impl Calling {
    /// Sends a call-permission request, within Meta's limits (checked here first).
    pub async fn request_permission(&self, to: &str) -> Result<PermissionState, CallingError> {
        let target = UserRef::parse(to).map_err(CallingError::Invalid)?;
        let user = target.to_user();
        let now = now_secs();
        self.update_permission(&user, |permission| {
            permission
                .take_request(now)
                .map_err(|refused| match refused {
                    RequestRefused::Limit { retry_at } => CallingError::Limited {
                        reason: refused.to_string(),
                        retry_at,
                    },
                    RequestRefused::AlreadyPermanent => CallingError::Conflict(refused.to_string()),
                })
        })
        .await?;
        let (phone, bsuid) = target.to_and_recipient();
        let request = match &self.style {
            PermissionRequestStyle::Interactive { text } => {
                MessageRequest::permission_request(phone, bsuid, text.clone())
            }
            PermissionRequestStyle::Template { name, language } => {
                MessageRequest::permission_template(phone, bsuid, name.clone(), language.clone())
            }
        };
        if let Err(e) = self.graph.send_message(&request).await {
            let undone = self
                .update_permission(&user, |permission| {
                    permission.return_request(now);
                    Ok(())
                })
                .await;
            if let Err(undo) = undone {
                tracing::warn!(error = %undo, "cannot return a refused permission request");
            }
            return Err(e.into());
        }
        let stored = self.load_permission(&user).await?;
        Ok(stored
            .map_or_else(|| Permission::unknown(user, now), |v| v.value)
            .state(now))
    }

    /// The permission state of a user: Meta's current view when Meta answers, else ours.
    pub async fn permission(&self, who: &str) -> Result<PermissionState, CallingError> {
        let target = UserRef::parse(who).map_err(CallingError::Invalid)?;
        let user = target.to_user();
        let now = now_secs();
        match self.graph.call_permissions(&target).await {
            Ok(answer) => {
                let permission = self
                    .update_permission(&user, |permission| {
                        permission.apply_meta(
                            &answer.permission.status,
                            answer.permission.expiration_time,
                            now,
                        );
                        Ok(permission.clone())
                    })
                    .await?;
                Ok(permission.state(now))
            }
            Err(e) => {
                tracing::warn!(error = %e, "Meta's permission check failed; answering from what we know");
                let stored = self.load_permission(&user).await?;
                Ok(stored
                    .map_or_else(|| Permission::unknown(user, now), |v| v.value)
                    .state(now))
            }
        }
    }
}
