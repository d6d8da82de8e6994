use switchboard_protocol::api::{CallRecord, CallState, Direction};
use switchboard_protocol::ws::{CallError, CallStatus, EndStatus, ServerEvent};
use switchboard_protocol::User;

use super::*;

const OFFER: &str = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n(our offer)";
const ANSWER: &str = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n(our answer)";
const META_SDP: &str = "v=0\r\na=ice-lite\r\nm=audio 3484 UDP/TLS/RTP/SAVPF 111 126\r\n";

/// A dialer signed in as `asha`, with a clock that moves 10 ms per input.
struct Page {
    dialer: Dialer,
    clock: Millis,
}

impl Page {
    fn new() -> Self {
        let mut page = Page {
            dialer: Dialer::new(),
            clock: 1000.0,
        };
        page.send(Input::SignedIn {
            agent: "asha".into(),
        });
        page
    }

    fn send(&mut self, input: Input) -> Vec<Effect> {
        self.clock += 10.0;
        self.dialer.handle(input, self.clock)
    }

    fn event(&mut self, event: ServerEvent) -> Vec<Effect> {
        self.send(Input::Server(event))
    }

    fn phase(&self) -> Phase {
        self.dialer.phase()
    }

    /// Clicks "call" and returns the attempt the dialer opened media for.
    fn click_call(&mut self, to: &str) -> Attempt {
        let effects = self.send(Input::Place { to: to.into() });
        match effects.as_slice() {
            [Effect::OpenMedia { attempt }] => *attempt,
            other => panic!("expected only OpenMedia, got {other:?}"),
        }
    }

    /// Places a call up to the point where `POST /api/calls` leaves.
    fn dial(&mut self, to: &str) -> Attempt {
        let attempt = self.click_call(to);
        assert_eq!(
            self.send(Input::MediaOpened { attempt }),
            [Effect::CreateOffer { attempt }]
        );
        let effects = self.send(Input::LocalDescription {
            attempt,
            sdp: OFFER.into(),
        });
        assert!(
            matches!(effects.as_slice(), [Effect::PostCall { sdp, .. }] if sdp == OFFER),
            "{effects:?}"
        );
        attempt
    }

    /// Places a call and has the router answer with its id.
    fn dial_placed(&mut self, to: &str, call_id: &str) -> Attempt {
        let attempt = self.dial(to);
        self.send(Input::Placed {
            attempt,
            result: Ok(call_id.into()),
        });
        attempt
    }

    fn connected_outgoing(&mut self, call_id: &str) -> Attempt {
        let attempt = self.dial_placed("12125550100", call_id);
        self.event(answered(call_id));
        self.send(Input::RemoteApplied { attempt });
        self.event(status(call_id, CallStatus::Accepted));
        assert_eq!(self.phase(), Phase::Connected);
        attempt
    }

    /// Answers a ringing call up to the point where `/accept` leaves.
    fn answer(&mut self, call_id: &str) -> Attempt {
        let effects = self.send(Input::Accept {
            call_id: call_id.into(),
        });
        let [Effect::OpenMedia { attempt }] = effects.as_slice() else {
            panic!("expected only OpenMedia, got {effects:?}");
        };
        let attempt = *attempt;
        assert_eq!(
            self.send(Input::MediaOpened { attempt }),
            [Effect::CreateAnswer {
                attempt,
                offer: META_SDP.into()
            }]
        );
        let effects = self.send(Input::LocalDescription {
            attempt,
            sdp: ANSWER.into(),
        });
        assert_eq!(
            effects,
            [Effect::PostAccept {
                attempt,
                call_id: call_id.into(),
                sdp: ANSWER.into()
            }]
        );
        attempt
    }
}

fn caller() -> User {
    User {
        user_id: Some("US.10293847561029384756".into()),
        wa_id: Some("12125550100".into()),
        name: Some("Asha Verma".into()),
        username: None,
    }
}

fn incoming(call_id: &str) -> ServerEvent {
    ServerEvent::CallIncoming {
        call_id: call_id.into(),
        user: caller(),
        to: "15550783881".into(),
        sdp: META_SDP.into(),
    }
}

fn answered(call_id: &str) -> ServerEvent {
    ServerEvent::CallAnswered {
        call_id: call_id.into(),
        sdp: META_SDP.into(),
    }
}

