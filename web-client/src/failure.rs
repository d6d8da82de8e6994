//! Failures as sentences an agent can act on.
//!
//! Every way a call or a request can fail ends up here as a [`Failure`]: Meta's calling
//! error codes (research §5.1), the router's own refusals, a missing microphone, the
//! browser's WebRTC errors and a server that cannot be reached. The page shows
//! [`Failure::message`] and, when Meta gave one, the code.

use switchboard_protocol::api::ErrorBody;
use switchboard_protocol::ws::CallError;

/// Something went wrong, said plainly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// A whole sentence for the agent.
    pub message: String,
    /// Meta's error code, when Meta gave one.
    pub meta_code: Option<i64>,
    /// The router's error code (`claimed`, `limited`, ...), when the router refused.
    pub code: Option<String>,
    /// When the refused thing may be tried again (Unix seconds), for rate limits.
    pub retry_at: Option<i64>,
}

/// What the agent was doing when a request failed; it decides the words for generic
/// refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    SignIn,
    PlaceCall,
    AcceptCall,
    RejectCall,
    HangUp,
    RequestPermission,
    CheckPermission,
    LoadCallLog,
    LoadSettings,
}

/// Why the microphone could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MicProblem {
    /// The agent or the browser's settings refused access.
    Denied,
    /// No microphone, or the chosen one is gone.
    NotFound,
    /// The device exists but cannot be started (another app holds it, a driver fault).
    Busy,
    /// The page is not a secure context, so the browser offers no microphone at all.
    InsecurePage,
    /// Anything else, with the browser's words.
    Other(String),
}

/// Meta's calling error codes (research §5.1), in words an agent can act on.
pub fn meta_sentence(code: i64) -> Option<&'static str> {
    Some(match code {
        100 => "WhatsApp rejected the call's connection details. Try again; if it keeps happening, tell your administrator.",
        613 => "Too many permission checks right now. Wait a moment and try again.",
        131000 => "WhatsApp reported an unexpected error and ended the call.",
        131009 => "WhatsApp calling isn't available for this customer's country.",
        131026 => "This customer's WhatsApp is too old for calls. Ask them to update the app.",
        131030 => "This number isn't on the business's list of allowed test recipients.",
        131044 => "The business has no valid payment method for WhatsApp calls. Tell your administrator.",
        131055 => "Calling through Switchboard is off because this business number uses SIP.",
        138000 => "Calling isn't enabled on this business number. Tell your administrator.",
        138001 => "This customer can't receive WhatsApp calls (not on WhatsApp, or their app doesn't support calls).",
        138002 => "Too many calls are in progress on this business number. Try again shortly.",
        138003 => "There's already a call in progress with this customer.",
        138004 => "WhatsApp couldn't connect the call. Try again.",
        138005 => "Too many calls were placed too quickly. Wait a moment and try again.",
        138006 => "This customer hasn't given permission to be called yet. Ask for permission first.",
        138007 => "The call timed out while connecting. Try again.",
        138009 => "You've asked this customer for permission too often. Wait before asking again.",
        138012 => "You've reached today's limit of connected calls to this customer.",
        138013 => "Calls from this business number aren't available in its country.",
        138014 => "Calling is paused on this business number because of low call quality.",
        138015 => "Calling can't be enabled until this number may message at least 2,000 customers a day.",
        138017 => "This customer has already given permanent permission to be called.",
        138018 => "Calling isn't set up for this business yet. Tell your administrator.",
        138019 => "The customer's WhatsApp couldn't set up the call.",
        138020 => "The customer's WhatsApp couldn't reach WhatsApp's call servers.",
        138021 => "The call dropped because no audio reached the customer. Check your microphone and network, then call again.",
        138022 => "The call dropped because no audio came from the customer's phone.",
        138023 => "The call ended without any audio connecting.",
        _ => return None,
    })
}

