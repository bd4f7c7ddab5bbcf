//! The scanner's block prefilter: passes over data where no PAN can start, 64 bytes at a time.
//!
//! A PAN starts with a group of at least four digits, and its first 12 bytes hold at least 12
//! digits and separators, so all of them are digits or bytes a separator is made of (space, `-`,
//! `+`, and the `%`, `2`, `0`, `d`, `D` of `%20` and `%2D`). Ordinary data rarely has such a
//! stretch: dates, amounts, ids and quantities are cut short by `.`, `:`, `T`, quotes or commas.
//! The prefilter classifies each block into two bitmasks (digits; digits and separator bytes),
//! finds the offsets where both conditions hold with a few shifts, and hands the scanner only
//! those. It is a necessary condition only: the scanner decides every offset it is handed.

/// Bytes classified at once.
const BLOCK: usize = 64;
/// Bytes at the start of a PAN that are all digits or separator bytes.
const SPAN: usize = 12;
/// Digits a PAN's first group has at least.
const FIRST_GROUP: usize = 4;

/// The first offset at or after `from` where a PAN could start, or the offset from which fewer
/// than 64 bytes remain (the scanner looks at those itself). Offsets before the one returned
/// start no PAN.
///
/// Each block is classified once: the offsets of a block are judged with the next block's
/// classification behind them (carried into the next step), so the scan moves 64 bytes at a time.
/// Only near the end, where no whole block follows, is a block judged alone, up to the offsets
/// whose 12 bytes it holds.
pub fn next_candidate(buf: &[u8], from: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { next_candidate_avx2(buf, from) };
    }
    search(buf, from, classify)
}

/// `next_candidate` with each block classified 32 bytes at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(unsafe_code)]
unsafe fn next_candidate_avx2(buf: &[u8], from: usize) -> usize {
    // SAFETY: this function runs only where the CPU has AVX2, which is all `classify_avx2` needs.
    search(buf, from, |block| unsafe { classify_avx2(block) })
}

#[inline(always)]
fn search(buf: &[u8], from: usize, classify: impl Fn(&[u8; BLOCK]) -> (u64, u64)) -> usize {
    let mut p = from;
    let mut carried: Option<(u64, u64)> = None;
    while let Some(block) = buf.get(p..).and_then(|rest| rest.first_chunk::<BLOCK>()) {
        let (digits, pan_bytes) = carried.take().unwrap_or_else(|| classify(block));
        if digits == 0 {
            // No digit, so no group starts here.
            p += BLOCK;
            continue;
        }
        let next = buf
            .get(p + BLOCK..)
            .and_then(|rest| rest.first_chunk::<BLOCK>());
        let Some(next) = next else {
            // No whole block follows: this one is judged alone, up to the offsets whose 12 bytes
            // it holds, and the search goes on from the first offset it could not judge.
            let starts = runs_of::<FIRST_GROUP>(digits) & runs_of::<SPAN>(pan_bytes);
            if starts != 0 {
                return p + starts.trailing_zeros() as usize;
            }
            p += BLOCK - SPAN + 1;
            continue;
        };
        let (next_digits, next_pan_bytes) = classify(next);
        let wide = |low: u64, high: u64| u128::from(low) | u128::from(high) << BLOCK;
        // Offsets of this block only; the next block's are judged in the next step. The spans
        // first: in most data they rule out every offset, and the digit runs need not be found.
        let spans = runs_of_wide::<SPAN>(wide(pan_bytes, next_pan_bytes)) as u64;
        if spans != 0 {
            let starts = spans & runs_of_wide::<FIRST_GROUP>(wide(digits, next_digits)) as u64;
            if starts != 0 {
                return p + starts.trailing_zeros() as usize;
            }
        }
        carried = Some((next_digits, next_pan_bytes));
        p += BLOCK;
    }
    p
}

/// `runs_of` over two blocks' masks, the second above the first: bit `i` set when bits
/// `i..i + N` are all set.
#[inline(always)]
fn runs_of_wide<const N: usize>(mask: u128) -> u128 {
    let mut runs = mask;
    let mut have = 1;
    while have < N {
        let step = have.min(N - have);
        runs &= runs >> step;
        have += step;
    }
    runs
}

/// Bit `i` set when bits `i..i + N` of `mask` are all set.
#[inline(always)]
fn runs_of<const N: usize>(mask: u64) -> u64 {
    runs_of_wide::<N>(u128::from(mask)) as u64
}