fn status(call_id: &str, status: CallStatus) -> ServerEvent {
    ServerEvent::CallStatus {
        call_id: call_id.into(),
        status,
    }
}

fn ended(call_id: &str, status: EndStatus, meta_code: Option<i64>) -> ServerEvent {
    ServerEvent::CallEnded {
        call_id: call_id.into(),
        status,
        duration: None,
        error: meta_code.map(|code| CallError {
            meta_code: Some(code),
            message: "from Meta".into(),
        }),
    }
}

fn claimed(call_id: &str, agent: &str) -> ServerEvent {
    ServerEvent::CallClaimed {
        call_id: call_id.into(),
        agent: agent.into(),
    }
}

fn refused(code: &str, message: &str, meta_code: Option<i64>) -> Failure {
    Failure {
        message: message.into(),
        meta_code,
        code: Some(code.into()),
        retry_at: None,
    }
}

fn has(effects: &[Effect], wanted: &Effect) -> bool {
    effects.contains(wanted)
}

fn applies_an_answer(effects: &[Effect]) -> bool {
    effects
        .iter()
        .any(|e| matches!(e, Effect::ApplyAnswer { .. }))
}

// Media before offers and answers (DESIGN §1: an answer made before the microphone track
// was added carried no audio, and Meta hung up after 20 s).

#[test]
fn an_offer_is_asked_for_only_after_the_microphone_track_is_added() {
    let mut page = Page::new();
    let attempt = page.click_call("+1 212 555 0100");
    assert_eq!(page.phase(), Phase::Preparing);
    // A description reported before the media is open is not sent anywhere.
    assert!(page
        .send(Input::LocalDescription {
            attempt,
            sdp: OFFER.into()
        })
        .is_empty());
    assert_eq!(
        page.send(Input::MediaOpened { attempt }),
        [Effect::CreateOffer { attempt }]
    );
    assert_eq!(
        page.send(Input::LocalDescription {
            attempt,
            sdp: OFFER.into()
        }),
        [Effect::PostCall {
            attempt,
            to: "12125550100".into(),
            sdp: OFFER.into()
        }]
    );
    assert_eq!(page.phase(), Phase::Dialing);
}

#[test]
fn an_answer_is_asked_for_only_after_the_microphone_track_is_added() {
    let mut page = Page::new();
    page.event(incoming("wacid.in"));
    let effects = page.send(Input::Accept {
        call_id: "wacid.in".into(),
    });
    let [Effect::OpenMedia { attempt }] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    let attempt = *attempt;
    assert_eq!(page.phase(), Phase::Accepting);
    assert!(page
        .send(Input::LocalDescription {
            attempt,
            sdp: ANSWER.into()
        })
        .is_empty());
    assert!(matches!(
        page.send(Input::MediaOpened { attempt }).as_slice(),
        [Effect::CreateAnswer { offer, .. }] if offer == META_SDP
    ));
}

#[test]
fn a_description_is_sent_once_even_if_reported_twice() {
    let mut page = Page::new();
    let attempt = page.dial("12125550100");
    assert!(page
        .send(Input::LocalDescription {
            attempt,
            sdp: OFFER.into()
        })
        .is_empty());
}

// One click, one call (DESIGN §1: duplicate events placed the same call twice).

#[test]
fn a_second_click_never_places_a_second_call() {
    let mut page = Page::new();
    let attempt = page.click_call("12125550100");
    assert!(page
        .send(Input::Place {
            to: "12125550100".into()
        })
        .is_empty());
    page.send(Input::MediaOpened { attempt });
    assert!(page
        .send(Input::Place {
            to: "12125550199".into()
        })
        .is_empty());
    page.send(Input::LocalDescription {
        attempt,
        sdp: OFFER.into(),
    });
    assert!(page
        .send(Input::Place {
            to: "12125550100".into()
        })
        .is_empty());
    page.send(Input::Placed {
        attempt,
        result: Ok("wacid.1".into()),
    });
    page.event(status("wacid.1", CallStatus::Accepted));
    assert!(page
        .send(Input::Place {
            to: "12125550100".into()
        })
        .is_empty());
    assert!(!page.dialer.can_place());
}

