//! Calls in both directions: Meta's checks on each call action, the call's state, and
//! the timed script that plays the user and produces Meta's call webhooks.
//!
//! Business-initiated: `connect` (Meta's answer) and `RINGING`, then after the answer
//! delay `ACCEPTED` (or `REJECTED` and `terminate`), or `terminate` when the ringing
//! times out. User-initiated: `connect` with the user's offer, then the business's
//! `pre_accept`/`accept`, `reject`, or nothing until the accept timeout. Once answered,
//! a call with no media from the business within the media timeout (or a gap as long as
//! the mid-call timeout) ends `FAILED` with error 138021, as Meta's client does.

use std::sync::Arc;
use std::time::Duration;

use switchboard_protocol::graph::{SdpSession, SdpType};
use switchboard_protocol::sim::{
    CallState, MediaReport, PlaceCall, PlacedCall, SimCall, UserSetup,
};
use switchboard_protocol::webhook::ErrorItem;
use switchboard_protocol::{Bsuid, User, UserRef, WaId};
use tokio::sync::watch;

use super::error::{ControlError, PlatformError};
use super::users::UserRecord;
use super::{Platform, State};
use crate::clock::{now_ms, now_secs};
use crate::ids::new_call_id;
use crate::media::{Audio, MediaError, MediaPeer, PeerOptions, Role};
use crate::sdp::CheckedSdp;
use crate::webhooks::{CallFacts, Direction, Ending};
use switchboard_protocol::sim::OnCall;

