//! The streaming redactor: bodies pass through chunk by chunk, PANs and custom patterns are masked
//! wherever they fall across chunk boundaries, and only a small bounded tail is held back.
//!
//! Output for any chunking equals the output of redacting the whole stream at once, because every
//! decision reads at most a bounded window around it (see `scan`) and the redactor keeps that window:
//! `CONTEXT` bytes already released behind, and every byte not yet settled ahead.

use std::sync::Arc;

use super::scan::{self, Found, Options};
use super::{Brand, Pattern, Tokens};

/// Longest match of a custom pattern, in bytes. Patterns that could match more are rejected at
/// configure time, so their matches, too, are found whatever the chunking.
pub const MAX_PATTERN_MATCH: usize = 256;
/// Released bytes kept in front of the unsettled ones, for look-behind (scanner, regex `\b`).
const CONTEXT: usize = 64;
/// Bytes of a chunk `push_in_place` scans in the redactor's own buffer, behind the context.
const SEAM: usize = 256;
const _: () = assert!(SEAM >= scan::LOOKAHEAD + CONTEXT);
/// Upper bound on the bytes a redactor holds back between chunks.
pub const MAX_HELD: usize = MAX_PATTERN_MATCH + scan::LOOKAHEAD + 8;

const BRANDS: usize = 8;

/// What one redactor (or one place, such as request headers) saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// PANs detected.
    pub found: u64,
    /// PANs masked.
    pub redacted: u64,
    /// PANs let through (a `pan` grant, or `dry_run`).
    pub passed: u64,
    /// PANs detected per brand, indexed by `Brand as usize`.
    pub by_brand: [u64; BRANDS],
    /// Custom pattern matches (masked, or counted only when masking is off).
    pub patterns: u64,
}

impl Counts {
    fn record(&mut self, brand: Brand, masked: bool) {
        self.found += 1;
        if masked {
            self.redacted += 1;
        } else {
            self.passed += 1;
        }
        if let Some(c) = self.by_brand.get_mut(brand as usize) {
            *c += 1;
        }
    }

    pub fn add(&mut self, other: &Counts) {
        self.found += other.found;
        self.redacted += other.redacted;
        self.passed += other.passed;
        self.patterns += other.patterns;
        for (a, b) in self.by_brand.iter_mut().zip(other.by_brand) {
            *a += b;
        }
    }

    /// Per-brand counts that are not zero.
    pub fn brands(&self) -> impl Iterator<Item = (Brand, u64)> + '_ {
        super::ALL_BRANDS
            .iter()
            .zip(self.by_brand)
            .filter(|(_, n)| *n > 0)
            .map(|(b, n)| (*b, n))
    }
}

/// Where a redaction pass stands, as offsets in its buffer.
#[derive(Debug, Clone, Copy, Default)]
struct Cursor {
    /// Bytes before it are handed out (or about to be).
    released: usize,
    /// Bytes before it have had their PAN decisions made (and were masked and counted).
    scanned: usize,
}

/// Settles the buffer as far as the data allows: masks PANs from `cur.scanned` on, then custom
/// patterns over the bytes whose PAN decisions are final, and moves the cursor. `pattern_pos[i]`
/// is where pattern `i` resumes (absolute in `buf`); a missing entry means `cur.released`.
#[allow(clippy::too_many_arguments)]
fn settle(
    buf: &mut [u8],
    cur: &mut Cursor,
    at_end: bool,
    opts: &Options,
    patterns: &[Pattern],
    mask_patterns: bool,
    pattern_pos: &mut [usize],
    counts: &mut Counts,
    tokens: Option<&mut Tokens>,
) {
    let start = cur.released;
    let pan_settled = scan_counting(buf, cur.scanned.max(start), at_end, opts, counts, tokens);
    cur.scanned = pan_settled;
    if patterns.is_empty() {
        cur.released = pan_settled;
        return;
    }
    // A match that starts before `limit` ends before `pan_settled`, since matches are bounded.
    let limit = if at_end {
        pan_settled
    } else {
        pan_settled.saturating_sub(MAX_PATTERN_MATCH).max(start)
    };
    let mask_char = opts.masking.mask_char;
    let Some(hay) = buf.get_mut(..pan_settled) else {
        return;
    };
    for (i, p) in patterns.iter().enumerate() {
        let mut pos = pattern_pos.get(i).copied().unwrap_or(start).max(start);
        while pos < limit {
            let Some(m) = p.regex.find_at(hay, pos).map(|m| m.range()) else {
                pos = limit;
                break;
            };
            if m.start >= limit {
                pos = limit;
                break;
            }
            counts.patterns += 1;
            if mask_patterns {
                if let Some(r) = hay.get_mut(m.clone()) {
                    r.fill(mask_char);
                }
            }
            // Patterns never match the empty string (checked at configure time); be safe anyway.
            pos = m.end.max(m.start + 1);
        }
        if let Some(slot) = pattern_pos.get_mut(i) {
            *slot = pos;
        }
    }
    cur.released = limit;
}

