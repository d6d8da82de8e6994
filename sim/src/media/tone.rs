//! The audio the simulated user sends: a steady 440 Hz tone, pre-encoded as Opus because
//! webrtc-rs sends encoded frames but does not encode.
//!
//! `assets/tone-440hz.opus` is one second of 20 ms Opus frames in an Ogg file, made with
//! (Debian packages `sox` and `opus-tools`):
//!
//! ```text
//! sox -n -r 48000 -c 1 -b 16 tone.wav synth 1 sine 440 gain -6
//! opusenc --serial 1 --bitrate 24 --framesize 20 --hard-cbr --comp 10 tone.wav tone-440hz.opus
//! ```
//!
//! 440 Hz fits a whole number of cycles in one second, so looping it is seamless.

use bytes::Bytes;

const TONE_FILE: &[u8] = include_bytes!("../../assets/tone-440hz.opus");

/// The 3-byte Opus frame browsers and Meta send for silence (a 20 ms CELT frame with no
/// energy): packets flow, no sound does.
pub const SILENCE_FRAME: [u8; 3] = [0xf8, 0xff, 0xfe];

/// Opus audio frames, each 20 ms long.
#[derive(Debug, Clone)]
pub struct Frames(Vec<Bytes>);

impl Frames {
    /// The built-in tone.
    pub fn tone() -> Result<Self, OggError> {
        let packets = ogg_packets(TONE_FILE)?;
        // The first two packets are the OpusHead and OpusTags headers, not audio.
        let frames: Vec<Bytes> = packets.into_iter().skip(2).map(Bytes::from).collect();
        if frames.is_empty() {
            return Err(OggError("the tone has no audio frames"));
        }
        Ok(Self(frames))
    }

    /// Silence frames only.
    pub fn silence() -> Self {
        Self(vec![Bytes::from_static(&SILENCE_FRAME)])
    }

    /// The frame to send as the `n`th, looping.
    pub fn frame(&self, n: u64) -> Bytes {
        let len = self.0.len() as u64;
        // `len` is never 0 (both constructors guarantee a frame).
        let index = usize::try_from(n % len.max(1)).unwrap_or(0);
        self.0.get(index).cloned().unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Ogg tone asset is unreadable: {0}")]
pub struct OggError(&'static str);

/// Splits an Ogg stream into its packets (RFC 3533: pages of lacing values; a lacing
/// value below 255 ends a packet, and a packet may continue on the next page).
fn ogg_packets(mut data: &[u8]) -> Result<Vec<Vec<u8>>, OggError> {
    let mut packets = Vec::new();
    let mut current = Vec::new();
    while !data.is_empty() {
        if data.len() < 27 || &data[..4] != b"OggS" {
            return Err(OggError("a page does not start with `OggS`"));
        }
        let segments = usize::from(data[26]);
        let table = data
            .get(27..27 + segments)
            .ok_or(OggError("a segment table is cut short"))?;
        let mut body = &data[27 + segments..];
        for &lacing in table {
            let len = usize::from(lacing);
            let chunk = body
                .get(..len)
                .ok_or(OggError("a page body is cut short"))?;
            current.extend_from_slice(chunk);
            body = &body[len..];
            if lacing < 255 {
                packets.push(std::mem::take(&mut current));
            }
        }
        let page_len = 27 + segments + table.iter().map(|&l| usize::from(l)).sum::<usize>();
        data = &data[page_len..];
    }
    Ok(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tone_is_one_second_of_audible_frames() {
        let frames = Frames::tone().unwrap();
        // 50 frames of 20 ms, plus one for the encoder's pre-skip.
        assert!((50..=51).contains(&frames.0.len()), "{}", frames.0.len());
        // Hard CBR at 24 kb/s: 60 bytes per frame, far above a silence frame.
        assert!(frames.0.iter().all(|frame| frame.len() > 20));
        let len = frames.0.len() as u64;
        assert_eq!(frames.frame(len), frames.frame(0));
    }
}
