//! Tamper evidence (PCI DSS 10.3): every event carries `seq` (1, 2, ... per chain), `chain` (an id
//! drawn when the VM starts) and `mac`: HMAC-SHA256, keyed by a secret from the VM's environment,
//! over the previous event's `mac` and this event's canonical bytes. Without a key the chain is a
//! plain SHA-256 chain (`alg: "sha256"`): it shows edits, but anyone can recompute it.
//!
//! A keyed chain also names its key: `kid`, from `PCI_MESH_GUARD_AUDIT_KEY_ID`, or when that is
//! unset the first 16 hex digits of the key's SHA-256 (which tells nothing of a key of 16 bytes or
//! more). After a rotation the logs of a period are sealed under several keys, and a verifier
//! holding a keyring picks each chain's key by its `kid`.
//!
//! The canonical bytes are the event exactly as written, without its trailing `,"mac":"..."`:
//! verification works on the text, never on a re-serialization.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The VM environment variable holding the chain's HMAC key (Envoy
/// `vm_config.environment_variables`, Istio `vmConfig.env`).
pub const KEY_ENV: &str = "PCI_MESH_GUARD_AUDIT_KEY";
/// The VM environment variable naming the key (`kid` in each event); optional.
pub const KEY_ID_ENV: &str = "PCI_MESH_GUARD_AUDIT_KEY_ID";
/// Shortest key accepted, in bytes: a shorter one would make the MAC guessable.
pub const MIN_KEY_LEN: usize = 16;
/// Longest key id accepted.
pub const MAX_KID_LEN: usize = 64;

/// The id of `key` when none is given: the first 8 bytes of its SHA-256, in hex.
pub fn derived_kid(key: &[u8]) -> String {
    let digest = Sha256::digest(key);
    hex(digest.get(..8).unwrap_or_default())
}

/// Why `kid` cannot name a key: it must be 1 to 64 of `A-Z a-z 0-9 . _ -` (it is written into
/// every event as it is, and read back from keyring files).
pub fn kid_problem(kid: &str) -> Option<String> {
    if kid.is_empty() || kid.len() > MAX_KID_LEN {
        return Some(format!("must be 1 to {MAX_KID_LEN} characters"));
    }
    (!kid
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
    .then(|| "may hold only letters, digits, '.', '_' and '-'".to_owned())
}

const MAC_SUFFIX_LEN: usize = r#","mac":""#.len() + 64 + r#""}"#.len();

/// The algorithm a chain uses, as written in each event's `alg`.
pub fn alg(keyed: bool) -> &'static str {
    if keyed {
        "hmac-sha256"
    } else {
        "sha256"
    }
}

