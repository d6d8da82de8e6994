//! The microphones: the list in the picker, the agent's choice (remembered in local
//! storage), and a switch of microphone in the middle of a call.

use std::rc::Rc;

use super::App;
use crate::browser::dom;
use crate::browser::media;

/// Where the chosen microphone is remembered between visits.
const MIC_KEY: &str = "switchboard.microphone";

impl App {
    pub(super) fn chosen_microphone(&self) -> Option<String> {
        let value = self.dom.mic_select.value();
        if !value.is_empty() {
            return Some(value);
        }
        dom::window()
            .local_storage()
            .ok()
            .flatten()
            .and_then(|s| s.get_item(MIC_KEY).ok().flatten())
            .filter(|v| !v.is_empty())
    }

    pub(super) async fn list_microphones(self: Rc<Self>) {
        let microphones = media::microphones().await;
        let chosen = self.chosen_microphone().unwrap_or_default();
        let select = &self.dom.mic_select;
        select.set_text_content(None);
        let mut options = vec![(String::new(), "Default microphone".to_owned())];
        for (index, (id, label)) in microphones.into_iter().enumerate() {
            if id.is_empty() || id == "default" {
                continue;
            }
            let label = if label.is_empty() {
                format!("Microphone {}", index + 1)
            } else {
                label
            };
            options.push((id, label));
        }
        for (id, label) in &options {
            if let Ok(option) = self.dom.element("option", "", label) {
                let _ = option.set_attribute("value", id);
                let _ = select.append_child(&option);
            }
        }
        if options.iter().any(|(id, _)| *id == chosen) {
            select.set_value(&chosen);
        }
    }

    pub(super) async fn choose_microphone(self: Rc<Self>) {
        let chosen = self.dom.mic_select.value();
        if let Some(storage) = dom::window().local_storage().ok().flatten() {
            let _ = storage.set_item(MIC_KEY, &chosen);
        }
        // Taken out while the new track is fetched, so no borrow is held across the wait.
        let Some(mut media) = self.media.borrow_mut().take() else {
            return;
        };
        let device = Some(chosen).filter(|c| !c.is_empty());
        let switched = media.switch_microphone(device.as_deref()).await;
        if self.dialer.borrow().wants_media(media.attempt) {
            media.set_muted(self.dialer.borrow().muted());
            *self.media.borrow_mut() = Some(media);
        }
        if let Err(failure) = switched {
            self.problem(failure);
        }
    }
}