/// How often an answered call checks that media from the business still arrives.
const MEDIA_CHECK_EVERY: Duration = Duration::from_millis(100);

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    BusinessTerminated,
    BusinessRejected,
    UserHungUp,
    UserRejected,
    NotAnswered,
    MediaTimeout,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::BusinessTerminated => "business_terminated",
            EndReason::BusinessRejected => "business_rejected",
            EndReason::UserHungUp => "user_hung_up",
            EndReason::UserRejected => "user_rejected",
            EndReason::NotAnswered => "not_answered",
            EndReason::MediaTimeout => "media_timeout",
        }
    }

    /// A normal hang-up of an answered call is `COMPLETED`; everything else `FAILED`.
    fn status(self, answered: bool) -> &'static str {
        match self {
            EndReason::BusinessTerminated | EndReason::UserHungUp if answered => "COMPLETED",
            EndReason::BusinessTerminated
            | EndReason::UserHungUp
            | EndReason::BusinessRejected
            | EndReason::UserRejected
            | EndReason::NotAnswered
            | EndReason::MediaTimeout => "FAILED",
        }
    }

    fn error(self) -> Option<ErrorItem> {
        match self {
            EndReason::MediaTimeout => Some(ErrorItem {
                code: 138021,
                title: Some("Media receive timeout".into()),
                message: Some("Media receive timeout".into()),
                error_data: Some(serde_json::json!({
                    "details": "The WhatsApp client received no media from the business for too long"
                })),
            }),
            EndReason::BusinessTerminated
            | EndReason::BusinessRejected
            | EndReason::UserHungUp
            | EndReason::UserRejected
            | EndReason::NotAnswered => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Ended {
    at_ms: i64,
    reason: EndReason,
}

pub(super) struct CallRecord {
    id: String,
    direction: Direction,
    /// Whom the call is with, as the simulator keeps its users.
    user_id: Bsuid,
    user: User,
    state: watch::Sender<CallState>,
    created_at_ms: i64,
    answered_at_ms: Option<i64>,
    ended: Option<Ended>,
    biz_opaque_callback_data: Option<String>,
    /// The business's SDP from `pre_accept` (or `accept`), which `accept` must repeat.
    business_answer: Option<CheckedSdp>,
    /// Absent only while the peer is being set up.
    peer: Option<Arc<MediaPeer>>,
}

impl CallRecord {
    fn new(id: String, direction: Direction, with: &UserRecord) -> Self {
        Self {
            id,
            direction,
            user_id: with.id.clone(),
            user: with.user.clone(),
            state: watch::Sender::new(CallState::Ringing),
            created_at_ms: now_ms(),
            answered_at_ms: None,
            ended: None,
            biz_opaque_callback_data: None,
            business_answer: None,
            peer: None,
        }
    }

    fn state(&self) -> CallState {
        *self.state.borrow()
    }

    fn is_live(&self) -> bool {
        self.state() != CallState::Ended
    }

    fn facts(&self) -> CallFacts<'_> {
        CallFacts {
            id: &self.id,
            direction: self.direction,
            user: &self.user,
            biz_opaque_callback_data: self.biz_opaque_callback_data.as_deref(),
        }
    }

    fn media(&self) -> MediaReport {
        self.peer
            .as_ref()
            .map(|peer| peer.report())
            .unwrap_or_default()
    }

    fn view(&self) -> SimCall {
        let answered = self.answered_at_ms.is_some();
        SimCall {
            call_id: self.id.as_str().into(),
            direction: self.direction.as_str().into(),
            user: self.user.clone(),
            state: self.state(),
            created_at_ms: self.created_at_ms,
            answered_at_ms: self.answered_at_ms,
            ended_at_ms: self.ended.map(|ended| ended.at_ms),
            end_reason: self.ended.map(|ended| ended.reason.as_str().to_owned()),
            terminate_status: self
                .ended
                .map(|ended| ended.reason.status(answered).to_owned()),
            error_code: self
                .ended
                .and_then(|ended| ended.reason.error())
                .map(|error| error.code),
            media: self.media(),
        }
    }
}

/// A validated business-initiated `connect`.
pub struct ConnectRequest {
    pub user: UserRef,
    pub offer: CheckedSdp,
    pub biz_opaque_callback_data: Option<String>,
}

fn unknown_call(call_id: &str) -> PlatformError {
    PlatformError::invalid(format!(
        "Invalid call_id: no call with id `{call_id}` exists for this phone number"
    ))
}

fn sdp_refused(error: MediaError) -> PlatformError {
    match error {
        MediaError::WebRtc(error) => {
            PlatformError::invalid(format!("SDP validation error: {error}"))
        }
        other => PlatformError::Unexpected(anyhow::Error::new(other)),
    }
}

impl State {
    fn live_call_with(&self, user_id: &Bsuid) -> bool {
        self.calls
            .values()
            .any(|call| call.is_live() && call.user_id == *user_id)
    }

    fn live_calls(&self) -> usize {
        self.calls.values().filter(|call| call.is_live()).count()
    }

    fn insert_call(&mut self, call: CallRecord) {
        self.call_order.push(call.id.clone());
        self.calls.insert(call.id.clone(), call);
    }

    fn remove_call(&mut self, call_id: &str) {
        self.calls.remove(call_id);
        self.call_order.retain(|id| id != call_id);
    }

    /// The call a business action names, with Meta's error when there is none.
    fn business_call(&mut self, call_id: &str) -> Result<&mut CallRecord, PlatformError> {
        self.calls
            .get_mut(call_id)
            .ok_or_else(|| unknown_call(call_id))
    }
}

/// What a business action needs the call to be in.
fn expect_answerable(call: &CallRecord, action: &str) -> Result<(), PlatformError> {
    if call.direction != Direction::UserInitiated {
        return Err(PlatformError::invalid(format!(
            "`{action}` applies only to user-initiated calls; this call was placed by the business"
        )));
    }
    match call.state() {
        CallState::Ringing | CallState::PreAccepted => Ok(()),
        CallState::Accepted => Err(PlatformError::invalid(format!(
            "Cannot {action}: the call is already in progress"
        ))),
        CallState::Ended => Err(PlatformError::invalid(format!(
            "Cannot {action}: the call has already ended"
        ))),
    }
}

impl Platform {
    fn peer_options(&self, audio: Audio) -> PeerOptions {
        PeerOptions {
            role: Role::MetaUser,
            bind_ip: self.inner.config.media_ip,
            audio,
        }
    }

    /// Ends a call once: records why, sends Meta's webhooks for it, and closes its media.
    /// Returns false when it had already ended.
    fn end_locked(&self, state: &mut State, call_id: &str, reason: EndReason) -> bool {
        let Some(call) = state.calls.get_mut(call_id) else {
            return false;
        };
        if !call.is_live() {
            return false;
        }
        let now = now_ms();
        call.ended = Some(Ended { at_ms: now, reason });
        call.state.send_replace(CallState::Ended);
        let envelopes = &self.inner.envelopes;
        if reason == EndReason::UserRejected && call.direction == Direction::BusinessInitiated {
            let rejected = envelopes.call_status(&call.facts(), "REJECTED", now / 1000);
            self.inner.webhooks.send(rejected);
        }
        let ending = Ending {
            status: reason.status(call.answered_at_ms.is_some()),
            answered: call
                .answered_at_ms
                .map(|answered| (answered / 1000, now / 1000)),
            error: reason.error(),
        };
        let terminate = envelopes.call_terminate(&call.facts(), &ending, now / 1000);
        self.inner.webhooks.send(terminate);
        tracing::info!(call_id, reason = reason.as_str(), "call ended");
        if let Some(peer) = call.peer.clone() {
            tokio::spawn(async move { peer.close().await });
        }
        true
    }

    fn end(&self, call_id: &str, reason: EndReason) -> bool {
        let mut state = self.lock();
        self.end_locked(&mut state, call_id, reason)
    }

    /// `connect`: the business calls a user. Returns the new call id.
    pub async fn connect(&self, request: ConnectRequest) -> Result<String, PlatformError> {
        let now = now_secs();
        let call_id = new_call_id();
        {
            let people = self.population();
            let max_calls = self.inner.config.max_concurrent_calls;
            let mut state = self.lock();
            if !Platform::calling_enabled(&state) {
                return Err(PlatformError::CallingDisabled);
            }
            if state.live_calls() >= max_calls {
                return Err(PlatformError::ConcurrentCallLimit);
            }
            let user = state.users.find_or_create(&request.user, &people, now);
            if !user.may_be_called(now) {
                return Err(PlatformError::NoCallPermission);
            }
            user.check_connected_call_limit(now)?;
            let mut call = CallRecord::new(call_id.clone(), Direction::BusinessInitiated, user);
            if state.live_call_with(&call.user_id) {
                return Err(PlatformError::DuplicateCall);
            }
            call.biz_opaque_callback_data = request.biz_opaque_callback_data;
            // Inserted before the media is set up, so a second connect to this user fails
            // with 138003 even while this one is still being set up.
            state.insert_call(call);
        }
        let setup = async {
            let peer = MediaPeer::start(self.peer_options(Audio::Tone)).await?;
            let answer = peer.answer(request.offer.as_str()).await?;
            Ok::<_, MediaError>((peer, answer))
        };
        let (peer, answer) = match setup.await {
            Ok(done) => done,
            Err(error) => {
                self.lock().remove_call(&call_id);
                return Err(sdp_refused(error));
            }
        };
        let state_changes = {
            let mut state = self.lock();
            let call = state.business_call(&call_id)?;
            let peer = Arc::new(peer);
            call.peer = Some(Arc::clone(&peer));
            if !call.is_live() {
                // Terminated while its media was being set up: nothing more to announce.
                tokio::spawn(async move { peer.close().await });
                return Ok(call_id);
            }
            let session = SdpSession {
                sdp_type: SdpType::Answer,
                sdp: answer,
            };
            let envelopes = &self.inner.envelopes;
            self.inner
                .webhooks
                .send(envelopes.call_connect(&call.facts(), session, now));
            self.inner
                .webhooks
                .send(envelopes.call_status(&call.facts(), "RINGING", now_secs()));
            call.state.subscribe()
        };
        tracing::info!(call_id, "business-initiated call ringing");
        tokio::spawn(self.clone().drive(call_id.clone(), state_changes));
        Ok(call_id)
    }

    /// `pre_accept`: the business's answer, applied so media can start early.
    pub async fn pre_accept(&self, call_id: &str, answer: CheckedSdp) -> Result<(), PlatformError> {
        let peer = {
            let mut state = self.lock();
            let call = state.business_call(call_id)?;
            expect_answerable(call, "pre_accept")?;
            if call.state() == CallState::PreAccepted {
                return Err(PlatformError::invalid(
                    "Cannot pre_accept: the call was already pre-accepted",
                ));
            }
            call.business_answer = Some(answer.clone());
            call.state.send_replace(CallState::PreAccepted);
            call.peer.clone()
        };
        let applied = match peer {
            Some(peer) => peer.apply_answer(answer.as_str()).await,
            None => Ok(()),
        };
        if let Err(error) = applied {
            let mut state = self.lock();
            if let Some(call) = state.calls.get_mut(call_id) {
                if call.state() == CallState::PreAccepted {
                    call.business_answer = None;
                    call.state.send_replace(CallState::Ringing);
                }
            }
            return Err(sdp_refused(error));
        }
        Ok(())
    }

    /// `accept`: the business answers; must repeat `pre_accept`'s SDP if there was one.
    pub async fn accept(
        &self,
        call_id: &str,
        answer: CheckedSdp,
        biz_opaque_callback_data: Option<String>,
    ) -> Result<(), PlatformError> {
        let peer_to_apply = {
            let mut state = self.lock();
            let call = state.business_call(call_id)?;
            expect_answerable(call, "accept")?;
            match &call.business_answer {
                Some(earlier) if !earlier.same_as(&answer) => {
                    return Err(PlatformError::invalid(
                        "SDP validation error: the SDP in accept differs from the SDP sent with pre_accept for this call",
                    ));
                }
                Some(_) => None,
                None => call.peer.clone(),
            }
        };
        if let Some(peer) = peer_to_apply {
            peer.apply_answer(answer.as_str())
                .await
                .map_err(sdp_refused)?;
        }
        let mut state = self.lock();
        let now = now_ms();
        let call = state.business_call(call_id)?;
        expect_answerable(call, "accept")?;
        call.business_answer = Some(answer);
        call.answered_at_ms = Some(now);
        if biz_opaque_callback_data.is_some() {
            call.biz_opaque_callback_data = biz_opaque_callback_data;
        }
        call.state.send_replace(CallState::Accepted);
        let user_id = call.user_id.clone();
        if let Some(user) = state.users.get_mut(&user_id) {
            user.call_connected(now / 1000, false);
        }
        tracing::info!(call_id, "user-initiated call accepted");
        Ok(())
    }

    /// `reject`: the business declines a user's call.
    pub fn reject(&self, call_id: &str) -> Result<(), PlatformError> {
        let mut state = self.lock();
        expect_answerable(state.business_call(call_id)?, "reject")?;
        self.end_locked(&mut state, call_id, EndReason::BusinessRejected);
        Ok(())
    }

    /// `terminate`: the business hangs up a call in either direction.
    pub fn terminate(&self, call_id: &str) -> Result<(), PlatformError> {
        let mut state = self.lock();
        if !state.business_call(call_id)?.is_live() {
            return Err(PlatformError::invalid(
                "Cannot terminate: the call has already ended",
            ));
        }
        self.end_locked(&mut state, call_id, EndReason::BusinessTerminated);
        Ok(())
    }

    /// The user calls the business (`POST /sim/calls`).
    pub async fn place_user_call(&self, request: PlaceCall) -> Result<PlacedCall, ControlError> {
        let call_id = new_call_id();
        let user = {
            let people = self.population();
            let now = now_secs();
            let mut state = self.lock();
            if !Platform::calling_enabled(&state) {
                return Err(ControlError::Conflict(
                    "calling is disabled on the business number (settings.calling.status), so the user has no call button".into(),
                ));
            }
            let setup = user_setup_for_call(request)?;
            let caller = state
                .users
                .setup(setup, &people, now)
                .map_err(ControlError::BadRequest)?;
            let call = CallRecord::new(call_id.clone(), Direction::UserInitiated, caller);
            if state.live_call_with(&call.user_id) {
                return Err(ControlError::Conflict(format!(
                    "user {} is already on a call",
                    call.user_id
                )));
            }
            let user = call.user.clone();
            state.insert_call(call);
            user
        };
        let setup = async {
            let peer = MediaPeer::start(self.peer_options(Audio::Tone)).await?;
            let offer = peer.create_offer().await?;
            Ok::<_, MediaError>((peer, offer))
        };
        let (peer, offer) = match setup.await {
            Ok(done) => done,
            Err(error) => {
                self.lock().remove_call(&call_id);
                return Err(ControlError::Unexpected(anyhow::Error::new(error)));
            }
        };
        let state_changes = {
            let mut state = self.lock();
            let call = state
                .calls
                .get_mut(&call_id)
                .ok_or_else(|| ControlError::CallNotFound(call_id.clone()))?;
            let peer = Arc::new(peer);
            call.peer = Some(Arc::clone(&peer));
            if !call.is_live() {
                tokio::spawn(async move { peer.close().await });
                return Ok(PlacedCall {
                    call_id: call_id.into(),
                    user,
                });
            }
            let session = SdpSession {
                sdp_type: SdpType::Offer,
                sdp: offer,
            };
            let connect = self
                .inner
                .envelopes
                .call_connect(&call.facts(), session, now_secs());
            self.inner.webhooks.send(connect);
            call.state.subscribe()
        };
        tracing::info!(call_id, "user-initiated call offered");
        tokio::spawn(self.clone().drive(call_id.clone(), state_changes));
        Ok(PlacedCall {
            call_id: call_id.into(),
            user,
        })
    }

    /// The user hangs up (`POST /sim/calls/{id}/hangup`).
    pub fn hangup(&self, call_id: &str) -> Result<SimCall, ControlError> {
        let mut state = self.lock();
        let call = state
            .calls
            .get(call_id)
            .ok_or_else(|| ControlError::CallNotFound(call_id.to_owned()))?;
        if !call.is_live() {
            return Err(ControlError::Conflict(format!(
                "call {call_id} has already ended"
            )));
        }
        self.end_locked(&mut state, call_id, EndReason::UserHungUp);
        state
            .calls
            .get(call_id)
            .map(CallRecord::view)
            .ok_or_else(|| ControlError::CallNotFound(call_id.to_owned()))
    }

    /// Every call, newest first.
    pub fn calls(&self) -> Vec<SimCall> {
        let state = self.lock();
        state
            .call_order
            .iter()
            .rev()
            .filter_map(|id| state.calls.get(id))
            .map(CallRecord::view)
            .collect()
    }

    pub fn call(&self, call_id: &str) -> Option<SimCall> {
        self.lock().calls.get(call_id).map(CallRecord::view)
    }

    /// The call's timed script, from ringing to its end.
    async fn drive(self, call_id: String, mut changes: watch::Receiver<CallState>) {
        let answered = match self.direction_of(&call_id) {
            Some(Direction::BusinessInitiated) => self.ring_user(&call_id, &mut changes).await,
            Some(Direction::UserInitiated) => self.await_business(&call_id, &mut changes).await,
            None => false,
        };
        if answered {
            self.watch_media(&call_id, &mut changes).await;
        }
    }

    fn direction_of(&self, call_id: &str) -> Option<Direction> {
        self.lock().calls.get(call_id).map(|call| call.direction)
    }

    /// Waits `wait`; false if the call ended or the simulator stopped meanwhile.
    async fn wait_while_live(
        &self,
        wait: Duration,
        changes: &mut watch::Receiver<CallState>,
    ) -> bool {
        tokio::select! {
            () = self.inner.shutdown.cancelled() => false,
            _ = changes.wait_for(|state| *state == CallState::Ended) => false,
            () = tokio::time::sleep(wait) => true,
        }
    }

    /// Business-initiated: the user's phone rings, and the user does what they do.
    async fn ring_user(&self, call_id: &str, changes: &mut watch::Receiver<CallState>) -> bool {
        let timings = self.inner.config.timings;
        let on_call = {
            let state = self.lock();
            state
                .calls
                .get(call_id)
                .and_then(|call| state.users.get(&call.user_id))
                .map_or(OnCall::Answer, |user| user.on_call)
        };
        match on_call {
            OnCall::Answer => {
                if !self.wait_while_live(timings.answer_delay, changes).await {
                    return false;
                }
                self.user_picks_up(call_id)
            }
            OnCall::Reject => {
                if self.wait_while_live(timings.answer_delay, changes).await {
                    self.end(call_id, EndReason::UserRejected);
                }
                false
            }
            OnCall::NoAnswer => {
                if self.wait_while_live(timings.ring_timeout, changes).await {
                    self.end(call_id, EndReason::NotAnswered);
                }
                false
            }
        }
    }

    fn user_picks_up(&self, call_id: &str) -> bool {
        let mut state = self.lock();
        let now = now_ms();
        let Some(call) = state.calls.get_mut(call_id) else {
            return false;
        };
        if call.state() != CallState::Ringing {
            return false;
        }
        call.answered_at_ms = Some(now);
        call.state.send_replace(CallState::Accepted);
        let accepted = self
            .inner
            .envelopes
            .call_status(&call.facts(), "ACCEPTED", now / 1000);
        self.inner.webhooks.send(accepted);
        let user_id = call.user_id.clone();
        if let Some(user) = state.users.get_mut(&user_id) {
            user.call_connected(now / 1000, true);
        }
        true
    }

    /// User-initiated: waits for the business's `accept`, or gives up.
    async fn await_business(
        &self,
        call_id: &str,
        changes: &mut watch::Receiver<CallState>,
    ) -> bool {
        let limit = self.inner.config.timings.accept_timeout;
        let outcome = tokio::select! {
            () = self.inner.shutdown.cancelled() => None,
            state = changes.wait_for(|s| matches!(s, CallState::Accepted | CallState::Ended)) => {
                state.ok().map(|state| *state == CallState::Accepted)
            }
            () = tokio::time::sleep(limit) => {
                self.end(call_id, EndReason::NotAnswered);
                None
            }
        };
        outcome.unwrap_or(false)
    }

    /// An answered call: ends it with 138021 when the business sends no media.
    async fn watch_media(&self, call_id: &str, changes: &mut watch::Receiver<CallState>) {
        let timings = self.inner.config.timings;
        let first_limit = i64::try_from(timings.media_timeout.as_millis()).unwrap_or(i64::MAX);
        let gap_limit = i64::try_from(timings.media_gap_timeout.as_millis()).unwrap_or(i64::MAX);
        while self.wait_while_live(MEDIA_CHECK_EVERY, changes).await {
            let Some((answered_at, media)) = self.lock().calls.get(call_id).map(|call| {
                (
                    call.answered_at_ms.unwrap_or(call.created_at_ms),
                    call.media(),
                )
            }) else {
                return;
            };
            let now = now_ms();
            let starved = match media.last_packet_at_ms {
                None => now - answered_at >= first_limit,
                Some(last) => now - last >= gap_limit,
            };
            if starved {
                self.end(call_id, EndReason::MediaTimeout);
                return;
            }
        }
    }
}

/// `POST /sim/calls` names the caller by phone, or by BSUID and/or username.
fn user_setup_for_call(request: PlaceCall) -> Result<UserSetup, ControlError> {
    if request.from.is_none() && request.user_id.is_none() && request.username.is_none() {
        return Err(ControlError::BadRequest(
            "give `from` (a phone number), or `user_id` and/or `username` for a user without a visible number".into(),
        ));
    }
    Ok(UserSetup {
        wa_id: request.from.map(WaId::from),
        user_id: request.user_id,
        name: request.name,
        username: request.username,
        ..UserSetup::default()
    })
}