#[test]
fn a_new_call_can_be_placed_once_the_last_one_ended() {
    let mut page = Page::new();
    page.connected_outgoing("wacid.1");
    page.send(Input::HangUp);
    assert!(page.dialer.can_place());
    let second = page.click_call("12125550100");
    assert_eq!(page.phase(), Phase::Preparing);
    assert_ne!(second.number(), 1);
}

#[test]
fn a_number_that_is_not_one_is_refused_with_a_sentence() {
    let mut page = Page::new();
    assert!(page
        .send(Input::Place {
            to: "call me".into()
        })
        .is_empty());
    assert_eq!(page.phase(), Phase::Idle);
    let error = page.dialer.error().expect("an error");
    assert!(error.message.contains("isn't a phone number"), "{error:?}");
}

// Events and results go to the call they belong to.

#[test]
fn events_for_other_calls_are_not_applied() {
    let mut page = Page::new();
    let attempt = page.dial_placed("12125550100", "wacid.mine");
    assert!(!applies_an_answer(&page.event(answered("wacid.other"))));
    page.event(status("wacid.other", CallStatus::Accepted));
    assert_eq!(page.phase(), Phase::Dialing);
    let effects = page.event(ended("wacid.other", EndStatus::Failed, Some(138021)));
    assert!(!has(&effects, &Effect::CloseMedia { attempt }));
    assert_eq!(page.phase(), Phase::Dialing);
    assert!(page.dialer.error().is_none());
}

#[test]
fn results_of_an_earlier_attempt_are_dropped() {
    let mut page = Page::new();
    let first = page.click_call("12125550100");
    page.send(Input::HangUp);
    let second = page.click_call("12125550100");
    // The first attempt's microphone opens late: it is closed again, not used.
    assert_eq!(
        page.send(Input::MediaOpened { attempt: first }),
        [Effect::CloseMedia { attempt: first }]
    );
    assert!(!page.dialer.wants_media(first));
    assert!(page.dialer.wants_media(second));
    assert!(page
        .send(Input::LocalDescription {
            attempt: first,
            sdp: OFFER.into()
        })
        .is_empty());
    assert!(page
        .send(Input::MediaFailed {
            attempt: first,
            failure: Failure::new("old")
        })
        .is_empty());
    assert_eq!(page.phase(), Phase::Preparing);
    assert_eq!(
        page.send(Input::MediaOpened { attempt: second }),
        [Effect::CreateOffer { attempt: second }]
    );
}

// Meta's answer racing POST /api/calls.

#[test]
fn metas_answer_before_the_call_id_is_applied_when_the_id_arrives() {
    let mut page = Page::new();
    let attempt = page.dial("12125550100");
    assert!(page.event(answered("wacid.1")).is_empty());
    assert!(page
        .event(status("wacid.1", CallStatus::Ringing))
        .is_empty());
    let effects = page.send(Input::Placed {
        attempt,
        result: Ok("wacid.1".into()),
    });
    assert!(
        has(
            &effects,
            &Effect::ApplyAnswer {
                attempt,
                answer: META_SDP.into()
            }
        ),
        "{effects:?}"
    );
    assert_eq!(page.phase(), Phase::Ringing);
    assert_eq!(page.dialer.call_id(), Some("wacid.1"));
    page.send(Input::RemoteApplied { attempt });
    let timings = page.dialer.timings();
    assert!(timings
        .answered_to_remote_applied_ms
        .is_some_and(|ms| ms > 0.0));
}

#[test]
fn an_end_before_the_call_id_ends_the_call_when_the_id_arrives() {
    let mut page = Page::new();
    let attempt = page.dial("12125550100");
    page.event(ended("wacid.1", EndStatus::Failed, Some(138021)));
    assert_eq!(page.phase(), Phase::Dialing);
    let effects = page.send(Input::Placed {
        attempt,
        result: Ok("wacid.1".into()),
    });
    assert!(has(&effects, &Effect::CloseMedia { attempt }));
    assert!(!effects
        .iter()
        .any(|e| matches!(e, Effect::PostTerminate { .. })));
    assert_eq!(page.phase(), Phase::Ended);
    assert_eq!(page.dialer.error().and_then(|e| e.meta_code), Some(138021));
}

#[test]
fn held_events_for_another_call_are_dropped_when_the_id_arrives() {
    let mut page = Page::new();
    let attempt = page.dial("12125550100");
    page.event(answered("wacid.someone-else"));
    page.event(ended("wacid.someone-else", EndStatus::Failed, None));
    let effects = page.send(Input::Placed {
        attempt,
        result: Ok("wacid.1".into()),
    });
    assert!(!applies_an_answer(&effects));
    assert_eq!(page.phase(), Phase::Dialing);
}

