//! The keys the configuration parser accepts, enumerated from its own types, so that the
//! configuration reference can be checked against the parser rather than against a list kept by
//! hand. A probe deserializer answers every struct with all of its fields and every list with one
//! element, and notes the path of each field on the way (`authorization.rules[].name`).

use std::cell::RefCell;

use serde::de::value::{Error, StrDeserializer};
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;

/// What the probe found: every field's path, and which of those paths are objects of their own.
#[derive(Default)]
struct Found {
    fields: Vec<String>,
    objects: Vec<String>,
}

/// Every key of the configuration that holds a value (sections and list items excluded), sorted:
/// `mode`, `identity.source`, `authorization.rules`, `authorization.rules[].name`, ...
pub fn accepted_keys() -> Vec<String> {
    let found = RefCell::new(Found::default());
    let probe = Probe {
        path: String::new(),
        found: &found,
    };
    // The probe answers every question the types ask, so this succeeds; were a type ever to ask
    // for something it cannot give, the keys found until then are still returned.
    let _ = <super::RawConfig as serde::Deserialize>::deserialize(probe);
    let found = found.into_inner();
    let mut keys: Vec<String> = found
        .fields
        .into_iter()
        .filter(|k| !found.objects.contains(k))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

struct Probe<'a> {
    path: String,
    found: &'a RefCell<Found>,
}

impl<'a> Probe<'a> {
    fn at(&self, path: String) -> Probe<'a> {
        Probe {
            path,
            found: self.found,
        }
    }
}

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_bool(false)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u8(0)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u16(0)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u32(0)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(0)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_i64(0)
    }
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str("")
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_string(String::new())
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let item = self.at(format!("{}[]", self.path));
        visitor.visit_seq(OneItem(Some(item)))
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        if !self.path.is_empty() {
            self.found.borrow_mut().objects.push(self.path.clone());
        }
        visitor.visit_map(Fields {
            probe: self,
            fields,
            next: 0,
        })
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let first = variants
            .first()
            .ok_or_else(|| de::Error::custom("an enum without variants"))?;
        visitor.visit_enum(FirstVariant(first))
    }

    forward_to_deserialize_any! {
        i8 i16 i32 i128 u128 f32 f64 char bytes byte_buf unit unit_struct newtype_struct tuple
        tuple_struct map identifier ignored_any
    }
}

/// A list of one item, so that the fields of list items are found too.
struct OneItem<'a>(Option<Probe<'a>>);

impl<'de> SeqAccess<'de> for OneItem<'_> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0.take().map(|p| seed.deserialize(p)).transpose()
    }
}

/// Every field of a struct, each noted with its path.
struct Fields<'a> {
    probe: Probe<'a>,
    fields: &'static [&'static str],
    next: usize,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(name) = self.fields.get(self.next) else {
            return Ok(None);
        };
        let key: StrDeserializer<'_, Error> = name.into_deserializer();
        seed.deserialize(key).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let name = self.fields.get(self.next).copied().unwrap_or_default();
        self.next += 1;
        let path = if self.probe.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.probe.path)
        };
        self.probe.found.borrow_mut().fields.push(path.clone());
        seed.deserialize(self.probe.at(path))
    }
}

/// An enum's first variant, taken as a unit variant.
struct FirstVariant(&'static str);

impl<'de> EnumAccess<'de> for FirstVariant {
    type Error = Error;
    type Variant = UnitOnly;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, UnitOnly), Error> {
        let name: StrDeserializer<'_, Error> = self.0.into_deserializer();
        Ok((seed.deserialize(name)?, UnitOnly))
    }
}

struct UnitOnly;

impl<'de> VariantAccess<'de> for UnitOnly {
    type Error = Error;
    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, Error> {
        Err(de::Error::custom(
            "the configuration has only unit variants",
        ))
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, Error> {
        Err(de::Error::custom(
            "the configuration has only unit variants",
        ))
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(de::Error::custom(
            "the configuration has only unit variants",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::accepted_keys;

    #[test]
    fn the_probe_finds_keys_of_every_section_and_of_list_items() {
        let keys = accepted_keys();
        for k in [
            "mode",
            "strict",
            "identity.source",
            "authorization.rules",
            "authorization.rules[].name",
            "authorization.rules[].pan",
            "redaction.patterns[].regex",
            "audit.timeout_ms",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} not in {keys:?}");
        }
        for section in ["identity", "audit", "authorization.rules[]"] {
            assert!(!keys.iter().any(|x| x == section), "{section} is no key");
        }
    }
}
