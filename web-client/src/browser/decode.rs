//! serde's `Deserializer` over values the browser already parsed (`JSON.parse`,
//! `Response.json()`).
//!
//! Why not a crate: serde-wasm-bindgen does the same, but its errors format serde's
//! messages ("invalid type: floating point `1.5`, expected …"), and that formatting
//! (float printing, escaping, Unicode tables) was about 25 KB of the dialer's wasm for
//! messages nobody reads: a frame that does not match is simply not used. Here an error
//! is one value, [`Mismatch`], and the messages are never built.

use js_sys::{Array, Object};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;
use wasm_bindgen::{JsCast, JsValue};

/// The value did not have the shape of the type asked for.
#[derive(Debug)]
pub struct Mismatch;

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the value does not have the expected shape")
    }
}

impl std::error::Error for Mismatch {}

impl de::Error for Mismatch {
    fn custom<T: std::fmt::Display>(_message: T) -> Self {
        Mismatch
    }
}

/// Reads a parsed JSON value into `T`.
pub fn from_value<T: DeserializeOwned>(value: JsValue) -> Result<T, Mismatch> {
    T::deserialize(Value(value))
}

struct Value(JsValue);

/// The largest integer a JavaScript number holds exactly.
const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

impl<'de> de::Deserializer<'de> for Value {
    type Error = Mismatch;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mismatch> {
        let value = self.0;
        if value.is_null() || value.is_undefined() {
            return visitor.visit_unit();
        }
        if let Some(flag) = value.as_bool() {
            return visitor.visit_bool(flag);
        }
        if let Some(number) = value.as_f64() {
            let whole = number.fract() == 0.0 && number.abs() <= MAX_SAFE;
            return match (whole, number < 0.0) {
                (true, false) => visitor.visit_u64(number as u64),
                (true, true) => visitor.visit_i64(number as i64),
                (false, _) => visitor.visit_f64(number),
            };
        }
        if let Some(text) = value.as_string() {
            return visitor.visit_string(text);
        }
        if Array::is_array(&value) {
            let items = Array::from(&value);
            return visitor.visit_seq(Items { items, next: 0 });
        }
        match value.dyn_into::<Object>() {
            Ok(object) => visitor.visit_map(Entries {
                entries: Object::entries(&object),
                next: 0,
                value: None,
            }),
            Err(_) => Err(Mismatch),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mismatch> {
        if self.0.is_null() || self.0.is_undefined() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    /// Unit variants are strings (`"ringing"`); others, objects with one key.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Mismatch> {
        if let Some(tag) = self.0.as_string() {
            return visitor.visit_enum(IntoDeserializer::<Mismatch>::into_deserializer(tag));
        }
        let object = self.0.dyn_into::<Object>().map_err(|_| Mismatch)?;
        let entries = Object::entries(&object);
        if entries.length() != 1 {
            return Err(Mismatch);
        }
        let entry = Array::from(&entries.get(0));
        let tag = entry.get(0).as_string().ok_or(Mismatch)?;
        visitor.visit_enum(Variant {
            tag,
            value: entry.get(1),
        })
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf unit unit_struct newtype_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

struct Items {
    items: Array,
    next: u32,
}

impl<'de> SeqAccess<'de> for Items {
    type Error = Mismatch;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Mismatch> {
        if self.next >= self.items.length() {
            return Ok(None);
        }
        let item = self.items.get(self.next);
        self.next += 1;
        seed.deserialize(Value(item)).map(Some)
    }
}

/// An object's `[key, value]` pairs.
struct Entries {
    entries: Array,
    next: u32,
    value: Option<JsValue>,
}

impl<'de> MapAccess<'de> for Entries {
    type Error = Mismatch;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Mismatch> {
        if self.next >= self.entries.length() {
            return Ok(None);
        }
        let entry = Array::from(&self.entries.get(self.next));
        self.next += 1;
        self.value = Some(entry.get(1));
        seed.deserialize(Value(entry.get(0))).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Mismatch> {
        let value = self.value.take().ok_or(Mismatch)?;
        seed.deserialize(Value(value))
    }
}

/// `{"tag": value}`: an enum variant with content.
struct Variant {
    tag: String,
    value: JsValue,
}

impl<'de> EnumAccess<'de> for Variant {
    type Error = Mismatch;
    type Variant = Value;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Value), Mismatch> {
        let tag = seed.deserialize(Value(JsValue::from_str(&self.tag)))?;
        Ok((tag, Value(self.value)))
    }
}

impl<'de> VariantAccess<'de> for Value {
    type Error = Mismatch;

    fn unit_variant(self) -> Result<(), Mismatch> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Mismatch> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Mismatch> {
        de::Deserializer::deserialize_any(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Mismatch> {
        de::Deserializer::deserialize_any(self, visitor)
    }
}