/// Scans for PANs (see `scan::scan`), counting each one found and recording its token.
fn scan_counting(
    buf: &mut [u8],
    from: usize,
    at_end: bool,
    opts: &Options,
    counts: &mut Counts,
    mut tokens: Option<&mut Tokens>,
) -> usize {
    scan::scan(buf, from, at_end, opts, &mut |f: Found| {
        counts.record(f.brand, opts.mask);
        if let Some(t) = tokens.as_deref_mut() {
            t.add(f.digits.get(..f.len).unwrap_or(&[]));
        }
    })
}

/// Redacts a whole value at once (a header value, a path, a file read entirely), in place.
pub fn redact_all(
    bytes: &mut [u8],
    opts: &Options,
    patterns: &[Pattern],
    mask_patterns: bool,
    counts: &mut Counts,
) {
    redact_all_with(bytes, opts, patterns, mask_patterns, counts, None);
}

/// As `redact_all`, also recording a keyed token for each PAN found.
pub fn redact_all_with(
    bytes: &mut [u8],
    opts: &Options,
    patterns: &[Pattern],
    mask_patterns: bool,
    counts: &mut Counts,
    tokens: Option<&mut Tokens>,
) {
    let mut cur = Cursor::default();
    settle(
        bytes,
        &mut cur,
        true,
        opts,
        patterns,
        mask_patterns,
        &mut [],
        counts,
        tokens,
    );
}

/// A streaming redactor for one body.
pub struct Redactor {
    opts: Options,
    patterns: Arc<[Pattern]>,
    mask_patterns: bool,
    /// `buf[..cur.released]` has been handed out; of it, the last `CONTEXT` bytes at most are kept
    /// as look-behind. `buf[cur.released..]` is held. Invariant after a call:
    /// `cur.released <= cur.scanned <= buf.len()` and `buf.len() - cur.released <= MAX_HELD`.
    buf: Vec<u8>,
    /// Start of the bytes handed out by the last call.
    out_start: usize,
    cur: Cursor,
    /// Where each pattern resumes, as an offset in `buf`.
    pattern_pos: Vec<usize>,
    counts: Counts,
    tokens: Option<Tokens>,
}

impl Redactor {
    pub fn new(opts: Options, patterns: Arc<[Pattern]>, mask_patterns: bool) -> Redactor {
        let n = patterns.len();
        Redactor {
            opts,
            patterns,
            mask_patterns,
            buf: Vec::new(),
            out_start: 0,
            cur: Cursor::default(),
            pattern_pos: vec![0; n],
            counts: Counts::default(),
            tokens: None,
        }
    }

    /// Records a keyed token for each PAN found (see `pan::token`).
    pub fn with_tokens(mut self, tokens: Tokens) -> Redactor {
        self.tokens = Some(tokens);
        self
    }

    pub fn tokens(&self) -> Option<&Tokens> {
        self.tokens.as_ref()
    }

    /// Feeds the next chunk; returns the bytes now safe to pass on, masked. Across a stream the
    /// returned bytes, followed by `finish`, are exactly as many as were fed.
    pub fn push(&mut self, chunk: &[u8]) -> &[u8] {
        self.compact();
        self.buf.extend_from_slice(chunk);
        self.process(false)
    }

