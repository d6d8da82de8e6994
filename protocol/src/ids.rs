//! Identities that cross the wire, as types: a call id cannot be passed where a phone number
//! or a user id is meant. Each is its text on the wire (serde-transparent).

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize};

/// Defines an opaque text identity with the conversions every one of them needs.
macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}

text_id! {
    /// A call's id: Meta's `wacid.…`, or the router's `local:<uuid>` while Meta has not named
    /// the call yet. Opaque text: Meta does not promise a format beyond that.
    CallId
}

text_id! {
    /// A WhatsApp phone number as Meta writes it (`wa_id`): digits, no `+`. Meta shares a
    /// user's only when the user allows; a user may be known by their [`Bsuid`] alone.
    WaId
}

text_id! {
    /// A business-scoped user id (BSUID) as Meta sends it since April 2026, e.g.
    /// `US.13491208655302741918`, or a parent id `US.ENT.…`. Unique per user and business.
    Bsuid
}

/// Reads an optional id, taking empty text as absent: records written before Meta sent
/// BSUIDs kept an empty string where the id was unknown.
pub fn non_empty<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: From<String>,
{
    let text = Option::<String>::deserialize(deserializer)?;
    Ok(text.filter(|text| !text.is_empty()).map(T::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_id_is_its_text_on_the_wire() {
        let id = CallId::from("wacid.HBgL");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"wacid.HBgL\"");
        let back: CallId = serde_json::from_str("\"wacid.HBgL\"").unwrap();
        assert_eq!(back, id);
        assert_eq!(back, "wacid.HBgL");
    }

    #[test]
    fn phone_numbers_and_user_ids_are_their_text_on_the_wire() {
        let wa_id: WaId = serde_json::from_str("\"12125550100\"").unwrap();
        assert_eq!(wa_id, "12125550100");
        let bsuid = Bsuid::from("US.1");
        assert_eq!(serde_json::to_string(&bsuid).unwrap(), "\"US.1\"");
    }

    #[derive(Deserialize)]
    struct Known {
        #[serde(default, deserialize_with = "non_empty")]
        id: Option<Bsuid>,
    }

    #[test]
    fn an_empty_id_reads_as_unknown() {
        let read = |json: &str| serde_json::from_str::<Known>(json).unwrap().id;
        assert_eq!(read(r#"{"id":""}"#), None);
        assert_eq!(read(r#"{"id":null}"#), None);
        assert_eq!(read("{}"), None);
        assert_eq!(read(r#"{"id":"US.1"}"#), Some(Bsuid::from("US.1")));
    }
}