#[test]
fn a_replayed_answer_is_applied_only_once() {
    let mut page = Page::new();
    let attempt = page.dial_placed("12125550100", "wacid.1");
    assert!(applies_an_answer(&page.event(answered("wacid.1"))));
    page.send(Input::RemoteApplied { attempt });
    // The socket reconnects and the router replays the answer.
    assert!(!applies_an_answer(&page.event(answered("wacid.1"))));
}

// Hanging up.

#[test]
fn a_call_hung_up_before_the_router_answers_is_ended_once_its_id_arrives() {
    let mut page = Page::new();
    let attempt = page.dial("12125550100");
    assert_eq!(
        page.send(Input::HangUp),
        [Effect::CloseMedia { attempt }],
        "nothing to terminate yet"
    );
    assert_eq!(page.phase(), Phase::Ended);
    assert_eq!(page.dialer.call_to_end_on_exit(), None);
    // A new call is placed before the router answers the first one.
    let second = page.click_call("12125550101");
    assert_eq!(
        page.send(Input::Placed {
            attempt,
            result: Ok("wacid.1".into())
        }),
        [Effect::PostTerminate {
            call_id: "wacid.1".into()
        }]
    );
    assert_eq!(page.phase(), Phase::Preparing, "the new call is untouched");
    assert!(page.dialer.wants_media(second));
}

#[test]
fn hanging_up_while_preparing_tells_nobody_and_frees_the_microphone() {
    let mut page = Page::new();
    let attempt = page.click_call("12125550100");
    assert_eq!(page.send(Input::HangUp), [Effect::CloseMedia { attempt }]);
    assert_eq!(page.phase(), Phase::Ended);
    assert_eq!(page.dialer.outcome(), Some(&Outcome::HungUp));
}

#[test]
fn hanging_up_a_connected_call_closes_media_and_terminates_it() {
    let mut page = Page::new();
    let attempt = page.connected_outgoing("wacid.1");
    assert_eq!(page.dialer.call_to_end_on_exit(), Some("wacid.1"));
    let effects = page.send(Input::HangUp);
    assert_eq!(
        effects,
        [
            Effect::CloseMedia { attempt },
            Effect::PostTerminate {
                call_id: "wacid.1".into()
            }
        ]
    );
    assert_eq!(page.phase(), Phase::Ended);
    assert_eq!(page.dialer.call_to_end_on_exit(), None);
    assert!(
        page.send(Input::HangUp).is_empty(),
        "hanging up twice does nothing"
    );
}

// An outgoing call's life.

#[test]
fn an_outgoing_call_rings_then_connects_on_accepted() {
    let mut page = Page::new();
    let attempt = page.dial_placed("12125550100", "wacid.1");
    assert_eq!(page.phase(), Phase::Dialing);
    page.event(status("wacid.1", CallStatus::Ringing));
    assert_eq!(page.phase(), Phase::Ringing);
    assert_eq!(
        page.event(answered("wacid.1")),
        [Effect::ApplyAnswer {
            attempt,
            answer: META_SDP.into()
        }]
    );
    assert_eq!(
        page.dialer.connected_at(),
        None,
        "the timer waits for ACCEPTED"
    );
    page.event(status("wacid.1", CallStatus::Accepted));
    assert_eq!(page.phase(), Phase::Connected);
    assert!(page.dialer.connected_at().is_some());
    // Late or replayed statuses never move the call backwards.
    page.event(status("wacid.1", CallStatus::Ringing));
    assert_eq!(page.phase(), Phase::Connected);
}

#[test]
fn the_time_from_click_to_offer_sent_is_measured() {
    let mut page = Page::new();
    page.dial("12125550100");
    // Click, media opened, description ready: two steps of 10 ms each.
    assert_eq!(page.dialer.timings().click_to_offer_sent_ms, Some(20.0));
}

