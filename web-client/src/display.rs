//! How the page shows times, durations, people and numbers. Pure functions, so the words
//! on screen are tested here rather than in a browser.

use switchboard_protocol::{User, UserRef};

/// `mm:ss` for the call timer (minutes keep counting past 59).
pub fn clock(elapsed_ms: f64) -> String {
    let secs = if elapsed_ms.is_finite() && elapsed_ms > 0.0 {
        (elapsed_ms / 1000.0) as u64
    } else {
        0
    };
    format!("{:02}:{:02}", secs / 60, secs % 60)
}

/// A call's length for the call log: `42 s`, `3:07`, `1:02:07`.
pub fn duration(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{}:{:02}", secs / 60, secs % 60),
        _ => format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A civil date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
}

/// Unix seconds to the civil date and time, in a zone `offset_min` minutes east of UTC
/// (Howard Hinnant's days-from-civil, inverted).
fn civil(unix: i64, offset_min: i64) -> Civil {
    // Times come from the router's events (a permission's expiry, a retry time): any i64
    // must date without overflow, the extremes saturating.
    let local = unix.saturating_add(offset_min.saturating_mul(60));
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: (secs / 3600) as u32,
        minute: (secs / 60 % 60) as u32,
    }
}

/// When something happened, for the call log: `14:05` today, `21 Nov 14:05` this year,
/// `21 Nov 2025 14:05` before. `offset_min` is the browser's zone, minutes east of UTC.
pub fn when(unix: i64, now: i64, offset_min: i64) -> String {
    let at = civil(unix, offset_min);
    let today = civil(now, offset_min);
    let time = format!("{:02}:{:02}", at.hour, at.minute);
    let month = MONTHS[(at.month as usize).saturating_sub(1) % 12];
    if (at.year, at.month, at.day) == (today.year, today.month, today.day) {
        time
    } else if at.year == today.year {
        format!("{} {month} {time}", at.day)
    } else {
        format!("{} {month} {} {time}", at.day, at.year)
    }
}

/// An ISO 8601 UTC timestamp, for `<time datetime>`.
pub fn iso(unix: i64) -> String {
    let at = civil(unix, 0);
    let secs = unix.rem_euclid(60);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{secs:02}Z",
        at.year, at.month, at.day, at.hour, at.minute
    )
}

/// A phone number as people read it: `+12125550100`.
fn phone(wa_id: &str) -> String {
    format!("+{}", wa_id.trim_start_matches('+'))
}

/// Who a user is, in two parts: the name to show first, and the number (or the username
/// when Meta withholds the number) to show beside it. The second part is empty when the
/// first already says everything known.
pub fn who(user: &User) -> (String, String) {
    let number = user.wa_id.as_deref().map(phone);
    let handle = number.clone().or_else(|| user.username.clone());
    match (&user.name, handle) {
        (Some(name), Some(handle)) => (name.clone(), handle),
        (Some(name), None) => (name.clone(), bsuid_text(user)),
        (None, Some(handle)) if number.is_some() && user.username.is_some() => {
            (user.username.clone().unwrap_or_default(), handle)
        }
        (None, Some(handle)) => (handle, String::new()),
        (None, None) => (bsuid_text(user), String::new()),
    }
}

fn bsuid_text(user: &User) -> String {
    user.user_id.as_deref().unwrap_or_default().to_owned()
}

/// `who` as one line: `Asha Verma, +12125550100`.
pub fn who_line(user: &User) -> String {
    match who(user) {
        (first, second) if second.is_empty() => first,
        (first, second) => format!("{first}, {second}"),
    }
}

/// What to put in the dial box to call this user again: the number when known, else the
/// business-scoped user id.
pub fn dial_target(user: &User) -> String {
    match &user.wa_id {
        Some(number) if !number.is_empty() => number.as_str().to_owned(),
        _ => bsuid_text(user),
    }
}