/// Bit `i` of the first mask: byte `i` is a digit; of the second: byte `i` is a digit or a byte
/// a separator is made of. Sixteen bytes at a time with SIMD where the target has it (SSE2 on
/// x86_64, SIMD128 on wasm32 when built with it, as the release build is), bytewise elsewhere.
#[inline(always)]
fn classify(block: &[u8; BLOCK]) -> (u64, u64) {
    let mut digits = 0u64;
    let mut pan_bytes = 0u64;
    for (i, chunk) in block.chunks_exact(16).enumerate() {
        let chunk = chunk.first_chunk::<16>().unwrap_or(&[0; 16]);
        let (d, s) = classify16(chunk);
        digits |= u64::from(d) << (16 * i);
        pan_bytes |= u64::from(s) << (16 * i);
    }
    (digits, pan_bytes)
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(unsafe_code)]
fn classify16(chunk: &[u8; 16]) -> (u16, u16) {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of the x86_64 baseline, so its intrinsics are always available; the
    // load is an unaligned 16-byte load from a reference to exactly 16 bytes.
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
        let splat = |b: u8| _mm_set1_epi8(b as i8);
        // Signed compares: bytes >= 0x80 are negative and never digits.
        let digit = _mm_and_si128(
            _mm_cmpgt_epi8(v, splat(b'0' - 1)),
            _mm_cmplt_epi8(v, splat(b'9' + 1)),
        );
        let sep = _mm_or_si128(
            _mm_or_si128(
                _mm_cmpeq_epi8(v, splat(b' ')),
                _mm_cmpeq_epi8(v, splat(b'-')),
            ),
            _mm_or_si128(
                _mm_or_si128(
                    _mm_cmpeq_epi8(v, splat(b'+')),
                    _mm_cmpeq_epi8(v, splat(b'%')),
                ),
                _mm_cmpeq_epi8(_mm_or_si128(v, splat(0x20)), splat(b'd')),
            ),
        );
        let d = _mm_movemask_epi8(digit) as u16;
        let s = _mm_movemask_epi8(_mm_or_si128(digit, sep)) as u16;
        (d, s)
    }
}

/// `classify` with AVX2: each byte's classes looked up by its two nibbles (`LOW`, `HIGH`; a class
/// holds where both tables have its bit), 32 bytes per instruction.
///
/// SAFETY (for callers): the CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
#[allow(unsafe_code)]
unsafe fn classify_avx2(block: &[u8; BLOCK]) -> (u64, u64) {
    use std::arch::x86_64::*;
    // Bit 1: a digit (high nibble 3, low 0 to 9). Bit 2: a space, `%`, `+` or `-` (high nibble 2,
    // low 0, 5, B or D). Bit 4: `D` or `d` (high nibble 4 or 6, low 4).
    const LOW: [i8; 16] = [3, 1, 1, 1, 5, 3, 1, 1, 1, 1, 0, 2, 0, 2, 0, 0];
    const HIGH: [i8; 16] = [0, 0, 2, 1, 4, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let half = |v: __m256i| {
        let low = _mm256_setr_m128i(
            _mm_loadu_si128(LOW.as_ptr().cast()),
            _mm_loadu_si128(LOW.as_ptr().cast()),
        );
        let high = _mm256_setr_m128i(
            _mm_loadu_si128(HIGH.as_ptr().cast()),
            _mm_loadu_si128(HIGH.as_ptr().cast()),
        );
        let nibble = _mm256_set1_epi8(0x0f);
        let lo = _mm256_shuffle_epi8(low, _mm256_and_si256(v, nibble));
        let hi = _mm256_shuffle_epi8(high, _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble));
        let class = _mm256_and_si256(lo, hi);
        // A byte's bit 0 moved to its top bit (the bits shifted in from the byte below land
        // lower), then gathered.
        let digits = _mm256_movemask_epi8(_mm256_slli_epi16(class, 7)) as u32;
        let other = _mm256_movemask_epi8(_mm256_cmpeq_epi8(class, _mm256_setzero_si256())) as u32;
        (digits, !other)
    };
    // SAFETY: two unaligned 32-byte loads from a reference to exactly 64 bytes.
    let (a, b) = unsafe {
        (
            _mm256_loadu_si256(block.as_ptr().cast::<__m256i>()),
            _mm256_loadu_si256(block.as_ptr().add(32).cast::<__m256i>()),
        )
    };
    let (da, pa) = half(a);
    let (db, pb) = half(b);
    (
        u64::from(da) | u64::from(db) << 32,
        u64::from(pa) | u64::from(pb) << 32,
    )
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
#[allow(unsafe_code)]
fn classify16(chunk: &[u8; 16]) -> (u16, u16) {
    use std::arch::wasm32::*;
    // SAFETY: an unaligned 16-byte load (v128.load allows any alignment) from a reference to
    // exactly 16 bytes.
    let v = unsafe { v128_load(chunk.as_ptr().cast::<v128>()) };
    let digit = u8x16_lt(u8x16_sub(v, u8x16_splat(b'0')), u8x16_splat(10));
    let sep = v128_or(
        v128_or(
            u8x16_eq(v, u8x16_splat(b' ')),
            u8x16_eq(v, u8x16_splat(b'-')),
        ),
        v128_or(
            v128_or(
                u8x16_eq(v, u8x16_splat(b'+')),
                u8x16_eq(v, u8x16_splat(b'%')),
            ),
            u8x16_eq(v128_or(v, u8x16_splat(0x20)), u8x16_splat(b'd')),
        ),
    );
    (u8x16_bitmask(digit), u8x16_bitmask(v128_or(digit, sep)))
}

#[cfg(not(any(
    target_arch = "x86_64",
    all(target_arch = "wasm32", target_feature = "simd128")
)))]
#[inline(always)]
fn classify16(chunk: &[u8; 16]) -> (u16, u16) {
    classify16_bytewise(chunk)
}