#[test]
fn a_call_meta_refuses_shows_the_reason_and_frees_the_microphone() {
    let mut page = Page::new();
    let attempt = page.dial("12125550100");
    let failure = refused(
        "no_permission",
        "This customer hasn't given permission to be called yet. Ask for permission first.",
        Some(138006),
    );
    let effects = page.send(Input::Placed {
        attempt,
        result: Err(failure.clone()),
    });
    assert!(has(&effects, &Effect::CloseMedia { attempt }));
    assert!(!effects
        .iter()
        .any(|e| matches!(e, Effect::PostTerminate { .. })));
    assert_eq!(page.phase(), Phase::Ended);
    assert_eq!(page.dialer.error(), Some(&failure));
}

#[test]
fn a_customer_declining_ends_the_call() {
    let mut page = Page::new();
    let attempt = page.dial_placed("12125550100", "wacid.1");
    let effects = page.event(status("wacid.1", CallStatus::Rejected));
    assert!(has(&effects, &Effect::CloseMedia { attempt }));
    assert_eq!(page.dialer.outcome(), Some(&Outcome::Declined));
}

#[test]
fn the_end_of_a_connected_call_is_shown_with_metas_reason() {
    let mut page = Page::new();
    let attempt = page.connected_outgoing("wacid.1");
    let effects = page.event(ended("wacid.1", EndStatus::Failed, Some(138021)));
    assert!(has(&effects, &Effect::CloseMedia { attempt }));
    assert!(has(&effects, &Effect::RefreshLog));
    assert_eq!(page.phase(), Phase::Ended);
    let error = page.dialer.error().expect("the reason");
    assert_eq!(error.meta_code, Some(138021));
    assert!(error.message.contains("no audio reached the customer"));
}

#[test]
fn no_microphone_ends_the_attempt_with_a_clear_error() {
    let mut page = Page::new();
    let attempt = page.click_call("12125550100");
    let failure = Failure::microphone(&crate::failure::MicProblem::Denied);
    let effects = page.send(Input::MediaFailed {
        attempt,
        failure: failure.clone(),
    });
    assert_eq!(effects, [Effect::CloseMedia { attempt }]);
    assert_eq!(page.phase(), Phase::Ended);
    assert_eq!(page.dialer.error(), Some(&failure));
}

#[test]
fn a_failed_audio_path_is_reported_without_ending_the_call() {
    let mut page = Page::new();
    let attempt = page.connected_outgoing("wacid.1");
    page.send(Input::AudioPathFailed { attempt });
    assert_eq!(page.phase(), Phase::Connected);
    assert!(page.dialer.error().is_some());
}

#[test]
fn mute_toggles_the_microphone_track_and_is_kept_until_it_opens() {
    let mut page = Page::new();
    let attempt = page.click_call("12125550100");
    assert!(page.send(Input::ToggleMute).is_empty());
    assert!(page.dialer.muted());
    assert_eq!(
        page.send(Input::MediaOpened { attempt }),
        [
            Effect::SetMuted {
                attempt,
                muted: true
            },
            Effect::CreateOffer { attempt }
        ]
    );
    assert_eq!(
        page.send(Input::ToggleMute),
        [Effect::SetMuted {
            attempt,
            muted: false
        }]
    );
}

// Incoming calls.

#[test]
fn an_incoming_call_rings_once_even_when_announced_twice() {
    let mut page = Page::new();
    page.event(incoming("wacid.in"));
    page.event(incoming("wacid.in"));
    let banner = page.dialer.banner().expect("ringing");
    assert_eq!(banner.state, BannerState::Ringing);
    assert_eq!(banner.call_id, "wacid.in");
    assert_eq!(banner.waiting, 0);
    assert!(banner.can_accept);
}

#[test]
fn answering_sends_one_answer_and_connects_when_the_router_confirms() {
    let mut page = Page::new();
    page.event(incoming("wacid.in"));
    let attempt = page.answer("wacid.in");
    assert!(
        page.dialer.banner().is_none(),
        "the banner gives way to the call"
    );
    assert!(page
        .send(Input::Accept {
            call_id: "wacid.in".into()
        })
        .is_empty());
    assert_eq!(page.dialer.call_to_end_on_exit(), Some("wacid.in"));
    page.send(Input::Accepted {
        attempt,
        result: Ok(()),
    });
    assert_eq!(page.phase(), Phase::Connected);
    assert!(page.dialer.connected_at().is_some());
    assert_eq!(
        page.dialer.peer().map(Peer::label).as_deref(),
        Some("Asha Verma, +12125550100")
    );
    // The router tells everyone (us included) that we took it: nothing changes.
    assert!(page.event(claimed("wacid.in", "asha")).is_empty());
    assert_eq!(page.phase(), Phase::Connected);
}

