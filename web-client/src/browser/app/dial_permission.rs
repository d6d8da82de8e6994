//! The permission to call the number in the dial box: looked up once typing pauses,
//! requested on the agent's click, and updated when the customer answers the request.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use switchboard_protocol::api::{PermissionState, RequestPermission};
use switchboard_protocol::ws::PermissionResponse;
use switchboard_protocol::User;

use super::App;
use crate::browser::api::{self, segment};
use crate::browser::dom::sleep;
use crate::browser::view;
use crate::display;
use crate::failure::{Action, Failure};
use crate::permission::{self, Known};

/// How long typing must pause before the permission is looked up.
const TYPING_PAUSE_MS: f64 = 400.0;

/// What the page knows of the permission, owned by the [`App`].
#[derive(Default)]
pub(super) struct DialPermission {
    known: RefCell<Known>,
    note: RefCell<Option<String>>,
    /// Counts changes to the dial box; a look-up for an older one is dropped.
    typing: Cell<u32>,
}

impl App {
    /// The dial box changed: look the permission up once typing pauses.
    pub(super) fn typed(self: &Rc<Self>) {
        let turn = self.permission.typing.get() + 1;
        self.permission.typing.set(turn);
        self.set_permission(Known::Unknown, None);
        self.render_permission();
        self.spawn(move |app| async move {
            sleep(TYPING_PAUSE_MS).await;
            if app.permission.typing.get() == turn {
                app.check_permission().await;
            }
        });
    }

    /// The dial box was filled in for the agent: look the permission up at once.
    pub(super) fn look_up_permission_now(self: &Rc<Self>) {
        let typing = &self.permission.typing;
        typing.set(typing.get() + 1);
        self.spawn(|app| async move { app.check_permission().await });
    }

    async fn check_permission(self: Rc<Self>) {
        let typed = self.dom.dial_to.value();
        let Some(target) = display::parse_target(&typed) else {
            self.set_permission(Known::Unknown, None);
            self.render_permission();
            return;
        };
        let turn = self.permission.typing.get();
        let path = format!("/api/permissions/{}", segment(target.as_str()));
        let result = api::get::<PermissionState>(&path).await;
        if self.permission.typing.get() != turn {
            return;
        }
        match result {
            Ok(state) => self.set_permission(Known::from_state(&state), None),
            Err(error) => {
                let failure = self.refused(&error, Action::CheckPermission);
                let note = format!("Permission unknown: {}", failure.message);
                self.set_permission(Known::Unknown, Some(note));
            }
        }
        self.render_permission();
    }

    pub(super) async fn request_permission(self: Rc<Self>) {
        let typed = self.dom.dial_to.value();
        let Some(target) = display::parse_target(&typed) else {
            self.problem(Failure::invalid_number(&typed));
            return;
        };
        self.dom.request_permission.set_disabled(true);
        let body = RequestPermission {
            to: target.as_str().to_owned(),
        };
        let result = api::post::<_, PermissionState>("/api/permissions", &body).await;
        self.dom.request_permission.set_disabled(false);
        match result {
            Ok(state) => {
                let note = "Permission request sent. The customer's answer will show here.";
                self.set_permission(Known::from_state(&state), Some(note.to_owned()));
                self.render_permission();
            }
            Err(error) => {
                let failure = self.refused(&error, Action::RequestPermission);
                self.problem(failure);
            }
        }
    }

    /// A `permission.updated` event: shown if it is about the number in the dial box.
    pub(super) fn permission_updated(
        &self,
        user: &User,
        response: PermissionResponse,
        permanent: bool,
        expires_at: Option<i64>,
    ) {
        if permission::concerns(user, &self.dom.dial_to.value()) {
            let known = Known::from_reply(response, permanent, expires_at);
            self.set_permission(known, None);
            self.render_permission();
        }
    }

    fn set_permission(&self, known: Known, note: Option<String>) {
        *self.permission.known.borrow_mut() = known;
        *self.permission.note.borrow_mut() = note;
    }

    pub(super) fn render_permission(&self) {
        view::permission(
            &self.dom,
            &self.permission.known.borrow(),
            self.permission.note.borrow().as_deref(),
        );
    }
}