/// `mac` over `prev` and `canonical`.
pub fn mac(key: Option<&[u8]>, prev: &[u8; 32], canonical: &[u8]) -> [u8; 32] {
    match key.and_then(|k| Hmac::<Sha256>::new_from_slice(k).ok()) {
        Some(mut m) => {
            m.update(prev);
            m.update(canonical);
            m.finalize().into_bytes().into()
        }
        None => {
            let mut h = Sha256::new();
            h.update(prev);
            h.update(canonical);
            h.finalize().into()
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

/// Appends `bytes` in lower-case hex.
fn push_hex(s: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
}

pub fn unhex(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    // Lower case only, as written: another spelling of the same mac is an edit too.
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = nibble(*b.get(2 * i)?)? << 4 | nibble(*b.get(2 * i + 1)?)?;
    }
    Some(out)
}

/// A chain id: 128 bits from the process's random source, mixed with `seed` (the host clock).
pub fn new_chain_id(seed: u64) -> String {
    let mut bytes = [0u8; 16];
    for (i, half) in bytes.chunks_mut(8).enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(seed);
        h.write_usize(i);
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    hex(&bytes)
}

/// One VM's chain of events.
pub struct Chain {
    id: String,
    /// The HMAC keyed once (its inner and outer pads already hashed); each event clones it.
    keyed: Option<Hmac<Sha256>>,
    /// The key's id, written into each event of a keyed chain.
    kid: String,
    seq: u64,
    prev: [u8; 32],
}

impl Chain {
    /// A chain keyed by `key` (if any), whose id is the key's derived id.
    pub fn new(id: String, key: Option<Vec<u8>>) -> Chain {
        let kid = key.as_deref().map(derived_kid).unwrap_or_default();
        Chain::with_kid(id, key, kid)
    }

    /// A chain keyed by `key` (if any) under the id `kid`.
    pub fn with_kid(id: String, key: Option<Vec<u8>>, kid: String) -> Chain {
        Chain {
            id,
            keyed: key.and_then(|k| Hmac::<Sha256>::new_from_slice(&k).ok()),
            kid,
            seq: 0,
            prev: [0; 32],
        }
    }

    /// The key's id (empty for an unkeyed chain).
    pub fn kid(&self) -> &str {
        if self.keyed() {
            &self.kid
        } else {
            ""
        }
    }

    pub fn keyed(&self) -> bool {
        self.keyed.is_some()
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The seq of the chain's last event (0 before the first).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The mac of the chain's last event (zeros before the first).
    pub fn last_mac(&self) -> &[u8; 32] {
        &self.prev
    }

    /// Seals an event given as its JSON object text: appends `seq`, `chain`, `alg`, `kid` (keyed
    /// chains), then `mac`, in the event's own buffer.
    pub fn seal(&mut self, event: impl Into<String>) -> String {
        self.seq += 1;
        let mut line = event.into();
        if line.pop() != Some('}') {
            line = String::from("{");
        }
        if !line.ends_with('{') {
            line.push(',');
        }
        line.push_str(r#""seq":"#);
        super::access_json::push_decimal(&mut line, self.seq);
        line.push_str(r#","chain":""#);
        line.push_str(&self.id);
        line.push_str(r#"","alg":""#);
        line.push_str(alg(self.keyed()));
        if self.keyed() {
            line.push_str(r#"","kid":""#);
            line.push_str(&self.kid);
        }
        line.push_str(r#""}"#);
        let mac: [u8; 32] = match &self.keyed {
            Some(keyed) => {
                let mut m = keyed.clone();
                m.update(&self.prev);
                m.update(line.as_bytes());
                m.finalize().into_bytes().into()
            }
            None => mac(None, &self.prev, line.as_bytes()),
        };
        self.prev = mac;
        line.pop();
        line.push_str(r#","mac":""#);
        push_hex(&mut line, &mac);
        line.push_str(r#""}"#);
        line
    }
}

/// Splits a sealed event into its canonical bytes and its stated mac.
pub fn split_sealed(line: &str) -> Option<(String, [u8; 32])> {
    sealed_parts(line).map(|(body, mac)| (format!("{body}}}"), mac))
}

/// As `split_sealed`, without a copy: the canonical bytes are the returned body followed by `}`.
pub fn sealed_parts(line: &str) -> Option<(&str, [u8; 32])> {
    let cut = line.len().checked_sub(MAC_SUFFIX_LEN)?;
    let (body, suffix) = (line.get(..cut)?, line.get(cut..)?);
    let mac = suffix.strip_prefix(r#","mac":""#)?.strip_suffix(r#""}"#)?;
    Some((body, unhex(mac)?))
}

/// `mac` over `prev` and the canonical bytes `body` followed by `}` (see `sealed_parts`), with a
/// key already set up (`keyed_hmac`), or plain SHA-256 without one.
pub fn mac_of_parts(keyed: Option<&Hmac<Sha256>>, prev: &[u8; 32], body: &str) -> [u8; 32] {
    match keyed {
        Some(k) => {
            let mut m = k.clone();
            m.update(prev);
            m.update(body.as_bytes());
            m.update(b"}");
            m.finalize().into_bytes().into()
        }
        None => {
            let mut h = Sha256::new();
            h.update(prev);
            h.update(body.as_bytes());
            h.update(b"}");
            h.finalize().into()
        }
    }
}

/// The HMAC of `key`, its pads hashed once, to clone for each event.
pub fn keyed_hmac(key: &[u8]) -> Option<Hmac<Sha256>> {
    Hmac::<Sha256>::new_from_slice(key).ok()
}

/// An HMAC-SHA256 with its key set up.
pub type KeyedHmac = Hmac<Sha256>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_with_seq_chain_alg_and_a_mac_over_the_previous_one() {
        let mut c = Chain::new("c1".into(), Some(b"0123456789abcdef".to_vec()));
        let first = c.seal(r#"{"event":"config"}"#);
        let second = c.seal(r#"{"event":"access"}"#);
        let kid = derived_kid(b"0123456789abcdef");
        assert_eq!(kid.len(), 16);
        assert!(first.starts_with(&format!(
            r#"{{"event":"config","seq":1,"chain":"c1","alg":"hmac-sha256","kid":"{kid}","mac":""#
        )));
        let (canon1, mac1) = split_sealed(&first).unwrap();
        assert_eq!(
            canon1,
            format!(
                r#"{{"event":"config","seq":1,"chain":"c1","alg":"hmac-sha256","kid":"{kid}"}}"#
            )
        );
        assert_eq!(
            mac(Some(b"0123456789abcdef"), &[0; 32], canon1.as_bytes()),
            mac1
        );
        let (canon2, mac2) = split_sealed(&second).unwrap();
        assert_eq!(
            mac(Some(b"0123456789abcdef"), &mac1, canon2.as_bytes()),
            mac2
        );
        assert_ne!(
            mac(Some(b"another key 1234"), &mac1, canon2.as_bytes()),
            mac2
        );
        let v: serde_json::Value = serde_json::from_str(&second).unwrap();
        assert_eq!(v["seq"], 2);
    }

    #[test]
    fn a_chain_names_the_key_id_it_is_given() {
        let mut c = Chain::with_kid(
            "c3".into(),
            Some(b"0123456789abcdef".to_vec()),
            "2026-q4".into(),
        );
        assert!(c
            .seal("{}")
            .contains(r#""alg":"hmac-sha256","kid":"2026-q4","mac":""#));
        assert_eq!(kid_problem("2026-q4"), None);
        for bad in ["", "a b", "k\"", &"k".repeat(65)] {
            assert!(kid_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn without_a_key_the_chain_is_plain_sha256() {
        let mut c = Chain::new("c2".into(), None);
        let line = c.seal(r#"{"a":1}"#);
        let (canon, m) = split_sealed(&line).unwrap();
        assert!(canon.contains(r#""alg":"sha256""#));
        assert!(!canon.contains("kid"));
        assert_eq!(mac(None, &[0; 32], canon.as_bytes()), m);
    }

    #[test]
    fn chain_ids_differ_between_starts() {
        assert_ne!(new_chain_id(1), new_chain_id(1));
        assert_eq!(new_chain_id(7).len(), 32);
    }

    #[test]
    fn hex_round_trips() {
        let b: [u8; 32] = core::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(unhex(&hex(&b)), Some(b));
        assert_eq!(unhex("zz"), None);
    }
}