#[test]
fn another_agent_taking_a_ringing_call_shows_who_took_it() {
    let mut page = Page::new();
    page.event(incoming("wacid.in"));
    let effects = page.event(claimed("wacid.in", "ravi"));
    assert_eq!(
        effects,
        [Effect::ExpireNotice {
            call_id: "wacid.in".into()
        }]
    );
    let banner = page.dialer.banner().expect("a notice");
    assert_eq!(banner.state, BannerState::Claimed);
    assert_eq!(banner.taken_by, Some("ravi"));
    assert!(!banner.can_accept);
    assert!(page
        .send(Input::Accept {
            call_id: "wacid.in".into()
        })
        .is_empty());
    page.send(Input::DismissNotice {
        call_id: "wacid.in".into(),
    });
    assert!(page.dialer.banner().is_none());
}

#[test]
fn a_call_answered_in_another_window_of_the_same_agent_stops_ringing_here() {
    let mut page = Page::new();
    page.event(incoming("wacid.in"));
    page.event(claimed("wacid.in", "asha"));
    let banner = page.dialer.banner().expect("a notice");
    assert_eq!(banner.state, BannerState::Claimed);
    assert_eq!(banner.taken_by, Some("asha"));
    assert_eq!(page.phase(), Phase::Idle);
}

#[test]
fn losing_the_race_to_answer_frees_the_microphone_and_names_the_winner() {
    let mut page = Page::new();
    page.event(incoming("wacid.in"));
    let attempt = page.answer("wacid.in");
    let effects = page.event(claimed("wacid.in", "ravi"));
    assert!(has(&effects, &Effect::CloseMedia { attempt }));
    assert_eq!(
        page.dialer.outcome(),
        Some(&Outcome::TakenBy(Some("ravi".into())))
    );
    assert_eq!(
        page.dialer.banner().map(|b| b.state),
        Some(BannerState::Claimed)
    );
    // The router's 409 for our accept arrives afterwards and changes nothing.
    let late = page.send(Input::Accepted {
        attempt,
        result: Err(refused("claimed", "this call was taken by ravi", None)),
    });
    assert!(!late
        .iter()
        .any(|e| matches!(e, Effect::PostTerminate { .. })));
    assert_eq!(page.phase(), Phase::Ended);
}

#[test]
fn a_refused_accept_before_the_claim_event_still_names_the_winner() {
    let mut page = Page::new();
    page.event(incoming("wacid.in"));
    let attempt = page.answer("wacid.in");
    let failure = Failure::from_api(
        409,
        Some(&switchboard_protocol::api::ErrorBody {
            error: switchboard_protocol::api::ErrorDetail {
                code: "claimed".into(),
                message: "this call was taken by ravi".into(),
                meta_code: None,
                retry_at: None,
            },
        }),
        crate::failure::Action::AcceptCall,
    );
    let effects = page.send(Input::Accepted {
        attempt,
        result: Err(failure),
    });
    assert!(has(&effects, &Effect::CloseMedia { attempt }));
    let banner = page.dialer.banner().expect("a notice");
    assert_eq!(banner.state, BannerState::Claimed);
    assert_eq!(banner.taken_by, Some("ravi"));
    assert!(
        page.dialer.error().is_none(),
        "losing a race is not an error"
    );
}

#[test]
fn a_caller_hanging_up_while_it_rings_ends_the_banner() {
    let mut page = Page::new();
    page.event(incoming("wacid.in"));
    let effects = page.event(ended("wacid.in", EndStatus::Missed, None));
    assert!(has(&effects, &Effect::RefreshLog));
    assert_eq!(
        page.dialer.banner().map(|b| b.state),
        Some(BannerState::Ended)
    );
}

#[test]
fn declining_a_ringing_call_tells_the_router_and_hides_the_banner() {
    let mut page = Page::new();
    page.event(incoming("wacid.in"));
    assert_eq!(
        page.send(Input::Reject {
            call_id: "wacid.in".into()
        }),
        [Effect::PostReject {
            call_id: "wacid.in".into()
        }]
    );
    assert!(page.dialer.banner().is_none());
    assert_eq!(page.phase(), Phase::Idle);
}

