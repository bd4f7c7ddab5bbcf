//! The reference PAN detector and redaction, plain and slow, written from SPEC section 4 without
//! the scanner's machinery. Shared by the property tests (`tests/pan_properties.rs`) and the
//! redactor's fuzz target (`fuzz/fuzz_targets/redactor.rs`).
#![allow(dead_code)]

use pci_mesh_guard::pan::Options;

fn luhn(d: &[u8]) -> bool {
    let mut sum = 0;
    for (i, c) in d.iter().rev().enumerate() {
        let mut v = (c - b'0') as u32;
        if i % 2 == 1 {
            v = if v * 2 > 9 { v * 2 - 9 } else { v * 2 };
        }
        sum += v;
    }
    sum % 10 == 0
}

fn has_brand(d: &[u8]) -> bool {
    let s = std::str::from_utf8(d).unwrap();
    let n = s.len();
    let p = |k: usize| s[..k.min(n)].parse::<u32>().unwrap_or(0);
    let table: [(&dyn Fn() -> bool, &[usize]); 8] = [
        (&|| s.starts_with('4'), &[13, 16, 19]),
        (
            &|| (51..=55).contains(&p(2)) || (2221..=2720).contains(&p(4)),
            &[16],
        ),
        (&|| p(2) == 34 || p(2) == 37, &[15]),
        (
            &|| {
                p(4) == 6011
                    || (644..=649).contains(&p(3))
                    || p(2) == 65
                    || (622126..=622925).contains(&p(6))
            },
            &[16, 17, 18, 19],
        ),
        (&|| (3528..=3589).contains(&p(4)), &[16, 17, 18, 19]),
        (
            &|| (300..=305).contains(&p(3)) || p(2) == 36 || p(2) == 38 || p(2) == 39,
            &[14, 15, 16, 17, 18, 19],
        ),
        (&|| p(2) == 62, &[14, 15, 16, 17, 18, 19]),
        (
            &|| p(2) == 50 || (56..=69).contains(&p(2)),
            &[12, 13, 14, 15, 16, 17, 18, 19],
        ),
    ];
    table.iter().any(|(iin, lens)| lens.contains(&n) && iin())
}

/// Digit groups of `t` as byte ranges; URL-encoded separators are escapes, whatever digits they spell.
fn groups_of(t: &[u8]) -> Vec<(usize, usize)> {
    let mut groups = vec![];
    let mut i = 0;
    while i < t.len() {
        if t[i..].starts_with(b"%20") || t[i..].starts_with(b"%2D") || t[i..].starts_with(b"%2d") {
            i += 3;
        } else if t[i].is_ascii_digit() {
            let s = i;
            while i < t.len() && t[i].is_ascii_digit() {
                i += 1;
            }
            groups.push((s, i));
        } else {
            i += 1;
        }
    }
    groups
}

fn is_separator(between: &[u8]) -> bool {
    matches!(between, b" " | b"-" | b"+" | b"%20" | b"%2D" | b"%2d")
}

fn in_uuid(t: &[u8], s: usize, e: usize) -> bool {
    let token = regex::bytes::Regex::new(r"[0-9a-fA-F-]+").unwrap();
    let inside = token.find_iter(t).any(|m| {
        let tok = m.as_bytes();
        m.start() <= s
            && e <= m.end()
            && tok.len() == 36
            && tok.iter().enumerate().all(|(k, c)| {
                if [8, 13, 18, 23].contains(&k) {
                    *c == b'-'
                } else {
                    c.is_ascii_hexdigit()
                }
            })
    });
    inside
}

/// The digits `t[s..e]` sit in a run of 32 or more hex characters that has a letter in it.
fn in_hex_blob(t: &[u8], s: usize, e: usize) -> bool {
    let mut a = s;
    while a > 0 && t[a - 1].is_ascii_hexdigit() {
        a -= 1;
    }
    let mut b = e;
    while b < t.len() && t[b].is_ascii_hexdigit() {
        b += 1;
    }
    b - a >= 32 && t[a..b].iter().any(|c| c.is_ascii_alphabetic())
}

