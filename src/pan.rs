//! Primary account numbers: the brand table, the Luhn check, masking settings and custom patterns.
//! `scan` finds and masks PANs in a buffer; `redact` streams bodies through it.

use std::fmt;

mod prefilter;
pub mod redact;
pub mod scan;

pub use redact::{redact_all, redact_all_with, Counts, Redactor, MAX_PATTERN_MATCH};
pub use scan::Options;

/// Upper bound on the compiled size of one custom pattern, so a configuration cannot make the VM
/// spend unbounded memory on a regex.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// How a detected PAN is masked: length-preserving, with some leading and trailing digits visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Masking {
    /// Leading digits left visible (at most 8).
    pub keep_first: u8,
    /// Trailing digits left visible (at most 4).
    pub keep_last: u8,
    /// The ASCII byte that replaces each hidden digit.
    pub mask_char: u8,
}

impl Default for Masking {
    fn default() -> Self {
        Masking {
            keep_first: 0,
            keep_last: 4,
            mask_char: b'*',
        }
    }
}

/// A custom named pattern, compiled once; every match is masked over its whole length.
#[derive(Clone)]
pub struct Pattern {
    pub name: String,
    pub regex: regex::bytes::Regex,
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pattern")
            .field("name", &self.name)
            .field("regex", &self.regex.as_str())
            .finish()
    }
}

impl Pattern {
    /// Compiles a custom pattern. It must not match the empty string, and its longest possible
    /// match must be known and at most `MAX_PATTERN_MATCH` bytes: that bound is what lets the
    /// streaming redactor find every match whatever the chunking.
    pub fn compile(name: &str, regex: &str) -> Result<Pattern, String> {
        let hir = regex_syntax::ParserBuilder::new()
            .build()
            .parse(regex)
            .map_err(|e| format!("invalid regex: {}", one_line(&e.to_string())))?;
        let props = hir.properties();
        if props.minimum_len() == Some(0) {
            return Err("the regex can match the empty string".into());
        }
        match props.maximum_len() {
            Some(n) if n <= MAX_PATTERN_MATCH => {}
            Some(n) => {
                return Err(format!(
                    "the regex can match {n} bytes; at most {MAX_PATTERN_MATCH} are allowed"
                ))
            }
            None => {
                return Err(format!(
                    "the regex can match without bound (use bounded repetition such as \\d{{1,19}}); at most {MAX_PATTERN_MATCH} bytes are allowed"
                ))
            }
        }
        let compiled = regex::bytes::RegexBuilder::new(regex)
            .size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map_err(|e| format!("invalid regex: {}", one_line(&e.to_string())))?;
        Ok(Pattern {
            name: name.to_owned(),
            regex: compiled,
        })
    }
}

/// Regex errors span several lines with a caret diagram; a log line wants one.
fn one_line(s: &str) -> String {
    s.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '^' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Most tokens recorded for one request.
pub const MAX_TOKENS: usize = 32;

/// Keyed PAN tokens (PCI DSS 3.5.1.1): the first 64 bits of HMAC-SHA256(key, digits), in hex. The
/// same card gives the same token under the same key, so analysts can correlate events without
/// ever seeing the number; without the key a token cannot be turned back into a PAN.
pub fn token(key: &[u8], digits: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(digits);
    mac.finalize()
        .into_bytes()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The tokens of the PANs one request carried, in order of appearance, without repeats.
#[derive(Debug, Clone)]
pub struct Tokens {
    key: std::rc::Rc<[u8]>,
    list: Vec<String>,
}

impl Tokens {
    pub fn new(key: std::rc::Rc<[u8]>) -> Tokens {
        Tokens {
            key,
            list: Vec::new(),
        }
    }

    pub fn add(&mut self, digits: &[u8]) {
        if self.list.len() < MAX_TOKENS {
            let t = token(&self.key, digits);
            if !self.list.contains(&t) {
                self.list.push(t);
            }
        }
    }

    pub fn extend(&mut self, other: &Tokens) {
        for t in &other.list {
            if self.list.len() < MAX_TOKENS && !self.list.contains(t) {
                self.list.push(t.clone());
            }
        }
    }

    pub fn list(&self) -> &[String] {
        &self.list
    }
}

/// Card brands of SPEC section 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Brand {
    Visa = 0,
    Mastercard = 1,
    Amex = 2,
    Discover = 3,
    Jcb = 4,
    Diners = 5,
    UnionPay = 6,
    Maestro = 7,
}

/// Every brand, in the order of their discriminants.
pub const ALL_BRANDS: [Brand; 8] = [
    Brand::Visa,
    Brand::Mastercard,
    Brand::Amex,
    Brand::Discover,
    Brand::Jcb,
    Brand::Diners,
    Brand::UnionPay,
    Brand::Maestro,
];

impl Brand {
    pub fn as_str(self) -> &'static str {
        match self {
            Brand::Visa => "visa",
            Brand::Mastercard => "mastercard",
            Brand::Amex => "amex",
            Brand::Discover => "discover",
            Brand::Jcb => "jcb",
            Brand::Diners => "diners",
            Brand::UnionPay => "unionpay",
            Brand::Maestro => "maestro",
        }
    }
}