/// Reads what an agent typed into the dial box, forgiving the spaces, dashes, dots and
/// brackets people write phone numbers with.
pub fn parse_target(typed: &str) -> Option<UserRef> {
    let typed = typed.trim();
    if let Ok(target) = UserRef::parse(typed) {
        return Some(target);
    }
    let compact: String = typed
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
        .collect();
    UserRef::parse(&compact)
        .ok()
        .filter(|t| matches!(t, UserRef::Phone(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_timer_shows_minutes_and_seconds() {
        assert_eq!(clock(0.0), "00:00");
        assert_eq!(clock(999.0), "00:00");
        assert_eq!(clock(65_400.0), "01:05");
        assert_eq!(clock(3_725_000.0), "62:05");
        assert_eq!(clock(-5.0), "00:00");
        assert_eq!(clock(f64::NAN), "00:00");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(0), "0 s");
        assert_eq!(duration(42), "42 s");
        assert_eq!(duration(187), "3:07");
        assert_eq!(duration(3727), "1:02:07");
    }

    #[test]
    fn times_say_only_as_much_of_the_date_as_needed() {
        // 2026-11-21 14:05:00 UTC.
        let at = 1_795_269_900;
        assert_eq!(when(at, at + 60, 0), "14:05");
        assert_eq!(when(at, at + 2 * 86_400, 0), "21 Nov 14:05");
        assert_eq!(when(at, at + 400 * 86_400, 0), "21 Nov 2026 14:05");
        // The same moment in India (UTC+5:30) is 19:35.
        assert_eq!(when(at, at, 330), "19:35");
        // And in New York (UTC-5) it is the morning of the same day.
        assert_eq!(when(at, at, -300), "09:05");
        assert_eq!(iso(at), "2026-11-21T14:05:00Z");
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn the_furthest_times_an_event_can_carry_are_dated_without_overflow() {
        // A `permission.updated` with `expires_at` near i64::MAX, shown in UTC+14,
        // overflowed here (fuzz/corpus/dialer_wire/regression-expiry-at-i64-max).
        for (at, zone) in [(i64::MAX, 840), (i64::MIN, -720), (i64::MAX, i64::MAX)] {
            assert!(!when(at, 1_795_269_900, zone).is_empty());
            assert!(!iso(at).is_empty());
        }
    }

    #[test]
    fn leap_days_and_year_ends_are_dated_right() {
        // 2028-02-29 12:00 UTC and 2026-12-31 23:59 UTC.
        assert_eq!(iso(1_835_438_400), "2028-02-29T12:00:00Z");
        assert_eq!(iso(1_798_761_540), "2026-12-31T23:59:00Z");
    }

    #[test]
    fn a_caller_is_shown_by_name_and_number_or_username() {
        let full = User {
            user_id: Some("US.1".into()),
            wa_id: Some("12125550100".into()),
            name: Some("Asha Verma".into()),
            username: Some("@asha".into()),
        };
        assert_eq!(who(&full), ("Asha Verma".into(), "+12125550100".into()));
        let no_number = User {
            wa_id: None,
            ..full.clone()
        };
        assert_eq!(who(&no_number), ("Asha Verma".into(), "@asha".into()));
        let only_id = User {
            user_id: Some("US.13491208655302741918".into()),
            ..User::default()
        };
        assert_eq!(who_line(&only_id), "US.13491208655302741918");
        let number_only = User {
            wa_id: Some("12125550100".into()),
            ..User::default()
        };
        assert_eq!(who_line(&number_only), "+12125550100");
        let username_and_number = User { name: None, ..full };
        assert_eq!(who_line(&username_and_number), "@asha, +12125550100");
    }

    #[test]
    fn calling_back_uses_the_number_or_else_the_user_id() {
        let user = User {
            user_id: Some("US.1".into()),
            wa_id: Some("12125550100".into()),
            ..User::default()
        };
        assert_eq!(dial_target(&user), "12125550100");
        let hidden = User {
            wa_id: None,
            ..user
        };
        assert_eq!(dial_target(&hidden), "US.1");
    }

    #[test]
    fn typed_numbers_may_carry_spaces_and_punctuation() {
        assert_eq!(
            parse_target("+1 (212) 555-0100"),
            Some(UserRef::Phone("12125550100".into()))
        );
        assert_eq!(
            parse_target(" US.13491208655302741918 "),
            Some(UserRef::Bsuid("US.13491208655302741918".into()))
        );
        assert_eq!(parse_target("U S.1349"), None);
        assert_eq!(parse_target("call me"), None);
        assert_eq!(parse_target(""), None);
    }
}
