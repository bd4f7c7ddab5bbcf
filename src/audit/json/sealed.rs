//! The verifier's reading of an event: one pass over the JSON that refuses a key named twice in any
//! object, at any depth, and keeps only the top-level fields verification needs, borrowed from the
//! line where it can. No tree is built: an event is read at the speed of the scan itself.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// The scalar visits of a visitor that expects an object or a list: any other value gives
/// `$nothing` (as `Value::as_object` would answer `None`).
macro_rules! scalars_give {
    ($t:ty, $nothing:expr) => {
        fn visit_str<E>(self, _: &str) -> Result<$t, E> {
            Ok($nothing)
        }
        fn visit_u64<E>(self, _: u64) -> Result<$t, E> {
            Ok($nothing)
        }
        fn visit_i64<E>(self, _: i64) -> Result<$t, E> {
            Ok($nothing)
        }
        fn visit_f64<E>(self, _: f64) -> Result<$t, E> {
            Ok($nothing)
        }
        fn visit_bool<E>(self, _: bool) -> Result<$t, E> {
            Ok($nothing)
        }
        fn visit_unit<E>(self) -> Result<$t, E> {
            Ok($nothing)
        }
    };
}

/// The fields of a sealed event that verification reads; each `None` when absent or of another
/// type (as `Value::as_str` / `as_u64` would answer).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sealed<'a> {
    pub chain: Option<Cow<'a, str>>,
    pub seq: Option<u64>,
    pub alg: Option<Cow<'a, str>>,
    pub kid: Option<Cow<'a, str>>,
    pub ts: Option<Cow<'a, str>>,
    pub event: Option<Cow<'a, str>>,
    pub heartbeat_s: Option<u64>,
    /// The checkpoints of a `heartbeat` or `stop`: each named chain and its seq.
    pub checkpoints: Vec<(String, u64)>,
    /// What an access event says of its request, for the evidence.
    pub access: Access<'a>,
}

impl Sealed<'_> {
    pub fn event(&self) -> &str {
        self.event.as_deref().unwrap_or_default()
    }
}

/// Reads `text`, a JSON object, refusing any object in it that names a key twice.
pub fn read_sealed(text: &str) -> Result<Sealed<'_>, serde_json::Error> {
    serde_json::from_str::<Top>(text).map(|t| t.0)
}

/// Keys seen in one object, each with a fingerprint compared first. The nested objects of an
/// event have a few keys each, kept inline; beyond 8 (the top level) they spill to the heap.
struct Seen<'de> {
    small: [(u64, Cow<'de, str>); 8],
    n: usize,
    more: Vec<(u64, Cow<'de, str>)>,
    /// One bit per fingerprint seen (of 64): a key whose bit is clear is new, unsearched.
    bits: u64,
}

/// A key's length and its first, middle and last bytes: equal keys have equal ones, and the keys
/// of an event's objects seldom share one (a shared one costs a comparison, not a mistake).
fn fingerprint(key: &str) -> u64 {
    let b = key.as_bytes();
    let at = |i: usize| u64::from(b.get(i).copied().unwrap_or(0));
    let len = b.len();
    len as u64 | at(0) << 32 | at(len / 2) << 40 | at(len.saturating_sub(1)) << 48
}

impl<'de> Seen<'de> {
    fn new() -> Seen<'de> {
        Seen {
            small: Default::default(),
            n: 0,
            more: Vec::new(),
            bits: 0,
        }
    }

    /// Records `key`; an error when it was seen before.
    fn insert<E: de::Error>(&mut self, key: Cow<'de, str>) -> Result<(), E> {
        let print = fingerprint(&key);
        let bit = 1u64 << (print.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58);
        if self.bits & bit != 0 {
            let mut seen = self.small.iter().take(self.n).chain(self.more.iter());
            if seen.any(|(p, k)| *p == print && *k == key) {
                return Err(E::custom(format_args!("duplicate key {key:?}")));
            }
        }
        self.bits |= bit;
        match self.small.get_mut(self.n) {
            Some(slot) => {
                *slot = (print, key);
                self.n += 1;
            }
            None => self.more.push((print, key)),
        }
        Ok(())
    }
}

/// An object key, borrowed when it holds no escape.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A value of any kind, walked for repeated keys; strings and unsigned integers are kept, for the
/// fields that are read, the rest dropped.
enum Scalar<'de> {
    Str(Cow<'de, str>),
    U64(u64),
    Bool(bool),
    Other,
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar<'de>, D::Error> {
        d.deserialize_any(AnyVisitor)
    }
}

