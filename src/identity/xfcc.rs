//! The `x-forwarded-client-cert` header (Envoy's XFCC): a comma-separated list of elements, one
//! per proxy hop, each a semicolon-separated list of `key=value` pairs. Values may be quoted, and
//! inside quotes `,` `;` `=` are plain characters and `\"` is a quote. Keys may repeat (`URI`,
//! `DNS`). Only used when `identity.trust_xfcc` is on and the connection has no peer URI SAN.

/// Most elements (hops) accepted in one header.
pub const MAX_ELEMENTS: usize = 32;
/// Longest header accepted, in bytes.
pub const MAX_LEN: usize = 16 * 1024;

/// One element: its pairs in order, keys as written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub pairs: Vec<(String, String)>,
}

impl Element {
    /// The first value of `key` (compared without regard to case).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a header was not understood. Any error means: no identity from this header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XfccError {
    TooLong,
    TooManyElements,
    UnterminatedQuote,
    MissingEquals,
    EmptyKey,
    TextAfterQuote,
}

/// Parses a whole header value.
pub fn parse(header: &str) -> Result<Vec<Element>, XfccError> {
    if header.len() > MAX_LEN {
        return Err(XfccError::TooLong);
    }
    let mut elements = vec![Element::default()];
    let mut chars = header.chars().peekable();
    loop {
        // key
        let mut key = String::new();
        loop {
            match chars.peek() {
                Some('=') => break,
                Some(',') | Some(';') | None => {
                    if key.trim().is_empty() && elements.last().is_some_and(|e| e.pairs.is_empty())
                    {
                        // Tolerate empty elements and trailing separators ("a=b;" or ",").
                        break;
                    }
                    return Err(XfccError::MissingEquals);
                }
                Some(&c) => {
                    key.push(c);
                    chars.next();
                }
            }
        }
        let key = key.trim().to_string();
        if chars.peek() == Some(&'=') {
            chars.next();
            if key.is_empty() {
                return Err(XfccError::EmptyKey);
            }
            let value = value(&mut chars)?;
            if let Some(e) = elements.last_mut() {
                e.pairs.push((key, value));
            }
        }
        match chars.next() {
            None => break,
            Some(';') => {}
            Some(',') => {
                if elements.len() >= MAX_ELEMENTS {
                    return Err(XfccError::TooManyElements);
                }
                elements.push(Element::default());
            }
            Some(_) => return Err(XfccError::TextAfterQuote),
        }
    }
    elements.retain(|e| !e.pairs.is_empty());
    Ok(elements)
}

/// A value up to the next unquoted `;` or `,`.
fn value(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<String, XfccError> {
    let mut out = String::new();
    if chars.peek() == Some(&'"') {
        chars.next();
        loop {
            match chars.next() {
                None => return Err(XfccError::UnterminatedQuote),
                Some('\\') => match chars.next() {
                    Some(c) => out.push(c),
                    None => return Err(XfccError::UnterminatedQuote),
                },
                Some('"') => break,
                Some(c) => out.push(c),
            }
        }
        // Only a separator may follow a closing quote.
        match chars.peek() {
            None | Some(';') | Some(',') => Ok(out),
            Some(_) => Err(XfccError::TextAfterQuote),
        }
    } else {
        while let Some(&c) = chars.peek() {
            if c == ';' || c == ',' {
                break;
            }
            out.push(c);
            chars.next();
        }
        Ok(out)
    }
}

/// The first `URI` of the last element: the identity the nearest proxy hop vouched for.
pub fn last_uri(header: &str) -> Option<String> {
    parse(header).ok()?.last()?.get("URI").map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_first_uri_of_the_last_element() {
        let h = r#"By=spiffe://cluster.local/ns/gw/sa/gw;Hash=abc;URI=spiffe://cluster.local/ns/shop/sa/one,By=spiffe://cluster.local/ns/payments/sa/api;Hash=def;URI=spiffe://cluster.local/ns/shop/sa/two;URI=spiffe://cluster.local/ns/shop/sa/three;DNS=a.local;DNS=b.local"#;
        assert_eq!(
            last_uri(h).as_deref(),
            Some("spiffe://cluster.local/ns/shop/sa/two")
        );
        let els = parse(h).unwrap();
        assert_eq!(els.len(), 2);
        assert_eq!(els[1].pairs.iter().filter(|(k, _)| k == "DNS").count(), 2);
    }

    #[test]
    fn quoted_values_hold_separators_and_escaped_quotes() {
        let h = r#"Subject="CN=checkout,O=Shop; Inc.";URI=spiffe://cluster.local/ns/shop/sa/checkout;Cert="a\"b""#;
        let els = parse(h).unwrap();
        assert_eq!(els.len(), 1);
        assert_eq!(els[0].get("subject"), Some("CN=checkout,O=Shop; Inc."));
        assert_eq!(els[0].get("Cert"), Some("a\"b"));
        assert_eq!(
            last_uri(h).as_deref(),
            Some("spiffe://cluster.local/ns/shop/sa/checkout")
        );
    }

    #[test]
    fn malformed_headers_give_no_identity() {
        for h in [
            r#"URI="spiffe://x"#,
            r#"URI="spiffe://x"junk"#,
            "URI",
            "=spiffe://x",
            &"By=a,".repeat(40),
            &format!("URI={}", "a".repeat(MAX_LEN)),
        ] {
            assert_eq!(last_uri(h), None, "{h}");
        }
        assert_eq!(last_uri("By=x;Hash=y"), None, "no URI at all");
        assert_eq!(last_uri(""), None);
    }
}
