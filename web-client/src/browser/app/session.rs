//! Signing in and out: the session resumed from its cookie, the sign-in form, what starts
//! once the agent is known, and a session the router says has ended.

use std::rc::Rc;

use switchboard_protocol::api::{DialerConfig, Login, Session};

use super::App;
use crate::browser::api::{self, ApiError};
use crate::browser::dom::{self, set_attr, show};
use crate::call::Input;
use crate::failure::{Action, Failure};

impl App {
    pub(super) async fn resume_session(self: Rc<Self>) {
        match api::get::<Session>("/api/me").await {
            Ok(session) => self.signed_in_as(session),
            Err(ApiError::Refused { status: 401, .. }) => self.show_sign_in(),
            Err(error) => {
                self.show_sign_in();
                self.problem(error.failure(Action::SignIn));
            }
        }
    }

    fn show_sign_in(&self) {
        show(&self.dom.sign_in_panel, true);
        show(&self.dom.workspace, false);
        show(&self.dom.signed_in, false);
        set_attr(&self.dom.body, "data-signed-in", "false");
        let _ = self.dom.token.focus();
    }

    pub(super) async fn sign_in(self: Rc<Self>) {
        let token = self.dom.token.value();
        if token.trim().is_empty() {
            self.problem(Failure::new("Enter your agent token to sign in."));
            return;
        }
        self.dom.sign_in.set_disabled(true);
        let result = api::post::<_, Session>("/api/login", &Login { token }).await;
        self.dom.sign_in.set_disabled(false);
        match result {
            Ok(session) => {
                self.dom.token.set_value("");
                self.handle(Input::DismissError);
                self.signed_in_as(session);
            }
            Err(error) => self.problem(error.failure(Action::SignIn)),
        }
    }

    fn signed_in_as(self: &Rc<Self>, session: Session) {
        self.signed_in.set(true);
        dom::set_text(&self.dom.agent_name, &session.agent);
        show(&self.dom.sign_in_panel, false);
        show(&self.dom.workspace, true);
        show(&self.dom.signed_in, true);
        set_attr(&self.dom.body, "data-signed-in", "true");
        self.handle(Input::SignedIn {
            agent: session.agent,
        });
        self.spawn(|app| async move { app.load_config().await });
        self.connect();
        self.refresh_log();
        self.spawn(|app| async move { app.list_microphones().await });
        self.render_permission();
        let _ = self.dom.dial_to.focus();
    }

    async fn load_config(self: Rc<Self>) {
        match api::get::<DialerConfig>("/api/config").await {
            Ok(config) => *self.config.borrow_mut() = Some(config),
            Err(error) => {
                let failure = self.refused(&error, Action::LoadSettings);
                self.problem(failure);
            }
        }
    }

    pub(super) async fn sign_out(self: Rc<Self>) {
        if self.dialer.borrow().phase().is_live() {
            self.handle(Input::HangUp);
        }
        let _ = api::post_empty("/api/logout").await;
        // A fresh page is the surest way to drop every piece of the session.
        let _ = dom::window().location().reload();
    }

    /// The router no longer knows this session: the live connection goes and the sign-in
    /// form comes back.
    pub(super) fn session_ended(self: &Rc<Self>) {
        self.signed_in.set(false);
        self.disconnect();
        self.show_sign_in();
    }
}
