//! The PAN scanner: finds and masks card numbers in a buffer whose data may continue past its end.
//!
//! A PAN (SPEC section 4) is 12 to 19 digits, contiguous or printed in groups: the first group has at
//! least 4 digits, every later one at least 3, and groups are joined by one separator (space, `-`,
//! `+`, `%20`, `%2D`). Groups are maximal digit runs, so a PAN is never part of a longer run.
//!
//! The scanner walks from one group start to the next. At each it tries the windows of consecutive
//! groups that start there (at most 19 digits, so at most 6 groups) and masks the longest one that
//! passes the Luhn check and a brand's IIN range. A window it cannot decide yet, because the buffer
//! ends before the window could, stops the scan: everything before that group is settled, the rest
//! must be scanned again with more data. Decisions read at most `LOOKBEHIND` bytes before a group
//! and `LOOKAHEAD` bytes past it, so a caller that keeps that much context decides exactly as a
//! scan of the whole stream at once would.
//!
//! Before any of that, a buffer's last bytes (a header value, a body's tail) with fewer digits than
//! the shortest PAN are passed over whole, the prefilter passes over 64-byte blocks in which no PAN can start, non-digit
//! bytes are skipped eight at a time, and a digit run too short to start a PAN that no separator
//! follows is passed over by its length alone.

use super::{classify, prefilter, Brand, Masking};

/// Most digits in a PAN.
pub const MAX_DIGITS: usize = 19;
/// Digits the shortest PAN has.
pub const MIN_DIGITS: usize = 12;
/// Most bytes a printed PAN spans: 19 digits in 6 groups (4+3+3+3+3+3) with 3-byte separators.
pub const MAX_PAN_BYTES: usize = MAX_DIGITS + 5 * 3;
/// Bytes the scanner reads before a group start: a UUID (36 bytes) and the byte before it.
pub const LOOKBEHIND: usize = 37;
/// Bytes the scanner may need past a window's start to decide it (a UUID around it, plus one).
pub const LOOKAHEAD: usize = MAX_PAN_BYTES + 37;

/// How found PANs are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub masking: Masking,
    /// Rewrite found PANs; when false they are only reported (granted callers, `dry_run`).
    pub mask: bool,
    /// The data is JSON: a PAN written as a bare number is masked with `9`s to stay a valid number.
    pub json: bool,
}

/// A PAN the scanner found: its byte range in the buffer and its brand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub start: usize,
    pub end: usize,
    pub brand: Brand,
    /// The PAN's digits (`digits[..len]`), read before masking: for keyed tokens, never logged.
    pub digits: [u8; MAX_DIGITS],
    pub len: usize,
}

/// Scans `buf[from..]` for PANs; `buf[..from]` is settled context, read but never written.
/// Masks each PAN found (when `opts.mask`), reports it to `found`, and returns the offset before
/// which everything is settled. With `at_end` the data ends with `buf` and all of it is settled.
pub fn scan(
    buf: &mut [u8],
    from: usize,
    at_end: bool,
    opts: &Options,
    found: &mut impl FnMut(Found),
) -> usize {
    let len = buf.len();
    // The last bytes of a value or a body: with fewer digits than the shortest PAN has, none
    // starts here (most header values, and the tail of most bodies).
    if at_end && !has_digits(buf.get(from..).unwrap_or_default(), MIN_DIGITS) {
        return len;
    }
    let mut pos = from;
    // A digit run that began in the context was settled as too long to be a PAN; skip its rest.
    if pos > 0 && byte(buf, pos - 1).is_some_and(|b| b.is_ascii_digit()) && !in_escape(buf, pos - 1)
    {
        pos = digits_end(buf, pos);
    }
    while let Some(g) = next_group(buf, pos) {
        // The `2` and `0` of a `%20` (or the `2` of `%2D`) are a separator, not digits of the data.
        if g >= 1 && byte(buf, g - 1) == Some(b'%') && byte(buf, g) == Some(b'2') {
            match byte(buf, g + 1) {
                Some(b'0') => {
                    pos = g + 2;
                    continue;
                }
                Some(b'd' | b'D') => {
                    pos = g + 1;
                    continue;
                }
                None if !at_end => return g,
                _ => {}
            }
        }
        // Most digit runs in data (ids, amounts, dates) are too short to start a PAN and end in a
        // byte that joins them to no further group: no window starts there. `decide` would say
        // the same after setting up its windows; this says it from the run's length alone.
        let e = digits_end(buf, g);
        if let Some(b) = byte(buf, e) {
            if e - g < 4 || (e - g < 12 && !matches!(b, b' ' | b'-' | b'+' | b'%')) {
                pos = e;
                continue;
            }
        }
        match decide(buf, g, at_end) {
            Window::Undecided => return g,
            Window::None { next } => pos = next,
            Window::Pan { end, groups, brand } => {
                let (digits, len) = window_digits(buf, &groups);
                let f = Found {
                    start: g,
                    end,
                    brand,
                    digits,
                    len,
                };
                pos = end;
                if opts.mask {
                    pos = mask(buf, &groups, opts).unwrap_or(end);
                }
                found(f);
            }
        }
    }
    len
}