#[test]
fn no_microphone_while_answering_lets_the_call_ring_again() {
    let mut page = Page::new();
    page.event(incoming("wacid.in"));
    let effects = page.send(Input::Accept {
        call_id: "wacid.in".into(),
    });
    let [Effect::OpenMedia { attempt }] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    let effects = page.send(Input::MediaFailed {
        attempt: *attempt,
        failure: Failure::microphone(&crate::failure::MicProblem::NotFound),
    });
    assert_eq!(effects, [Effect::CloseMedia { attempt: *attempt }]);
    let banner = page.dialer.banner().expect("ringing again");
    assert_eq!(banner.state, BannerState::Ringing);
    assert!(banner.can_accept);
}

#[test]
fn hanging_up_while_the_accept_is_in_flight_ends_the_call_once_accepted() {
    let mut page = Page::new();
    page.event(incoming("wacid.in"));
    let attempt = page.answer("wacid.in");
    assert_eq!(page.send(Input::HangUp), [Effect::CloseMedia { attempt }]);
    assert_eq!(
        page.send(Input::Accepted {
            attempt,
            result: Ok(())
        }),
        [Effect::PostTerminate {
            call_id: "wacid.in".into()
        }]
    );
}

#[test]
fn answering_is_refused_while_on_another_call() {
    let mut page = Page::new();
    page.connected_outgoing("wacid.out");
    page.event(incoming("wacid.in"));
    assert!(!page.dialer.banner().expect("ringing").can_accept);
    assert!(page
        .send(Input::Accept {
            call_id: "wacid.in".into()
        })
        .is_empty());
    assert_eq!(page.phase(), Phase::Connected);
    assert_eq!(page.dialer.call_id(), Some("wacid.out"));
    assert!(page.dialer.error().is_some());
}

#[test]
fn several_ringing_calls_queue_behind_the_first() {
    let mut page = Page::new();
    page.event(incoming("wacid.a"));
    page.event(incoming("wacid.b"));
    let banner = page.dialer.banner().expect("ringing");
    assert_eq!((banner.call_id, banner.waiting), ("wacid.a", 1));
    page.event(ended("wacid.a", EndStatus::Missed, None));
    assert_eq!(page.dialer.banner().map(|b| b.call_id), Some("wacid.b"));
}

// The socket coming back.

#[test]
fn reconnecting_checks_the_live_call_and_the_ringing_ones() {
    let mut page = Page::new();
    page.dial_placed("12125550100", "wacid.out");
    page.event(incoming("wacid.in"));
    assert_eq!(
        page.send(Input::SocketOpened),
        [
            Effect::CheckCall {
                call_id: "wacid.out".into()
            },
            Effect::CheckCall {
                call_id: "wacid.in".into()
            },
            Effect::RefreshLog
        ]
    );
}

#[test]
fn a_call_that_ended_while_the_socket_was_down_ends_here_too() {
    let mut page = Page::new();
    let attempt = page.connected_outgoing("wacid.out");
    let record = CallRecord {
        call_id: "wacid.out".into(),
        direction: Direction::Outgoing,
        user: caller(),
        state: CallState::Ended,
        agent: Some("asha".into()),
        created_at: 1,
        connected_at: Some(2),
        ended_at: Some(40),
        duration: Some(38),
        end_status: Some(EndStatus::Completed),
        error: None,
    };
    let effects = page.send(Input::Checked(record));
    assert!(has(&effects, &Effect::CloseMedia { attempt }));
    assert_eq!(
        page.dialer.outcome().map(Outcome::summary).as_deref(),
        Some("Call ended after 38 s.")
    );
}

#[test]
fn a_ringing_call_taken_while_the_socket_was_down_is_shown_as_taken() {
    let mut page = Page::new();
    page.event(incoming("wacid.in"));
    let record = CallRecord {
        call_id: "wacid.in".into(),
        direction: Direction::Incoming,
        user: caller(),
        state: CallState::Connected,
        agent: Some("ravi".into()),
        created_at: 1,
        connected_at: Some(2),
        ended_at: None,
        duration: None,
        end_status: None,
        error: None,
    };
    page.send(Input::Checked(record));
    assert_eq!(page.dialer.banner().and_then(|b| b.taken_by), Some("ravi"));
}