/// The same classification a byte at a time, for targets without SIMD (and to test the SIMD ones
/// against).
#[cfg_attr(
    all(
        not(test),
        any(
            target_arch = "x86_64",
            all(target_arch = "wasm32", target_feature = "simd128")
        )
    ),
    allow(dead_code)
)]
#[inline(always)]
fn classify16_bytewise(chunk: &[u8; 16]) -> (u16, u16) {
    let mut d = 0u16;
    let mut s = 0u16;
    for (k, &b) in chunk.iter().enumerate() {
        let is_digit = b.wrapping_sub(b'0') < 10;
        let is_sep = matches!(b, b' ' | b'-' | b'+' | b'%') || (b | 0x20) == b'd';
        d |= u16::from(is_digit) << k;
        s |= u16::from(is_digit | is_sep) << k;
    }
    (d, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain definition: a PAN may start at `i` when 4 digits and 12 digit-or-separator bytes
    /// start there.
    fn could_start(buf: &[u8], i: usize) -> bool {
        let pan_byte = |b: &u8| b.is_ascii_digit() || b" -+%dD".contains(b);
        buf.get(i..i + FIRST_GROUP)
            .is_some_and(|g| g.iter().all(u8::is_ascii_digit))
            && buf.get(i..i + SPAN).is_some_and(|s| s.iter().all(pan_byte))
    }

    fn check_against_definition(buf: &[u8]) {
        let mut from = 0;
        while from < buf.len() {
            let c = next_candidate(buf, from);
            assert!(c >= from);
            for i in from..c {
                assert!(
                    !could_start(buf, i),
                    "skipped a possible start at {i} in {buf:?}"
                );
            }
            if c + BLOCK <= buf.len() {
                assert!(could_start(buf, c), "{c} handed over in {buf:?}");
            }
            from = c + 1;
        }
    }

    #[test]
    fn no_possible_pan_start_is_ever_passed_over() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let alphabet = b"0123456789 -+%dDx.\":,T";
        for len in [0, 1, 63, 64, 65, 117, 128, 300, 1000] {
            for _ in 0..200 {
                let buf: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // Mostly digits, so long runs are common.
                        let k = (seed % 40) as usize;
                        alphabet.get(k).copied().unwrap_or(b'4')
                    })
                    .collect();
                check_against_definition(&buf);
            }
        }
    }

    #[test]
    fn every_byte_value_is_classified_as_the_definition_says() {
        for first in (0..=255u8).step_by(16) {
            let chunk: [u8; 16] = std::array::from_fn(|k| first.wrapping_add(k as u8));
            let (d, s) = classify16(&chunk);
            assert_eq!((d, s), classify16_bytewise(&chunk));
            for (k, b) in chunk.iter().enumerate() {
                assert_eq!(d >> k & 1 == 1, b.is_ascii_digit(), "byte {b}");
                let pan_byte = b.is_ascii_digit() || b" -+%dD".contains(b);
                assert_eq!(s >> k & 1 == 1, pan_byte, "byte {b}");
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_classifies_every_byte_value_as_the_definition_says() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("no AVX2 on this CPU: the SSE2 path is the one in use");
            return;
        }
        for first in [0u8, 64, 128, 192] {
            let block: [u8; BLOCK] = std::array::from_fn(|k| first.wrapping_add(k as u8));
            #[allow(unsafe_code)]
            // SAFETY: AVX2 is present, checked above.
            let got = unsafe { classify_avx2(&block) };
            let want = block
                .chunks_exact(16)
                .enumerate()
                .fold((0u64, 0u64), |(d, s), (i, c)| {
                    let (cd, cs) = classify16_bytewise(c.try_into().unwrap());
                    (d | u64::from(cd) << (16 * i), s | u64::from(cs) << (16 * i))
                });
            assert_eq!(got, want, "bytes {first}..{}", first as usize + 63);
        }
    }

    #[test]
    fn json_records_without_long_digit_runs_are_passed_over_whole() {
        let rec = br#"{"order_id":100000123,"amount":{"value":41999,"currency":"EUR"},"created":"2026-11-25T09:38:00Z","qty":3},"#;
        let buf: Vec<u8> = rec.iter().copied().cycle().take(4096).collect();
        assert!(next_candidate(&buf, 0) + BLOCK > buf.len());
    }

    #[test]
    fn a_card_number_in_a_block_is_handed_over_where_it_starts() {
        let mut buf = vec![b'x'; 200];
        buf[70..89].copy_from_slice(b"4111 1111 1111 1111");
        assert_eq!(next_candidate(&buf, 0), 70);
        let mut buf = vec![b'x'; 200];
        buf[50..66].copy_from_slice(b"4111111111111111");
        assert_eq!(next_candidate(&buf, 0), 50);
        // A PAN starting in the last 11 bytes of a block is judged in the next one.
        let mut buf = vec![b'x'; 200];
        buf[60..76].copy_from_slice(b"4111111111111111");
        assert_eq!(next_candidate(&buf, 0), 60);
    }
}