/// The first digit at or after `pos` that may start a PAN's first group. The prefilter passes over
/// blocks where none can; a digit run it lands inside began at an offset it judged, so no group of
/// that run starts a PAN either, and the search goes on past it.
fn next_group(buf: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let c = prefilter::next_candidate(buf, pos);
        if c > pos && byte(buf, c - 1).is_some_and(|b| b.is_ascii_digit()) && !in_escape(buf, c - 1)
        {
            pos = digits_end(buf, c);
            continue;
        }
        return find_digit(buf, c);
    }
}

/// Up to 6 groups of one window, as byte ranges.
#[derive(Debug, Clone, Copy)]
struct Groups {
    ranges: [(usize, usize); 6],
    n: usize,
}

impl Groups {
    fn iter(&self) -> impl Iterator<Item = &(usize, usize)> {
        self.ranges.iter().take(self.n)
    }
}

enum Window {
    /// The buffer ends before the windows starting here can be decided.
    Undecided,
    /// No PAN starts at this group; go on from `next` (the group's end).
    None { next: usize },
    Pan {
        end: usize,
        groups: Groups,
        brand: Brand,
    },
}

/// Decides the windows that start at the group beginning at `g`.
fn decide(buf: &[u8], g: usize, at_end: bool) -> Window {
    let len = buf.len();
    let mut first_end = g;
    let mut groups = Groups {
        ranges: [(0, 0); 6],
        n: 0,
    };
    let mut total = 0usize;
    let mut best: Option<(Groups, Brand)> = None;
    let mut p = g;
    loop {
        let e = digits_end(buf, p);
        let glen = e - p;
        let open = e == len && !at_end; // the group may go on past the buffer
        if groups.n == 0 {
            first_end = e;
            if glen > MAX_DIGITS {
                // Too long to be (or start) a PAN, however long it gets.
                return Window::None { next: e };
            }
            if open {
                return Window::Undecided;
            }
            if glen < 4 {
                return Window::None { next: e };
            }
        } else if total + glen > MAX_DIGITS || (!open && glen < 3) {
            break;
        } else if open {
            return Window::Undecided;
        }
        if let Some(slot) = groups.ranges.get_mut(groups.n) {
            *slot = (p, e);
            groups.n += 1;
        } else {
            break;
        }
        total += glen;
        if total >= 12 {
            match check(buf, g, &groups, total, at_end) {
                Check::Pan(brand) => best = Some((groups, brand)),
                Check::NotPan => {}
                Check::Undecided => return Window::Undecided,
            }
        }
        match separator(buf, e) {
            Sep::Yes(n) => match byte(buf, e + n) {
                Some(b) if b.is_ascii_digit() => p = e + n,
                Some(_) => break,
                None if at_end => break,
                None => return Window::Undecided,
            },
            Sep::Partial if !at_end => return Window::Undecided,
            Sep::Partial | Sep::No => break,
        }
    }
    match best {
        Some((groups, brand)) => Window::Pan {
            end: groups.iter().last().map_or(first_end, |r| r.1),
            groups,
            brand,
        },
        None => Window::None { next: first_end },
    }
}

enum Check {
    Pan(Brand),
    NotPan,
    Undecided,
}

/// The digits of a window, in order, and how many there are.
fn window_digits(buf: &[u8], groups: &Groups) -> ([u8; MAX_DIGITS], usize) {
    let mut digits = [0u8; MAX_DIGITS];
    let mut k = 0;
    for &(s, e) in groups.iter() {
        for &d in buf.get(s..e).unwrap_or(&[]) {
            if let Some(slot) = digits.get_mut(k) {
                *slot = d;
                k += 1;
            }
        }
    }
    (digits, k)
}