impl<'de> Scalar<'de> {
    fn str(self) -> Option<Cow<'de, str>> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    fn u64(self) -> Option<u64> {
        match self {
            Scalar::U64(n) => Some(n),
            _ => None,
        }
    }

    fn bool(self) -> Option<bool> {
        match self {
            Scalar::Bool(b) => Some(b),
            _ => None,
        }
    }
}

struct AnyVisitor;

impl<'de> Visitor<'de> for AnyVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar<'de>, E> {
        Ok(u64::try_from(v).map_or(Scalar::Other, Scalar::U64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::U64(v))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other)
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        while seq.next_element::<Scalar<'de>>()?.is_some() {}
        Ok(Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        let mut seen = Seen::new();
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            seen.insert(k)?;
            map.next_value::<Scalar<'de>>()?;
        }
        Ok(Scalar::Other)
    }
}

/// The `chains` of a checkpoint: the objects of a list that name a `chain` and its `seq`. Any
/// other value is no checkpoint, but is walked all the same.
struct Checkpoints(Vec<(String, u64)>);

impl<'de> Deserialize<'de> for Checkpoints {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Checkpoints, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Checkpoints;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checkpoints, A::Error> {
                let mut out = Vec::new();
                while let Some(Point(p)) = seq.next_element::<Point>()? {
                    out.extend(p);
                }
                Ok(Checkpoints(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Checkpoints, A::Error> {
                AnyVisitor.visit_map(map).map(|_| Checkpoints(Vec::new()))
            }
            scalars_give!(Checkpoints, Checkpoints(Vec::new()));
        }
        d.deserialize_any(V)
    }
}

/// One entry of `chains`: `Some((chain, seq))` when it names both.
struct Point(Option<(String, u64)>);

impl<'de> Deserialize<'de> for Point {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Point, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Point;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Point, A::Error> {
                let (mut seen, mut chain, mut seq) = (Seen::new(), None, None);
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    let value = map.next_value::<Scalar<'de>>()?;
                    match &*k {
                        "chain" => chain = value.str().map(Cow::into_owned),
                        "seq" => seq = value.u64(),
                        _ => {}
                    }
                    seen.insert(k)?;
                }
                Ok(Point(chain.zip(seq)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Point, A::Error> {
                AnyVisitor.visit_seq(seq).map(|_| Point(None))
            }
            scalars_give!(Point, Point(None));
        }
        d.deserialize_any(V)
    }
}

/// The event's top-level object.
struct Top<'de>(Sealed<'de>);

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Top<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Top<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top<'de>, A::Error> {
                let (mut seen, mut s) = (Seen::new(), Sealed::default());
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    match &*k {
                        "chains" => s.checkpoints = map.next_value::<Checkpoints>()?.0,
                        "redaction" => s.access.redaction = map.next_value::<Modes<'de>>()?.0,
                        "pan" => s.access.pan = map.next_value::<Pan>()?.0,
                        _ => {
                            let value = map.next_value::<Scalar<'de>>()?;
                            let a = &mut s.access;
                            match &*k {
                                "chain" => s.chain = value.str(),
                                "seq" => s.seq = value.u64(),
                                "alg" => s.alg = value.str(),
                                "kid" => s.kid = value.str(),
                                "ts" => s.ts = value.str(),
                                "event" => s.event = value.str(),
                                "heartbeat_s" => s.heartbeat_s = value.u64(),
                                "principal" => a.principal = value.str(),
                                "workload" => a.workload = value.str(),
                                "decision" => a.decision = value.str(),
                                "enforced" => a.enforced = value.bool(),
                                "reason" => a.reason = value.str(),
                                "rule" => a.rule = value.str(),
                                _ => {}
                            }
                        }
                    }
                    seen.insert(k)?;
                }
                Ok(Top(s))
            }
        }
        d.deserialize_map(V)
    }
}

mod access;
pub use access::Access;
use access::{Modes, Pan};

#[cfg(test)]
mod tests;