/// The number formed by the first `n` digits (ASCII), or `None` when there are fewer.
fn prefix(digits: &[u8], n: usize) -> Option<u32> {
    let head = digits.get(..n)?;
    Some(
        head.iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d.wrapping_sub(b'0'))),
    )
}

/// The brand whose IIN range and length fit `digits` (ASCII digits only), if any. More specific
/// ranges are tried first, so 6011... is Discover rather than Maestro.
pub fn brand_of(digits: &[u8]) -> Option<Brand> {
    let len = digits.len();
    let p = |n| prefix(digits, n).unwrap_or(0);
    let (p1, p2, p3, p4, p6) = (p(1), p(2), p(3), p(4), p(6));
    if p1 == 4 && matches!(len, 13 | 16 | 19) {
        return Some(Brand::Visa);
    }
    if len == 16 && ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) {
        return Some(Brand::Mastercard);
    }
    if len == 15 && (p2 == 34 || p2 == 37) {
        return Some(Brand::Amex);
    }
    if (16..=19).contains(&len)
        && (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || (622126..=622925).contains(&p6))
    {
        return Some(Brand::Discover);
    }
    if (16..=19).contains(&len) && (3528..=3589).contains(&p4) {
        return Some(Brand::Jcb);
    }
    if (14..=19).contains(&len)
        && ((300..=305).contains(&p3) || p2 == 36 || (38..=39).contains(&p2))
    {
        return Some(Brand::Diners);
    }
    if (14..=19).contains(&len) && p2 == 62 {
        return Some(Brand::UnionPay);
    }
    if (12..=19).contains(&len) && (p2 == 50 || (56..=69).contains(&p2)) {
        return Some(Brand::Maestro);
    }
    None
}

/// The Luhn (mod 10) check over ASCII digits.
pub fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d.wrapping_sub(b'0'));
        if v > 9 {
            return false;
        }
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum % 10 == 0
}

/// A PAN by SPEC section 4, for contiguous digits: 12 to 19 digits, Luhn-valid, with a brand.
pub fn classify(digits: &[u8]) -> Option<Brand> {
    if !(12..=19).contains(&digits.len()) {
        return None;
    }
    // The brand table rejects most numbers (timestamps start with 1) more cheaply than Luhn.
    brand_of(digits).filter(|_| luhn_valid(digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_brand_by_iin_and_length() {
        let cases: &[(&str, Brand)] = &[
            ("4111111111111111", Brand::Visa),
            ("4222222222222", Brand::Visa),
            ("5555555555554444", Brand::Mastercard),
            ("2223003122003222", Brand::Mastercard),
            ("378282246310005", Brand::Amex),
            ("6011111111111117", Brand::Discover),
            ("6445644564456445", Brand::Discover),
            ("3530111333300000", Brand::Jcb),
            ("36227206271667", Brand::Diners),
            ("30569309025904", Brand::Diners),
            ("6200000000000005", Brand::UnionPay),
            ("6759649826438453", Brand::Maestro),
            ("501800000009", Brand::Maestro),
        ];
        for (pan, brand) in cases {
            assert_eq!(classify(pan.as_bytes()), Some(*brand), "{pan}");
        }
    }

    #[test]
    fn refuses_luhn_failures_and_brandless_numbers() {
        assert_eq!(classify(b"4111111111111112"), None, "Luhn fails");
        assert_eq!(
            classify(b"1234567812345670"),
            None,
            "no brand starts with 1"
        );
        assert_eq!(
            classify(b"41111111111111"),
            None,
            "Visa has no 14-digit numbers"
        );
        assert_eq!(classify(b"5105105105105100".get(..15).unwrap()), None);
        assert_eq!(classify(b"41111111111"), None, "too short");
        assert_eq!(classify(b"41111111111111111111"), None, "too long");
    }

    #[test]
    fn tokens_are_keyed_stable_and_short() {
        let a = token(b"0123456789abcdef", b"4111111111111111");
        assert_eq!(a.len(), 16);
        assert_eq!(a, token(b"0123456789abcdef", b"4111111111111111"));
        assert_ne!(a, token(b"another-key-0123", b"4111111111111111"));
        assert_ne!(a, token(b"0123456789abcdef", b"5555555555554444"));
        let mut t = Tokens::new(b"0123456789abcdef".to_vec().into());
        t.add(b"4111111111111111");
        t.add(b"4111111111111111");
        assert_eq!(t.list(), [a]);
    }

    #[test]
    fn invalid_pattern_names_the_cause_on_one_line() {
        let e = Pattern::compile("x", "(unclosed").unwrap_err();
        assert!(e.starts_with("invalid regex:"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        assert!(Pattern::compile("x", "a*")
            .unwrap_err()
            .contains("empty string"));
        assert!(Pattern::compile("x", r"\b")
            .unwrap_err()
            .contains("empty string"));
        assert!(Pattern::compile("x", r"\d+")
            .unwrap_err()
            .contains("without bound"));
        assert!(Pattern::compile("x", r"a{300}")
            .unwrap_err()
            .contains("300 bytes"));
        assert!(Pattern::compile("ssn", r"\b\d{3}-\d{2}-\d{4}\b").is_ok());
    }
}
