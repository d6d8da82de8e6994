//! The call state machine against duplicated, reordered and racing webhooks and commands.

use super::*;

fn user() -> User {
    User {
        user_id: Some("US.1".into()),
        wa_id: Some("12125550100".into()),
        ..User::default()
    }
}

fn incoming() -> CallUpdate {
    CallUpdate::IncomingConnect {
        user: user(),
        business_number: Some("15550783881".into()),
        offer: "offer".into(),
        at: 100,
    }
}

fn terminate(completed: bool, duration: Option<u64>) -> CallUpdate {
    CallUpdate::Terminate {
        user: user(),
        direction: Direction::Incoming,
        completed,
        start: duration.map(|_| 110),
        end: Some(200),
        duration,
        error: None,
        at: 200,
    }
}

#[test]
fn an_incoming_call_rings_everyone_once() {
    let (call, pushes) = apply(None, &"wacid.1".into(), &incoming());
    assert_eq!(call.state, CallState::Ringing);
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].audience, Audience::Everyone);
    let (again, pushes) = apply(Some(call.clone()), &"wacid.1".into(), &incoming());
    assert_eq!(again, call);
    assert!(pushes.is_empty(), "a duplicate webhook pushes nothing");
}

#[test]
fn the_first_agent_to_accept_wins() {
    let (mut call, _) = apply(None, &"wacid.1".into(), &incoming());
    let push = claim(&mut call, "asha", "answer").unwrap();
    assert!(matches!(push.event, ServerEvent::CallClaimed { ref agent, .. } if agent == "asha"));
    assert_eq!(
        claim(&mut call, "ravi", "answer"),
        Err(CommandError::Claimed("wacid.1".into(), "asha".into()))
    );
}

#[test]
fn a_terminate_before_the_connect_ends_the_call_for_good() {
    let (call, pushes) = apply(None, &"wacid.1".into(), &terminate(false, None));
    assert_eq!(call.state, CallState::Ended);
    assert_eq!(pushes.len(), 1);
    let (call, pushes) = apply(Some(call), &"wacid.1".into(), &incoming());
    assert_eq!(call.state, CallState::Ended);
    assert!(
        pushes.is_empty(),
        "a late connect does not ring a dead call"
    );
}

#[test]
fn an_unanswered_incoming_call_is_missed_and_an_answered_one_completed() {
    let (call, _) = apply(None, &"wacid.1".into(), &incoming());
    let (missed, _) = apply(
        Some(call.clone()),
        &"wacid.1".into(),
        &terminate(false, None),
    );
    assert_eq!(missed.end_status, Some(EndStatus::Missed));
    let (answered, _) = apply(Some(call), &"wacid.1".into(), &terminate(true, Some(90)));
    assert_eq!(answered.end_status, Some(EndStatus::Completed));
    assert_eq!(answered.duration, Some(90));
}

#[test]
fn call_statuses_never_move_backwards() {
    let status = |s| CallUpdate::Status {
        user: user(),
        direction: Direction::Outgoing,
        status: s,
        at: 5,
    };
    let call = Call::dialing("wacid.2".into(), user(), "asha".into(), 1);
    let (call, _) = apply(Some(call), &"wacid.2".into(), &status(CallStatus::Accepted));
    assert_eq!(call.state, CallState::Connected);
    let (call, pushes) = apply(Some(call), &"wacid.2".into(), &status(CallStatus::Ringing));
    assert_eq!(call.status, Some(CallStatus::Accepted));
    assert!(pushes.is_empty());
}

#[test]
fn metas_answer_goes_only_to_the_agent_who_called() {
    let call = Call::dialing("wacid.2".into(), user(), "asha".into(), 1);
    let update = CallUpdate::OutgoingConnect {
        user: user(),
        answer: "answer".into(),
        at: 2,
    };
    let (call, pushes) = apply(Some(call), &"wacid.2".into(), &update);
    assert_eq!(call.state, CallState::Ringing);
    assert_eq!(pushes[0].audience, Audience::Agent("asha".into()));
    assert_eq!(call.replay_for("asha").len(), 1);
    assert!(call.replay_for("ravi").is_empty());
}

#[test]
fn silent_calls_go_stale_by_state() {
    let placeholder = Call::dialing("local:1".into(), user(), "asha".into(), 1_000);
    assert_eq!(stale(&placeholder, 1_100), None);
    assert_eq!(
        stale(&placeholder, 1_200).map(|s| s.0),
        Some(EndStatus::Failed)
    );
    let (ringing, _) = apply(None, &"wacid.1".into(), &incoming());
    assert_eq!(stale(&ringing, 100 + 599), None);
    assert_eq!(
        stale(&ringing, 100 + 601).map(|s| s.0),
        Some(EndStatus::Missed)
    );
    let mut talking = ringing.clone();
    claim(&mut talking, "asha", "answer").unwrap();
    connected(&mut talking, 200);
    assert_eq!(
        stale(&talking, 200 + 3_600),
        None,
        "a long call is not stale"
    );
    assert_eq!(
        stale(&talking, 200 + 12 * 3600 + 1).map(|s| s.0),
        Some(EndStatus::Completed)
    );
    let (ended, _) = apply(Some(talking), &"wacid.1".into(), &terminate(true, Some(9)));
    assert_eq!(stale(&ended, i64::MAX), None);
}

#[test]
fn absurd_times_from_meta_do_not_overflow() {
    let (call, _) = apply(None, &"wacid.1".into(), &incoming());
    let update = CallUpdate::Terminate {
        user: user(),
        direction: Direction::Incoming,
        completed: true,
        start: Some(i64::MIN),
        end: Some(i64::MAX),
        duration: None,
        error: None,
        at: 0,
    };
    let (ended, _) = apply(Some(call), &"wacid.1".into(), &update);
    assert_eq!(ended.state, CallState::Ended);
    assert_eq!(ended.duration, None);
}

#[test]
fn a_rejected_outgoing_call_ends_as_rejected() {
    let call = Call::dialing("wacid.3".into(), user(), "asha".into(), 1);
    let rejected = CallUpdate::Status {
        user: user(),
        direction: Direction::Outgoing,
        status: CallStatus::Rejected,
        at: 3,
    };
    let (call, _) = apply(Some(call), &"wacid.3".into(), &rejected);
    let end = CallUpdate::Terminate {
        user: user(),
        direction: Direction::Outgoing,
        completed: false,
        start: None,
        end: None,
        duration: None,
        error: None,
        at: 4,
    };
    let (call, pushes) = apply(Some(call), &"wacid.3".into(), &end);
    assert_eq!(call.end_status, Some(EndStatus::Rejected));
    assert!(matches!(
        pushes[0].event,
        ServerEvent::CallEnded {
            status: EndStatus::Rejected,
            ..
        }
    ));
}