/// Is the window of `groups` (starting at `g`, `total` digits) a PAN?
fn check(buf: &[u8], g: usize, groups: &Groups, total: usize, at_end: bool) -> Check {
    let (digits, _) = window_digits(buf, groups);
    let Some(brand) = digits.get(..total).and_then(classify) else {
        return Check::NotPan;
    };
    let end = groups.iter().last().map_or(g, |r| r.1);
    // An E.164 phone number: '+' and at most 15 digits, not a separator between digit groups.
    if groups.n == 1
        && total <= 15
        && g >= 1
        && byte(buf, g - 1) == Some(b'+')
        && !(g >= 2 && byte(buf, g - 2).is_some_and(|b| b.is_ascii_digit()))
    {
        return Check::NotPan;
    }
    // Digits glued to a long hex string (a SHA-256, a MAC, a key) are part of it, not a card.
    for &(gs, ge) in groups.iter() {
        match inside_hex_blob(buf, gs, ge, at_end) {
            Some(true) => return Check::NotPan,
            Some(false) => {}
            None => return Check::Undecided,
        }
    }
    match inside_uuid(buf, g, end, at_end) {
        Some(true) => Check::NotPan,
        Some(false) => Check::Pan(brand),
        None => Check::Undecided,
    }
}

fn is_hex_or_dash(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b'-'
}

/// Shortest run of hex characters taken for a hash, MAC or key rather than text.
const HEX_BLOB_LEN: usize = 32;

/// Whether the digit group `buf[s..e]` is part of a hex blob: a run of at least 32 hex characters
/// with a letter in it. The group is a maximal digit run, so if the blob is longer than the group,
/// a hex letter stands right next to it. A window with a group in a blob is never a PAN, so no
/// masking ever shortens a blob and turns its digits into a card number. `None` when the buffer
/// ends before the answer is known.
fn inside_hex_blob(buf: &[u8], s: usize, e: usize, at_end: bool) -> Option<bool> {
    let letter =
        |i: usize| byte(buf, i).is_some_and(|b| b.is_ascii_hexdigit() && !b.is_ascii_digit());
    let glued = (s >= 1 && letter(s - 1)) || letter(e);
    if !glued {
        // Right after the digits the buffer may end: the next byte could still be a letter.
        return if e == buf.len() && !at_end {
            None
        } else {
            Some(false)
        };
    }
    let mut a = s;
    while a > 0 && s - a <= HEX_BLOB_LEN && byte(buf, a - 1).is_some_and(|b| b.is_ascii_hexdigit())
    {
        a -= 1;
    }
    let mut b = e;
    while b - a < HEX_BLOB_LEN && byte(buf, b).is_some_and(|c| c.is_ascii_hexdigit()) {
        b += 1;
    }
    if b - a >= HEX_BLOB_LEN {
        return Some(true);
    }
    if b == buf.len() && !at_end {
        return None;
    }
    Some(false)
}

/// Whether a window starting with the digit group `buf[s..e]` (alone, or joined with the groups
/// after it, as `decide` joins them) has a brand's prefix and length and passes the Luhn check.
fn starts_a_pan(buf: &[u8], s: usize, e: usize) -> bool {
    let mut digits = [0u8; MAX_DIGITS];
    let mut total = 0;
    let (mut gs, mut ge) = (s, e);
    loop {
        for &d in buf.get(gs..ge).unwrap_or(&[]) {
            match digits.get_mut(total) {
                Some(slot) => *slot = d,
                None => return false,
            }
            total += 1;
        }
        if digits.get(..total).and_then(classify).is_some() {
            return true;
        }
        let next = match separator(buf, ge) {
            Sep::Yes(n) => ge + n,
            Sep::Partial | Sep::No => return false,
        };
        let end = digits_end(buf, next);
        if end - next < 3 {
            return false;
        }
        (gs, ge) = (next, end);
    }
}

/// Whether `buf[s..e]` lies inside a UUID (8-4-4-4-12 hex digits); `None` when the buffer ends
/// before the answer is known.
fn inside_uuid(buf: &[u8], s: usize, e: usize, at_end: bool) -> Option<bool> {
    const UUID_LEN: usize = 36;
    let mut a = s;
    while a > 0 && s - a <= UUID_LEN && byte(buf, a - 1).is_some_and(is_hex_or_dash) {
        a -= 1;
    }
    let mut b = e;
    while b - a <= UUID_LEN && byte(buf, b).is_some_and(is_hex_or_dash) {
        b += 1;
    }
    if b == buf.len() && b - a <= UUID_LEN && !at_end {
        return None;
    }
    if b - a != UUID_LEN {
        return Some(false);
    }
    let token = buf.get(a..b)?;
    let shape = token.iter().enumerate().all(|(i, &c)| match i {
        8 | 13 | 18 | 23 => c == b'-',
        _ => c.is_ascii_hexdigit(),
    });
    Some(shape)
}

