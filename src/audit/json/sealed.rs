//! The verifier's reading of an event: one pass over the JSON that refuses a key named twice in any
//! object, at any depth, and keeps only the top-level fields verification needs, borrowed from the
//! line where it can. No tree is built: an event is read at the speed of the scan itself.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

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

/// Keys seen in one object, each with a fingerprint compared first; beyond 32 they spill to the
/// heap.
struct Seen<'de> {
    small: [(u64, Cow<'de, str>); 32],
    n: usize,
    more: Vec<(u64, Cow<'de, str>)>,
}

/// The length and the first and last 8 bytes of a key, folded: equal keys have equal ones, and
/// the keys of an event's objects almost never share one.
fn fingerprint(key: &str) -> u64 {
    let b = key.as_bytes();
    let word = |s: &[u8]| s.iter().fold(0u64, |w, &c| w << 8 | u64::from(c));
    let head = word(b.get(..8).unwrap_or(b));
    let tail = word(b.get(b.len().saturating_sub(8)..).unwrap_or(b));
    head ^ tail.rotate_left(29) ^ (b.len() as u64).rotate_left(58)
}

impl<'de> Seen<'de> {
    fn new() -> Seen<'de> {
        Seen {
            small: std::array::from_fn(|_| (0, Cow::Borrowed(""))),
            n: 0,
            more: Vec::new(),
        }
    }

    /// Records `key`; an error when it was seen before.
    fn insert<E: de::Error>(&mut self, key: Cow<'de, str>) -> Result<(), E> {
        let print = fingerprint(&key);
        let mut seen = self.small.iter().take(self.n).chain(self.more.iter());
        if seen.any(|(p, k)| *p == print && *k == key) {
            return Err(E::custom(format_args!("duplicate key {key:?}")));
        }
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
}

struct AnyVisitor;

impl<'de> Visitor<'de> for AnyVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other)
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
            fn visit_str<E>(self, _: &str) -> Result<Checkpoints, E> {
                Ok(Checkpoints(Vec::new()))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Checkpoints, E> {
                Ok(Checkpoints(Vec::new()))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Checkpoints, E> {
                Ok(Checkpoints(Vec::new()))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Checkpoints, E> {
                Ok(Checkpoints(Vec::new()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Checkpoints, E> {
                Ok(Checkpoints(Vec::new()))
            }
            fn visit_unit<E>(self) -> Result<Checkpoints, E> {
                Ok(Checkpoints(Vec::new()))
            }
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
            fn visit_str<E>(self, _: &str) -> Result<Point, E> {
                Ok(Point(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Point, E> {
                Ok(Point(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Point, E> {
                Ok(Point(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Point, E> {
                Ok(Point(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Point, E> {
                Ok(Point(None))
            }
            fn visit_unit<E>(self) -> Result<Point, E> {
                Ok(Point(None))
            }
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
                    if k == "chains" {
                        s.checkpoints = map.next_value::<Checkpoints>()?.0;
                    } else {
                        let value = map.next_value::<Scalar<'de>>()?;
                        match &*k {
                            "chain" => s.chain = value.str(),
                            "seq" => s.seq = value.u64(),
                            "alg" => s.alg = value.str(),
                            "kid" => s.kid = value.str(),
                            "ts" => s.ts = value.str(),
                            "event" => s.event = value.str(),
                            "heartbeat_s" => s.heartbeat_s = value.u64(),
                            _ => {}
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

#[cfg(test)]
mod tests;
