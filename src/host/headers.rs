//! A header or trailer map as the flow reads it: every name and value in one buffer, so reading a
//! map costs two allocations however many entries it has, and a value is masked where it lies.

/// One entry: where its name and its value sit in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    name: (usize, usize),
    value: (usize, usize),
}

/// The entries of one map, in the proxy's order (a name may occur more than once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
}

impl Headers {
    /// An empty map with room for `entries` entries of `bytes` bytes in all.
    pub fn with_capacity(entries: usize, bytes: usize) -> Headers {
        Headers {
            bytes: Vec::with_capacity(bytes),
            entries: Vec::with_capacity(entries),
        }
    }

    /// Adds an entry after those already there.
    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        let at = self.bytes.len();
        self.bytes.extend_from_slice(name);
        self.bytes.extend_from_slice(value);
        self.entries.push(Entry {
            name: (at, name.len()),
            value: (at + name.len(), value.len()),
        });
    }

    /// A map in proxy-wasm's serialized form, taken as it is (no copy): a little-endian `u32`
    /// count, then a `u32` name length and value length per entry, then each name and each value
    /// followed by a NUL. `None` when the bytes are not in that form.
    pub fn from_serialized(bytes: Vec<u8>) -> Option<Headers> {
        if bytes.is_empty() {
            return Some(Headers::default());
        }
        let u32_at = |at: usize| -> Option<usize> {
            let b = bytes.get(at..at.checked_add(4)?)?;
            Some(u32::from_le_bytes(b.try_into().ok()?) as usize)
        };
        let count = u32_at(0)?;
        let mut data = count.checked_mul(8)?.checked_add(4)?;
        if data > bytes.len() {
            return None;
        }
        let mut entries = Vec::with_capacity(count);
        for i in 0..count {
            let name_len = u32_at(4 + i * 8)?;
            let value_len = u32_at(8 + i * 8)?;
            let name = (data, name_len);
            let value_at = data.checked_add(name_len)?.checked_add(1)?;
            let value = (value_at, value_len);
            data = value_at.checked_add(value_len)?.checked_add(1)?;
            if data > bytes.len() {
                return None;
            }
            entries.push(Entry { name, value });
        }
        Some(Headers { bytes, entries })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn slice(&self, (at, len): (usize, usize)) -> &[u8] {
        at.checked_add(len)
            .and_then(|end| self.bytes.get(at..end))
            .unwrap_or_default()
    }

    /// The name of entry `i` (empty past the end).
    pub fn name(&self, i: usize) -> &[u8] {
        self.entries.get(i).map_or(&[], |e| self.slice(e.name))
    }

    /// The value of entry `i` (empty past the end).
    pub fn value(&self, i: usize) -> &[u8] {
        self.entries.get(i).map_or(&[], |e| self.slice(e.value))
    }

    /// The value of entry `i`, to be changed in place (its length cannot change).
    pub fn value_mut(&mut self, i: usize) -> &mut [u8] {
        let Some(&Entry {
            value: (at, len), ..
        }) = self.entries.get(i)
        else {
            return &mut [];
        };
        match at.checked_add(len) {
            Some(end) => self.bytes.get_mut(at..end).unwrap_or_default(),
            None => &mut [],
        }
    }

    /// Every entry, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|e| (self.slice(e.name), self.slice(e.value)))
    }

    /// The first value of `name` (lowercase, as Envoy keeps names).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        let name = name.as_bytes();
        // Lengths first: most names are told apart without reading them.
        self.entries
            .iter()
            .find(|e| e.name.1 == name.len() && self.slice(e.name) == name)
            .map(|e| self.slice(e.value))
    }
}

impl<N: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> Headers {
        let mut h = Headers::default();
        for (n, v) in pairs {
            h.push(n.as_ref(), v.as_ref());
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn serialize(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (n, v) in pairs {
            out.extend((n.len() as u32).to_le_bytes());
            out.extend((v.len() as u32).to_le_bytes());
        }
        for (n, v) in pairs {
            out.extend(n);
            out.push(0);
            out.extend(v);
            out.push(0);
        }
        out
    }

    #[test]
    fn entries_keep_their_order_and_repeats() {
        let h: Headers = [(":path", "/a"), ("x", "1"), ("x", "2")]
            .into_iter()
            .collect();
        assert_eq!(h.len(), 3);
        assert_eq!(h.get("x"), Some(&b"1"[..]));
        assert_eq!(h.get("y"), None);
        assert_eq!(h.name(2), b"x");
        assert_eq!(h.value(2), b"2");
        assert_eq!(h.value(3), b"");
    }

    #[test]
    fn a_value_changes_in_place_and_its_neighbours_do_not() {
        let mut h: Headers = [("a", "1234"), ("b", "5678")].into_iter().collect();
        h.value_mut(0).copy_from_slice(b"****");
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            [(&b"a"[..], &b"****"[..]), (b"b", b"5678")]
        );
        assert!(h.value_mut(7).is_empty());
    }

    #[test]
    fn truncated_or_lying_serializations_are_refused() {
        let good = serialize(&[(b"a".to_vec(), b"bc".to_vec())]);
        assert!(Headers::from_serialized(good.clone()).is_some());
        for cut in 1..good.len() {
            assert_eq!(
                Headers::from_serialized(good[..cut].to_vec()),
                None,
                "cut at {cut}"
            );
        }
        let mut huge = good.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Headers::from_serialized(huge), None);
        let mut long_value = good;
        long_value[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Headers::from_serialized(long_value), None);
        assert_eq!(
            Headers::from_serialized(Vec::new()),
            Some(Headers::default())
        );
    }
}

// Property tests need proptest, a native-only dev-dependency.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties {
    use super::tests::serialize;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_serialized_map_reads_as_the_pairs_it_was_made_of(
            pairs in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..12),
                 proptest::collection::vec(any::<u8>(), 0..40)), 0..10),
        ) {
            let h = Headers::from_serialized(serialize(&pairs)).unwrap();
            let read: Vec<(Vec<u8>, Vec<u8>)> =
                h.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
            prop_assert_eq!(&read, &pairs);
            let pushed: Headers = pairs.iter().map(|(n, v)| (n, v)).collect();
            prop_assert_eq!(pushed.iter().collect::<Vec<_>>(), h.iter().collect::<Vec<_>>());
        }

        #[test]
        fn any_bytes_parse_or_are_refused_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Some(h) = Headers::from_serialized(bytes) {
                for i in 0..h.len() {
                    let _ = (h.name(i), h.value(i));
                }
            }
        }
    }
}