/// The router's words as a sentence: capitalised and ending with a full stop. (ASCII
/// capitals only: the router writes English, and Unicode case tables would add 10 KB to
/// the bundle.)
fn sentence(text: &str) -> String {
    let mut out = text.trim().to_owned();
    if out.is_empty() {
        return out;
    }
    if let Some(first) = out.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            meta_code: None,
            code: None,
            retry_at: None,
        }
    }

    /// A refusal from the router: its status and, when it sent one, its JSON error body.
    pub fn from_api(status: u16, body: Option<&ErrorBody>, action: Action) -> Self {
        let detail = body.map(|b| &b.error);
        let code = detail.map(|d| d.code.clone());
        let meta_code = detail.and_then(|d| d.meta_code);
        let retry_at = detail.and_then(|d| d.retry_at);
        let server_words = detail.map(|d| sentence(&d.message)).unwrap_or_default();
        let message = match (meta_code.and_then(meta_sentence), code.as_deref()) {
            (Some(known), _) => known.to_owned(),
            (None, _) if status == 401 && action == Action::SignIn => {
                "That token wasn't accepted. Check it and try again.".to_owned()
            }
            (None, _) if status == 401 => "Your session has ended. Sign in again.".to_owned(),
            (None, Some("conflict")) if action == Action::PlaceCall => {
                "This customer is already on a call. Wait for it to end, then call again."
                    .to_owned()
            }
            (None, Some("meta_timeout")) => {
                "WhatsApp took too long to answer. Try again.".to_owned()
            }
            (None, Some("meta_unreachable")) => {
                "Switchboard couldn't reach WhatsApp. Try again in a moment.".to_owned()
            }
            (None, Some("meta_error")) => {
                "WhatsApp had a problem with this request. Try again in a moment.".to_owned()
            }
            (None, _) if status >= 500 => format!(
                "The Switchboard server couldn't {} right now. Try again in a moment.",
                action.verb()
            ),
            (None, _) if !server_words.is_empty() => server_words,
            (None, _) => format!("Switchboard couldn't {} (error {status}).", action.verb()),
        };
        Self {
            message,
            meta_code,
            code,
            retry_at,
        }
    }

    /// The request never got an answer: the server is down or the network is gone.
    pub fn unreachable(action: Action) -> Self {
        Self::new(format!(
            "Couldn't reach the Switchboard server to {}. Check your connection and try again.",
            action.verb()
        ))
    }

    /// Why a call ended badly, as the router reported it.
    pub fn from_call_error(error: &CallError) -> Self {
        let message = error
            .meta_code
            .and_then(meta_sentence)
            .map(str::to_owned)
            .unwrap_or_else(|| sentence(&error.message));
        Self {
            message,
            meta_code: error.meta_code,
            code: None,
            retry_at: None,
        }
    }

    pub fn microphone(problem: &MicProblem) -> Self {
        Self::new(match problem {
            MicProblem::Denied => "Switchboard can't use your microphone. Allow microphone access for this site in your browser, then try again.".to_owned(),
            MicProblem::NotFound => "No microphone was found. Plug one in, or choose another in the microphone list.".to_owned(),
            MicProblem::Busy => "Your microphone couldn't be started. Close other apps that use it, or choose another microphone.".to_owned(),
            MicProblem::InsecurePage => "This page can't use a microphone because it isn't secure. Open the dialer over https:// (or on localhost).".to_owned(),
            MicProblem::Other(detail) => format!("Your microphone couldn't be started ({detail})."),
        })
    }

    /// The browser refused a WebRTC step (an SDP it could not apply, a failed offer).
    pub fn webrtc(detail: &str) -> Self {
        Self::new(format!(
            "The browser couldn't set up the call's audio ({detail}). Try again."
        ))
    }

    /// ICE failed: no network path for the audio.
    pub fn audio_path_failed() -> Self {
        Self::new(
            "The call's audio can't get through: the network may be blocking it. Hang up and try again; if it keeps happening, ask your administrator about a TURN server.",
        )
    }

    pub fn invalid_number(to: &str) -> Self {
        if to.trim().is_empty() {
            return Self::new("Enter a phone number or a WhatsApp user id to call.");
        }
        Self::new(format!(
            "\u{201c}{}\u{201d} isn't a phone number with country code (like +1 212 555 0100) or a WhatsApp user id (like US.1349\u{2026}).",
            to.trim()
        ))
    }
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::SignIn => "sign you in",
            Action::PlaceCall => "place the call",
            Action::AcceptCall => "answer the call",
            Action::RejectCall => "decline the call",
            Action::HangUp => "hang up",
            Action::RequestPermission => "ask for permission",
            Action::CheckPermission => "check the permission",
            Action::LoadCallLog => "load the call log",
            Action::LoadSettings => "load the calling settings",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::api::ErrorDetail;

    fn body(code: &str, message: &str, meta_code: Option<i64>) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                meta_code,
                retry_at: None,
            },
        }
    }

    #[test]
    fn a_missing_permission_is_explained_with_metas_code() {
        let error = body(
            "no_permission",
            "(#138006) no approved permission",
            Some(138006),
        );
        let failure = Failure::from_api(403, Some(&error), Action::PlaceCall);
        assert_eq!(
            failure.message,
            "This customer hasn't given permission to be called yet. Ask for permission first."
        );
        assert_eq!(failure.meta_code, Some(138006));
    }

    #[test]
    fn every_documented_calling_code_has_a_sentence() {
        let codes = [
            100, 613, 131009, 131026, 131030, 131044, 131055, 138000, 138001, 138002, 138003,
            138004, 138005, 138006, 138007, 138009, 138012, 138013, 138014, 138015, 138017, 138018,
            138019, 138020, 138021, 138022, 138023,
        ];
        for code in codes {
            let text = meta_sentence(code).unwrap_or_else(|| panic!("{code} has no sentence"));
            assert!(text.ends_with('.'), "{code}: {text}");
        }
    }

    #[test]
    fn an_unknown_meta_code_keeps_the_routers_words_and_the_code() {
        let error = body("meta_refused", "the call could not be made", Some(999_999));
        let failure = Failure::from_api(422, Some(&error), Action::PlaceCall);
        assert_eq!(failure.message, "The call could not be made.");
        assert_eq!(failure.meta_code, Some(999_999));
    }

    #[test]
    fn a_lost_race_for_an_incoming_call_names_the_winner() {
        let error = body("claimed", "this call was taken by ravi", None);
        let failure = Failure::from_api(409, Some(&error), Action::AcceptCall);
        assert_eq!(failure.message, "This call was taken by ravi.");
        assert_eq!(failure.code.as_deref(), Some("claimed"));
    }

    #[test]
    fn a_bad_token_and_an_expired_session_read_differently() {
        let error = body("unauthorized", "a valid agent token is required", None);
        assert_eq!(
            Failure::from_api(401, Some(&error), Action::SignIn).message,
            "That token wasn't accepted. Check it and try again."
        );
        assert_eq!(
            Failure::from_api(401, Some(&error), Action::PlaceCall).message,
            "Your session has ended. Sign in again."
        );
    }

    #[test]
    fn server_faults_say_nothing_internal() {
        let error = body("internal", "internal error", None);
        let failure = Failure::from_api(500, Some(&error), Action::LoadCallLog);
        assert_eq!(
            failure.message,
            "The Switchboard server couldn't load the call log right now. Try again in a moment."
        );
        let failure = Failure::from_api(502, None, Action::PlaceCall);
        assert!(failure.message.contains("place the call"));
    }

    #[test]
    fn a_rate_limit_keeps_the_time_to_try_again() {
        let mut error = body("limited", "one request per day", None);
        error.error.retry_at = Some(1_800_000_000);
        let failure = Failure::from_api(429, Some(&error), Action::RequestPermission);
        assert_eq!(failure.retry_at, Some(1_800_000_000));
        assert_eq!(failure.message, "One request per day.");
    }

    #[test]
    fn a_dropped_call_is_explained_by_its_meta_code() {
        let error = CallError {
            meta_code: Some(138021),
            message: "Media receive timeout".into(),
        };
        let failure = Failure::from_call_error(&error);
        assert!(failure
            .message
            .starts_with("The call dropped because no audio"));
        let unknown = CallError {
            meta_code: None,
            message: "something odd".into(),
        };
        assert_eq!(Failure::from_call_error(&unknown).message, "Something odd.");
    }

    #[test]
    fn a_refused_microphone_says_how_to_allow_it() {
        assert!(Failure::microphone(&MicProblem::Denied)
            .message
            .contains("Allow microphone access"));
        assert!(Failure::microphone(&MicProblem::NotFound)
            .message
            .starts_with("No microphone"));
    }
}
