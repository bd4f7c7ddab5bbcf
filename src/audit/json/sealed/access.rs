//! The fields of an access event the evidence reads, kept by the verifier's one pass: the nested
//! `redaction` and `pan` objects are read here, walked for repeated keys as every object is.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{AnyVisitor, Key, Scalar, Seen};

/// The fields of an access event the evidence reads, each `None` (or 0) when absent or of
/// another type.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Access<'a> {
    pub principal: Option<Cow<'a, str>>,
    pub workload: Option<Cow<'a, str>>,
    pub decision: Option<Cow<'a, str>>,
    pub enforced: Option<bool>,
    pub reason: Option<Cow<'a, str>>,
    pub rule: Option<Cow<'a, str>>,
    /// `redaction.request` and `redaction.response`.
    pub redaction: [Option<Cow<'a, str>>; 2],
    /// `redacted` and `passed` of `pan.request_headers`, `request_body`, `response_headers` and
    /// `response_body`, in that order.
    pub pan: [(u64, u64); 4],
}

/// An object's string fields by name (`redaction`), walked for repeated keys; any other value
/// gives nothing.
pub(super) struct Modes<'de>(pub(super) [Option<Cow<'de, str>>; 2]);

impl<'de> Deserialize<'de> for Modes<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Modes<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Modes<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Modes<'de>, A::Error> {
                let (mut seen, mut out) = (Seen::new(), [None, None]);
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    let value = map.next_value::<Scalar<'de>>()?;
                    match &*k {
                        "request" => out[0] = value.str(),
                        "response" => out[1] = value.str(),
                        _ => {}
                    }
                    seen.insert(k)?;
                }
                Ok(Modes(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Modes<'de>, A::Error> {
                AnyVisitor.visit_seq(seq).map(|_| Modes([None, None]))
            }
            scalars_give!(Modes<'de>, Modes([None, None]));
        }
        d.deserialize_any(V)
    }
}

/// `pan`: per place, `redacted` and `passed` (0 when absent or not a count).
pub(super) struct Pan(pub(super) [(u64, u64); 4]);

const PLACES: [&str; 4] = [
    "request_headers",
    "request_body",
    "response_headers",
    "response_body",
];

impl<'de> Deserialize<'de> for Pan {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Pan, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pan;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pan, A::Error> {
                let (mut seen, mut out) = (Seen::new(), [(0, 0); 4]);
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    let counts = map.next_value::<Place>()?.0;
                    if let Some(at) = PLACES.iter().position(|p| *p == &*k) {
                        if let Some(slot) = out.get_mut(at) {
                            *slot = counts;
                        }
                    }
                    seen.insert(k)?;
                }
                Ok(Pan(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Pan, A::Error> {
                AnyVisitor.visit_seq(seq).map(|_| Pan([(0, 0); 4]))
            }
            scalars_give!(Pan, Pan([(0, 0); 4]));
        }
        d.deserialize_any(V)
    }
}

/// One place of `pan`: its `redacted` and `passed`.
struct Place((u64, u64));

impl<'de> Deserialize<'de> for Place {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Place, D::Error> {
        match d.deserialize_any(PlaceVisitor)? {
            Some(counts) => Ok(Place(counts)),
            None => Ok(Place((0, 0))),
        }
    }
}

struct PlaceVisitor;

impl<'de> Visitor<'de> for PlaceVisitor {
    type Value = Option<(u64, u64)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut seen, mut out) = (Seen::new(), (0, 0));
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            let value = map.next_value::<Scalar<'de>>()?;
            match &*k {
                "redacted" => out.0 = value.u64().unwrap_or(0),
                "passed" => out.1 = value.u64().unwrap_or(0),
                _ => {}
            }
            seen.insert(k)?;
        }
        Ok(Some(out))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        AnyVisitor.visit_seq(seq).map(|_| None)
    }
    scalars_give!(Option<(u64, u64)>, None);
}