/// Masks the digits of a window in place: separators stay, `keep_first`/`keep_last` digits stay.
///
/// Kept digits must not combine with neighbouring digit groups into a new card number. Leading
/// digits are kept only when no digit group comes right before the window; the kept trailing digits
/// are scanned again as the start of a group (their offset is returned), so a PAN they would form
/// with the groups after them is masked too.
fn mask(buf: &mut [u8], groups: &Groups, opts: &Options) -> Option<usize> {
    let (first_start, _) = *groups.ranges.first()?;
    let total: usize = groups.iter().map(|(s, e)| e - s).sum();
    // PCI DSS 3.4.1: at most the first eight digits of a PAN of 16 digits or more, the first six of
    // a shorter one, whatever the configuration asks.
    let max_first = if total >= 16 { 8 } else { 6 };
    let mut keep_first = usize::from(opts.masking.keep_first).min(max_first);
    if follows_group(buf, first_start) {
        keep_first = 0;
    }
    let keep_last = usize::from(opts.masking.keep_last).min(total);
    let bare = opts.json && groups.n == 1 && is_bare_json_number(buf, first_start);
    let fill = if bare { b'9' } else { opts.masking.mask_char };
    let mut k = 0;
    let mut last_hidden = None;
    let mut kept_tail = None;
    for &(s, e) in groups.iter() {
        for i in s..e {
            if k >= keep_first && k + keep_last < total {
                if let Some(d) = buf.get_mut(i) {
                    *d = fill;
                    last_hidden = Some(i);
                }
            } else if k + keep_last == total && keep_last > 0 {
                kept_tail = Some(i);
            }
            k += 1;
        }
    }
    if bare {
        // Nines with the kept digits could still spell a valid card number, alone or joined with
        // the groups after the number ("6999999999999905 428"). The last hidden digit is chosen so
        // that none of those windows passes: each window's Luhn check rules out one value of it,
        // and there are at most six windows for ten values. Nothing before a bare number is a
        // digit group, and nothing is scanned again: the group stays one run of digits.
        let (s, e) = (first_start, groups.ranges.first()?.1);
        if let Some(i) = last_hidden {
            for d in [b'9', b'8', b'7', b'6', b'5', b'4', b'3', b'2', b'1', b'0'] {
                if let Some(slot) = buf.get_mut(i) {
                    *slot = d;
                }
                if !starts_a_pan(buf, s, e) {
                    break;
                }
            }
        }
        return None;
    }
    // The kept tail starts a group of its own unless a kept digit stands right before it.
    kept_tail.filter(|&i| {
        i > first_start
            && (!byte(buf, i - 1).is_some_and(|b| b.is_ascii_digit()) || in_escape(buf, i - 1))
    })
}

/// Whether the group at `g` follows another digit group across one separator.
fn follows_group(buf: &[u8], g: usize) -> bool {
    let digit_at =
        |i: usize| byte(buf, i).is_some_and(|b| b.is_ascii_digit()) && !in_escape(buf, i);
    let short = g >= 2 && matches!(byte(buf, g - 1), Some(b' ' | b'-' | b'+')) && digit_at(g - 2);
    let escaped = g >= 4
        && byte(buf, g - 3) == Some(b'%')
        && byte(buf, g - 2) == Some(b'2')
        && matches!(byte(buf, g - 1), Some(b'0' | b'd' | b'D'))
        && digit_at(g - 4);
    short || escaped
}

/// A number at `g` is a bare JSON number when the last non-blank byte before it opens a value
/// (`:`, `[`, `,`) or there is none. Looks back at most `LOOKBEHIND` bytes; past that it assumes
/// bare, which is safe either way (nines are valid inside strings too).
fn is_bare_json_number(buf: &[u8], g: usize) -> bool {
    let lo = g.saturating_sub(LOOKBEHIND);
    for i in (lo..g).rev() {
        match byte(buf, i) {
            Some(b' ' | b'\t' | b'\r' | b'\n') => continue,
            Some(b':' | b'[' | b',') | None => return true,
            Some(_) => return false,
        }
    }
    true
}

enum Sep {
    Yes(usize),
    /// The buffer ends inside what may be a `%20`/`%2D` separator.
    Partial,
    No,
}

fn separator(buf: &[u8], i: usize) -> Sep {
    match byte(buf, i) {
        Some(b' ' | b'-' | b'+') => Sep::Yes(1),
        Some(b'%') => match (byte(buf, i + 1), byte(buf, i + 2)) {
            (Some(b'2'), Some(b'0' | b'd' | b'D')) => Sep::Yes(3),
            (None, _) | (Some(b'2'), None) => Sep::Partial,
            _ => Sep::No,
        },
        _ => Sep::No,
    }
}