    /// Feeds the next chunk and redacts it where it lies, without copying it: on `Some(n)`,
    /// `chunk[..n]` is the output (masked in place) and the rest of it is held. Only its first
    /// `SEAM` bytes are scanned behind the look-behind context in the redactor's own buffer (and
    /// copied back); the scan then goes on in `chunk`, whose own bytes are context enough by then.
    /// `None` (nothing done) when bytes are held from before, custom patterns are set, or the
    /// chunk is short: then `push` it.
    pub fn push_in_place(&mut self, chunk: &mut [u8], at_end: bool) -> Option<usize> {
        let seam = chunk.get(..SEAM)?;
        if !self.patterns.is_empty() || self.held() > 0 || chunk.len() == SEAM {
            return None;
        }
        self.compact();
        // Nothing is held: the buffer is the context alone, all of it released and scanned.
        let ctx = self.buf.len();
        self.buf.extend_from_slice(seam);
        let opts = self.opts;
        let tokens = self.tokens.as_mut();
        let s = scan_counting(&mut self.buf, ctx, false, &opts, &mut self.counts, tokens);
        // A window left undecided starts within `scan::LOOKAHEAD` of the seam's end, so at least
        // `SEAM - LOOKAHEAD` bytes of the chunk are settled: more than the scan's look-behind.
        let p = s.saturating_sub(ctx).min(SEAM);
        if let (Some(dst), Some(src)) = (chunk.get_mut(..p), self.buf.get(ctx..ctx + p)) {
            dst.copy_from_slice(src);
        }
        let tokens = self.tokens.as_mut();
        let t = scan_counting(chunk, p, at_end, &opts, &mut self.counts, tokens);
        // Keep the context before `t` and the bytes after it, which are not settled yet.
        let keep = t.saturating_sub(CONTEXT);
        self.buf.clear();
        self.buf.extend_from_slice(chunk.get(keep..).unwrap_or(&[]));
        self.cur = Cursor {
            released: t - keep,
            scanned: t - keep,
        };
        self.out_start = self.cur.released;
        Some(t)
    }

    /// Whether `chunk`, the stream's last bytes, would come out of `push` and `finish` as it is
    /// and leave the counts as they are: nothing is held, no custom pattern is set, and it holds
    /// fewer digits than the shortest PAN. Then the redactor need not take it at all (most small
    /// bodies: a status, an id, a short JSON answer).
    pub fn passes_last(&self, chunk: &[u8]) -> bool {
        self.patterns.is_empty() && self.held() == 0 && !scan::has_digits(chunk, scan::MIN_DIGITS)
    }

    /// The stream has ended: settles and returns everything still held.
    pub fn finish(&mut self) -> &[u8] {
        self.compact();
        self.process(true)
    }

    /// What the last `push` or `finish` returned.
    pub fn last_output(&self) -> &[u8] {
        self.buf
            .get(self.out_start..self.cur.released)
            .unwrap_or(&[])
    }

    /// How many matches have been rewritten so far: when it has not moved across a call that held
    /// nothing back before or after, the bytes handed out are the bytes fed in.
    pub fn edits(&self) -> u64 {
        let pans = if self.opts.mask { self.counts.found } else { 0 };
        let patterns = if self.mask_patterns {
            self.counts.patterns
        } else {
            0
        };
        pans + patterns
    }

    /// Bytes held back after the last call.
    pub fn held(&self) -> usize {
        self.buf.len() - self.cur.released
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Drops released bytes but the look-behind context, moving the held bytes to the front.
    fn compact(&mut self) {
        let gone = self.cur.released.saturating_sub(CONTEXT);
        if gone > 0 {
            self.buf.drain(..gone);
            self.cur.released -= gone;
            self.cur.scanned -= gone;
            for p in &mut self.pattern_pos {
                *p = p.saturating_sub(gone);
            }
        }
        self.out_start = self.cur.released;
    }

    fn process(&mut self, at_end: bool) -> &[u8] {
        settle(
            &mut self.buf,
            &mut self.cur,
            at_end,
            &self.opts,
            &self.patterns,
            self.mask_patterns,
            &mut self.pattern_pos,
            &mut self.counts,
            self.tokens.as_mut(),
        );
        self.last_output()
    }
}

#[cfg(test)]
mod tests;
