//! Counting what a peer sends and receives, and judging whether received packets carry
//! sound.
//!
//! The judgement is made on the packet, without decoding: when the sender includes the
//! `ssrc-audio-level` header extension (browsers do when it is negotiated), its level
//! decides; otherwise the Opus payload size does, because silence and DTX frames are
//! 1–3 bytes and comfort noise stays tiny, while speech or a tone needs tens of bytes.

use std::sync::Mutex;

use switchboard_protocol::sim::MediaReport;

use crate::clock::now_ms;

/// Louder than this many -dBov counts as sound (127 is digital silence).
const AUDIBLE_LEVEL_DBOV: u8 = 90;
/// An Opus payload longer than this carries sound.
const AUDIBLE_PAYLOAD_BYTES: usize = 10;

#[derive(Debug, Default)]
pub struct MediaMeter {
    report: Mutex<MediaReport>,
}

/// One received RTP packet, as the meter needs it.
pub struct Received<'a> {
    pub payload: &'a [u8],
    /// The `ssrc-audio-level` extension's first byte, when present.
    pub audio_level: Option<u8>,
}

impl MediaMeter {
    pub fn new() -> Self {
        Self {
            report: Mutex::new(MediaReport {
                connection_state: "new".into(),
                ..MediaReport::default()
            }),
        }
    }

    fn update(&self, f: impl FnOnce(&mut MediaReport)) {
        let mut report = self
            .report
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut report);
    }

    pub fn report(&self) -> MediaReport {
        let mut out = None;
        self.update(|report| out = Some(report.clone()));
        out.unwrap_or_default()
    }

    pub fn set_connection_state(&self, state: &str) {
        self.update(|report| report.connection_state = state.to_owned());
    }

    pub fn sent(&self, payload_len: usize) {
        self.update(|report| {
            report.packets_sent += 1;
            report.bytes_sent += payload_len as u64;
        });
    }

    pub fn received(&self, packet: Received<'_>) {
        let now = now_ms();
        // The level is the low 7 bits; the top bit is the voice-activity flag.
        let level = packet.audio_level.map(|byte| byte & 0x7f);
        let audible = match level {
            Some(level) => level <= AUDIBLE_LEVEL_DBOV,
            None => packet.payload.len() > AUDIBLE_PAYLOAD_BYTES,
        };
        self.update(|report| {
            report.packets_received += 1;
            report.bytes_received += packet.payload.len() as u64;
            report.audible_packets_received += u64::from(audible);
            report.first_packet_at_ms.get_or_insert(now);
            report.last_packet_at_ms = Some(now);
            if let Some(level) = level {
                let loudest = report.loudest_audio_level_dbov.get_or_insert(level);
                *loudest = (*loudest).min(level);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_frames_are_counted_but_not_judged_audible() {
        let meter = MediaMeter::new();
        for _ in 0..3 {
            meter.received(Received {
                payload: &super::super::tone::SILENCE_FRAME,
                audio_level: None,
            });
        }
        meter.received(Received {
            payload: &[7u8; 60],
            audio_level: None,
        });
        let report = meter.report();
        assert_eq!(report.packets_received, 4);
        assert_eq!(report.bytes_received, 69);
        assert_eq!(report.audible_packets_received, 1);
        assert!(report.first_packet_at_ms.is_some());
    }

    #[test]
    fn the_audio_level_extension_decides_when_present() {
        let meter = MediaMeter::new();
        // A big packet the sender marks as silent (127), then a loud one (20, VAD bit set).
        meter.received(Received {
            payload: &[1u8; 40],
            audio_level: Some(127),
        });
        meter.received(Received {
            payload: &[1u8; 40],
            audio_level: Some(0x80 | 20),
        });
        let report = meter.report();
        assert_eq!(report.audible_packets_received, 1);
        assert_eq!(report.loudest_audio_level_dbov, Some(20));
    }
}