/// Whether the digit at `i` belongs to a `%20` or `%2D` escape.
fn in_escape(buf: &[u8], i: usize) -> bool {
    let at = |k: usize| byte(buf, k);
    match at(i) {
        Some(b'2') => {
            i >= 1 && at(i - 1) == Some(b'%') && matches!(at(i + 1), Some(b'0' | b'd' | b'D'))
        }
        Some(b'0') => i >= 2 && at(i - 1) == Some(b'2') && at(i - 2) == Some(b'%'),
        _ => false,
    }
}

#[inline]
/// Whether `buf` holds at least `n` ASCII digits, counted 64 bytes at a time.
pub(super) fn has_digits(buf: &[u8], n: usize) -> bool {
    let mut seen = 0;
    let mut words = buf.chunks_exact(8);
    for (i, w) in words.by_ref().enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        seen += digits_in_word(u64::from_le_bytes(word)) as usize;
        // Checked every 64 bytes: most values and tails are shorter than that.
        if i % 8 == 7 && seen >= n {
            return true;
        }
    }
    seen += words
        .remainder()
        .iter()
        .filter(|b| b.is_ascii_digit())
        .count();
    seen >= n
}

/// How many of a word's eight bytes are ASCII digits, eight bytes at a time: a byte is one when
/// its high nibble is 3 and its low nibble below 10. No step carries from one byte to the next.
#[inline]
fn digits_in_word(x: u64) -> u32 {
    const ONES7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Zero where the high nibble is 3.
    let hi = (x & 0xf0f0_f0f0_f0f0_f0f0) ^ 0x3030_3030_3030_3030;
    // High bit set exactly where `hi` is zero.
    let hi_zero = !(((hi & ONES7) + ONES7) | hi | ONES7);
    // High bit set where the low nibble is 10 or more (at most 0x0f + 0x76 = 0x85: no carry).
    let lo_big = ((x & 0x0f0f_0f0f_0f0f_0f0f) + 0x7676_7676_7676_7676) & HIGH;
    (hi_zero & !lo_big & HIGH).count_ones()
}

fn byte(buf: &[u8], i: usize) -> Option<u8> {
    buf.get(i).copied()
}

/// The end of the digit run starting at `i`.
#[inline]
fn digits_end(buf: &[u8], i: usize) -> usize {
    let rest = buf.get(i..).unwrap_or(&[]);
    i + rest.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// True when any byte of the little-endian word is an ASCII digit (0x30..=0x39). The classic
/// "has byte between m and n" bit trick with m = 0x2F, n = 0x3A; bytes >= 0x80 never count.
#[inline]
fn word_has_digit(w: u64) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let low7 = w & (LO * 127);
    let below_n = (LO * (127 + 0x3A)).wrapping_sub(low7);
    let above_m = low7.wrapping_add(LO * (127 - 0x2F));
    (below_n & !w & above_m & HI) != 0
}

/// The first digit at or after `from`. Nearby digits (ids, amounts in JSON) are found a word at a
/// time; a long stretch without digits is handed to the regex engine's vectorised prefilter, which
/// skips it at close to memory speed.
#[inline]
pub fn find_digit(buf: &[u8], from: usize) -> Option<usize> {
    const NEAR: usize = 32;
    let rest = buf.get(from..)?;
    let near = rest.get(..NEAR).unwrap_or(rest);
    let mut skipped = 0;
    for c in near.chunks_exact(8) {
        let w = <[u8; 8]>::try_from(c).map_or(u64::MAX, u64::from_le_bytes);
        if word_has_digit(w) {
            break;
        }
        skipped += 8;
    }
    if skipped < near.len() {
        return rest
            .get(skipped..)?
            .iter()
            .position(u8::is_ascii_digit)
            .map(|p| from + skipped + p);
    }
    match digit_regex() {
        Some(re) => re.find_at(buf, from + skipped).map(|m| m.start()),
        None => rest
            .get(skipped..)?
            .iter()
            .position(u8::is_ascii_digit)
            .map(|p| from + skipped + p),
    }
}

/// `[0-9]`, compiled once per VM (or process).
fn digit_regex() -> Option<&'static regex::bytes::Regex> {
    static DIGIT: std::sync::OnceLock<Option<regex::bytes::Regex>> = std::sync::OnceLock::new();
    DIGIT
        .get_or_init(|| regex::bytes::Regex::new("[0-9]").ok())
        .as_ref()
}

#[cfg(test)]
mod tests;
