//! The SDP checks Meta applies to what a business sends, and a few facts read from an SDP.
//!
//! Meta answers a bad SDP with error 100 and the reason in `error_data.details`; the
//! reasons here are the failures seen in the field (research file §8, dialer notes):
//! no audio section, no Opus, missing ICE credentials, more than one fingerprint, and an
//! answer that keeps `setup:actpass`.

use switchboard_protocol::graph::SdpType;

/// An SDP that passed Meta's checks for its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedSdp {
    text: String,
    kind: SdpType,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SDP validation error: {0}")]
pub struct SdpError(pub String);

impl CheckedSdp {
    pub fn parse(text: &str, kind: SdpType) -> Result<Self, SdpError> {
        let fail = |why: &str| Err(SdpError(why.to_owned()));
        if text.trim().is_empty() {
            return fail("the SDP is empty");
        }
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        if lines.first() != Some(&"v=0") {
            return fail("the SDP must start with `v=0`");
        }
        for prefix in ["o=", "s=", "t="] {
            if !lines.iter().any(|line| line.starts_with(prefix)) {
                return fail(&format!("the SDP has no `{prefix}` line"));
            }
        }
        let Some(audio) = lines.iter().find(|line| line.starts_with("m=audio ")) else {
            return fail("the SDP has no audio media section (`m=audio`)");
        };
        if !audio.contains("RTP/SAVPF") {
            return fail("the audio section must use UDP/TLS/RTP/SAVPF (ICE + DTLS-SRTP)");
        }
        if opus_payload_type(text).is_none() {
            return fail("the audio section does not offer Opus (`a=rtpmap:<pt> opus/48000/2`)");
        }
        for attribute in ["a=ice-ufrag:", "a=ice-pwd:"] {
            if !lines.iter().any(|line| line.starts_with(attribute)) {
                return fail(&format!("the SDP has no `{}` line", &attribute[2..]));
            }
        }
        let fingerprints = lines
            .iter()
            .filter(|line| line.starts_with("a=fingerprint:"))
            .count();
        match fingerprints {
            0 => return fail("the SDP has no DTLS fingerprint (`a=fingerprint:sha-256 ...`)"),
            1 => {}
            _ => return fail("the SDP has more than one `a=fingerprint` line; send exactly one"),
        }
        let setup = setup_role(text);
        match (kind, setup.as_deref()) {
            (_, None) => return fail("the SDP has no `a=setup` line"),
            (SdpType::Answer, Some("actpass")) => {
                return fail(
                    "an answer must not carry `a=setup:actpass`; answer with `a=setup:active`",
                );
            }
            (_, Some("actpass" | "active" | "passive")) => {}
            (_, Some(other)) => return fail(&format!("`a=setup:{other}` is not a DTLS role")),
        }
        Ok(Self {
            text: text.to_owned(),
            kind,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn kind(&self) -> SdpType {
        self.kind
    }

    /// True when `other` is the same SDP, ignoring line-ending and trailing-space
    /// differences (Meta requires `accept` to repeat `pre_accept`'s SDP).
    pub fn same_as(&self, other: &CheckedSdp) -> bool {
        normalised(&self.text) == normalised(&other.text)
    }
}

fn normalised(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim_end)
        .filter(|line| !line.is_empty())
        .collect()
}

/// The payload type the SDP maps to `opus/48000`.
pub fn opus_payload_type(sdp: &str) -> Option<u8> {
    payload_type_of(sdp, "opus/48000")
}

fn payload_type_of(sdp: &str, codec: &str) -> Option<u8> {
    sdp.lines().find_map(|line| {
        let rest = line.trim_end().strip_prefix("a=rtpmap:")?;
        let (pt, encoding) = rest.split_once(' ')?;
        encoding
            .to_ascii_lowercase()
            .starts_with(codec)
            .then(|| pt.parse().ok())
            .flatten()
    })
}

/// The value of `a=setup:`.
pub fn setup_role(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|line| line.trim_end().strip_prefix("a=setup:"))
        .map(str::to_owned)
}

/// The id an SDP gives the `ssrc-audio-level` header extension.
pub fn audio_level_extension_id(sdp: &str) -> Option<u8> {
    sdp.lines().find_map(|line| {
        let rest = line.trim_end().strip_prefix("a=extmap:")?;
        let (id, uri) = rest.split_once(' ')?;
        let id = id.split('/').next()?;
        uri.contains("ssrc-audio-level").then(|| id.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const BROWSER_OFFER: &str = "v=0\r\no=- 46117 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 126\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 AB:CD\r\na=setup:actpass\r\na=mid:0\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:126 telephone-event/8000\r\na=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host\r\n";

    #[test]
    fn a_browser_offer_passes_and_its_facts_are_read() {
        let sdp = CheckedSdp::parse(BROWSER_OFFER, SdpType::Offer).unwrap();
        assert_eq!(sdp.kind(), SdpType::Offer);
        assert_eq!(opus_payload_type(BROWSER_OFFER), Some(111));
        assert_eq!(setup_role(BROWSER_OFFER).as_deref(), Some("actpass"));
        assert_eq!(audio_level_extension_id(BROWSER_OFFER), Some(1));
    }

    #[test]
    fn broken_sdps_are_refused_with_a_reason() {
        let cases: [(&str, SdpType, &str); 8] = [
            ("", SdpType::Offer, "empty"),
            ("hello", SdpType::Offer, "v=0"),
            (
                &BROWSER_OFFER.replace("m=audio", "m=video"),
                SdpType::Offer,
                "m=audio",
            ),
            (
                &BROWSER_OFFER.replace("opus/48000/2", "PCMU/8000"),
                SdpType::Offer,
                "Opus",
            ),
            (
                &BROWSER_OFFER.replace("a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n", ""),
                SdpType::Offer,
                "ice-pwd",
            ),
            (
                &BROWSER_OFFER.replace(
                    "a=setup:actpass",
                    "a=fingerprint:sha-1 00:11\r\na=setup:actpass",
                ),
                SdpType::Offer,
                "more than one",
            ),
            (BROWSER_OFFER, SdpType::Answer, "actpass"),
            (
                &BROWSER_OFFER.replace("a=setup:actpass\r\n", ""),
                SdpType::Offer,
                "a=setup",
            ),
        ];
        for (text, kind, expected) in cases {
            let err = CheckedSdp::parse(text, kind).unwrap_err();
            assert!(err.0.contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn accept_may_repeat_pre_accept_with_other_line_endings() {
        let answer = BROWSER_OFFER.replace("actpass", "active");
        let a = CheckedSdp::parse(&answer, SdpType::Answer).unwrap();
        let b = CheckedSdp::parse(&answer.replace("\r\n", "\n"), SdpType::Answer).unwrap();
        let c = CheckedSdp::parse(&answer.replace("46117", "46118"), SdpType::Answer).unwrap();
        assert!(a.same_as(&b));
        assert!(!a.same_as(&c));
    }
}
