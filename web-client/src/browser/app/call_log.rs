//! The call log: loaded one request at a time (a change during a load is fetched once it
//! is done), and an entry chosen to call that customer back.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use switchboard_protocol::api::{CallLog as CallLogPage, CallRecord};
use wasm_bindgen::JsCast;
use web_sys::{Element, Event};

use super::App;
use crate::browser::api;
use crate::browser::dom::{self, log_value};
use crate::browser::view;
use crate::failure::Action;

/// The call log's state, owned by the [`App`].
#[derive(Default)]
pub(super) struct CallLog {
    records: RefCell<Vec<CallRecord>>,
    loading: Cell<bool>,
    /// Something changed while a load was under way: load again after it.
    again: Cell<bool>,
}

impl App {
    pub(super) fn refresh_log(self: &Rc<Self>) {
        if !self.signed_in.get() {
            return;
        }
        if self.call_log.loading.replace(true) {
            // One load at a time; the latest change is fetched once this one is done.
            self.call_log.again.set(true);
            return;
        }
        self.spawn(|app| async move {
            loop {
                app.call_log.again.set(false);
                match api::get::<CallLogPage>("/api/calls?limit=50").await {
                    Ok(page) => {
                        *app.call_log.records.borrow_mut() = page.calls;
                        if let Err(e) = view::call_log(&app.dom, &app.call_log.records.borrow()) {
                            log_value("could not show the call log:", &e);
                        }
                    }
                    Err(error) => {
                        let failure = app.refused(&error, Action::LoadCallLog);
                        dom::set_text(&app.dom.log_note, &failure.message);
                    }
                }
                if !app.call_log.again.get() {
                    break;
                }
            }
            app.call_log.loading.set(false);
        });
    }

    /// An entry was clicked, or chosen with the keyboard: its number goes in the dial box.
    pub(super) fn log_entry_chosen(self: &Rc<Self>, event: &Event) {
        let entry = event
            .target()
            .and_then(|t| t.dyn_into::<Element>().ok())
            .and_then(|e| e.closest("li[data-call-id]").ok().flatten());
        let Some(target) = entry.and_then(|e| e.get_attribute("data-dial")) else {
            return;
        };
        self.dom.dial_to.set_value(&target);
        let _ = self.dom.dial_to.focus();
        self.look_up_permission_now();
    }
}