/// The first PAN window whose first group starts at or after `from`: earliest start, then the
/// longest window of whole groups (first group of 4 or more digits, later ones of 3 or more, one
/// separator between groups, 12 to 19 digits, Luhn, a brand), not an E.164 number, not in a UUID.
pub fn first_window(t: &[u8], from: usize) -> Option<Vec<(usize, usize)>> {
    let groups = groups_of(t);
    for g in 0..groups.len() {
        if groups[g].0 < from {
            continue;
        }
        let mut best = None;
        let mut digits = vec![];
        for j in g..groups.len() {
            let (s, e) = groups[j];
            if j > g && !is_separator(&t[groups[j - 1].1..s]) {
                break;
            }
            let len = e - s;
            if (j == g && len < 4) || (j > g && len < 3) || digits.len() + len > 19 {
                break;
            }
            digits.extend_from_slice(&t[s..e]);
            if digits.len() >= 12 && luhn(&digits) && has_brand(&digits) {
                let start = groups[g].0;
                let phone = j == g
                    && digits.len() <= 15
                    && start >= 1
                    && t[start - 1] == b'+'
                    && !(start >= 2 && t[start - 2].is_ascii_digit());
                let in_blob = groups[g..=j].iter().any(|&(gs, ge)| in_hex_blob(t, gs, ge));
                if !phone && !in_uuid(t, start, e) && !in_blob {
                    best = Some(groups[g..=j].to_vec());
                }
            }
        }
        if best.is_some() {
            return best;
        }
    }
    None
}

/// The expected redaction of `t`, window after window, and how many PANs it masked. After a
/// window, the search goes on from its kept trailing digits: with the masked digits gone they start
/// a new group, and a PAN they form with what follows must go too.
pub fn reference(t: &[u8], o: &Options) -> (Vec<u8>, usize) {
    let mut out = t.to_vec();
    let mut from = 0;
    let mut found = 0;
    while let Some(w) = first_window(&out, from) {
        found += 1;
        let total: usize = w.iter().map(|(s, e)| e - s).sum();
        let start = w[0].0;
        let after_group = {
            let before = &out[..start];
            let ends_with_digit_then = |sep: &[u8]| {
                before.ends_with(sep)
                    && before.len() > sep.len()
                    && before[before.len() - sep.len() - 1].is_ascii_digit()
                    && !before[..before.len() - sep.len()].ends_with(b"%20")
            };
            [&b" "[..], b"-", b"+", b"%20", b"%2D", b"%2d"]
                .iter()
                .any(|s| ends_with_digit_then(s))
        };
        let cap = if total >= 16 { 8 } else { 6 };
        let keep_first = if after_group {
            0
        } else {
            (o.masking.keep_first as usize).min(cap)
        };
        let keep_last = o.masking.keep_last as usize;
        let bare = o.json && w.len() == 1 && {
            let lo = start.saturating_sub(37);
            match out[lo..start]
                .iter()
                .rev()
                .find(|c| !b" \t\r\n".contains(c))
            {
                Some(c) => b":[,".contains(c),
                None => true,
            }
        };
        let fill = if bare { b'9' } else { o.masking.mask_char };
        let positions: Vec<usize> = w.iter().flat_map(|&(s, e)| s..e).collect();
        let hidden: Vec<usize> = positions
            .iter()
            .enumerate()
            .filter(|(k, _)| *k >= keep_first && k + keep_last < total)
            .map(|(_, &i)| i)
            .collect();
        for &i in &hidden {
            out[i] = fill;
        }
        if bare {
            // The last hidden digit is the first of 9, 8, ... 0 with which no window that starts
            // with this number (alone, or joined with the groups after it) is a card number.
            let last = *hidden.last().unwrap();
            let groups = groups_of(&out);
            let k = groups.iter().position(|&g| g == w[0]).unwrap();
            for d in b"9876543210" {
                out[last] = *d;
                let mut digits = vec![];
                let mut pan = false;
                for j in k..groups.len() {
                    let (s, e) = groups[j];
                    if j > k && (!is_separator(&out[groups[j - 1].1..s]) || e - s < 3) {
                        break;
                    }
                    if digits.len() + (e - s) > 19 {
                        break;
                    }
                    digits.extend_from_slice(&out[s..e]);
                    pan |= digits.len() >= 12 && luhn(&digits) && has_brand(&digits);
                }
                if !pan {
                    break;
                }
            }
            from = w.last().unwrap().1;
        } else {
            let tail = positions[total - keep_last.min(total)..].first().copied();
            from = match tail {
                Some(i)
                    if keep_last > 0
                        && i > start
                        && (!out[i - 1].is_ascii_digit() || out[..i].ends_with(b"%20")) =>
                {
                    i
                }
                _ => w.last().unwrap().1,
            };
        }
    }
    (out, found)
}
