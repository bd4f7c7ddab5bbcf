//! The scanner, one-shot: what counts as a PAN per brand and format, what never does, and how it is
//! masked.

use super::*;

fn opts() -> Options {
    Options {
        masking: Masking::default(),
        mask: true,
        json: false,
    }
}

/// Runs the scanner over the whole input at once; returns the output and the brands found.
fn run_with(input: &str, o: Options) -> (String, Vec<Brand>) {
    let mut buf = input.as_bytes().to_vec();
    let mut brands = vec![];
    let settled = scan(&mut buf, 0, true, &o, &mut |f: Found| brands.push(f.brand));
    assert_eq!(settled, buf.len(), "at the end everything is settled");
    (String::from_utf8(buf).unwrap(), brands)
}

fn run(input: &str) -> (String, Vec<Brand>) {
    run_with(input, opts())
}

/// Appends the Luhn check digit to `body`.
pub(crate) fn with_check_digit(body: &str) -> String {
    for d in 0..10 {
        let s = format!("{body}{d}");
        if crate::pan::luhn_valid(s.as_bytes()) {
            return s;
        }
    }
    unreachable!()
}

#[test]
fn masks_contiguous_pans_of_every_brand_keeping_the_last_four() {
    let cases = [
        ("4111111111111111", Brand::Visa),
        ("4222222222222", Brand::Visa),
        ("4111111111111111110", Brand::Visa),
        ("5555555555554444", Brand::Mastercard),
        ("2720990000000007", Brand::Mastercard),
        ("378282246310005", Brand::Amex),
        ("6011000990139424", Brand::Discover),
        ("6221260000000000", Brand::Discover),
        ("3566002020360505", Brand::Jcb),
        ("30569309025904", Brand::Diners),
        ("6200000000000005", Brand::UnionPay),
        ("6759649826438453", Brand::Maestro),
        ("501800000009", Brand::Maestro),
    ];
    for (pan, brand) in cases {
        assert_eq!(
            crate::pan::classify(pan.as_bytes()),
            Some(brand),
            "{pan} is a test PAN"
        );
        let (out, found) = run(&format!("card {pan} end"));
        let masked = format!("{}{}", "*".repeat(pan.len() - 4), &pan[pan.len() - 4..]);
        assert_eq!(out, format!("card {masked} end"));
        assert_eq!(found, [brand]);
    }
}

#[test]
fn masks_pans_printed_in_groups_with_any_card_separator() {
    let cases = [
        ("4111 1111 1111 1111", "**** **** **** 1111"),
        ("4111-1111-1111-1111", "****-****-****-1111"),
        ("4111+1111+1111+1111", "****+****+****+1111"),
        ("4111%201111%201111%201111", "****%20****%20****%201111"),
        ("4111%2D1111%2d1111%2D1111", "****%2D****%2d****%2D1111"),
        ("3782 822463 10005", "**** ****** *0005"),
        ("3056 930902 5904", "**** ****** 5904"),
        ("4111 1111 1111 1111 110", "**** **** **** ***1 110"),
    ];
    for (input, want) in cases {
        assert_eq!(run(input).0, want, "{input}");
    }
}

#[test]
fn finds_pans_among_letters_and_punctuation() {
    let cases = [
        ("pan:4111111111111111;", "pan:************1111;"),
        (
            "%B4111111111111111^DOE/JOHN^2512101",
            "%B************1111^DOE/JOHN^2512101",
        ),
        (
            ";4111111111111111=25121010000?",
            ";************1111=25121010000?",
        ),
        ("\"4111111111111111\"", "\"************1111\""),
        ("x4111111111111111x", "x************1111x"),
    ];
    for (input, want) in cases {
        assert_eq!(run(input).0, want, "{input}");
    }
}

#[test]
fn a_pan_inside_a_longer_digit_run_is_not_a_pan() {
    for s in [
        "14111111111111111",
        "41111111111111111",
        "9999 4111111111111111 8",
        "411111111111111100000",
    ] {
        let (out, found) = run(s);
        if s.starts_with("9999 ") {
            assert_eq!(found.len(), 1, "{s}: the spaced-out run is its own group");
        } else {
            assert_eq!(out, s, "{s}");
            assert!(found.is_empty(), "{s}");
        }
    }
}

#[test]
fn group_sizes_follow_printed_cards() {
    // First group under 4 digits, or a later one under 3: not a PAN.
    for s in [
        "411 1111 1111 1111 1",
        "4111 11 1111 1111 11",
        "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",
    ] {
        assert_eq!(run(s).1, vec![], "{s}");
    }
    // Two separators in a row break the sequence.
    assert_eq!(run("4111  1111  1111  1111").1, vec![]);
    assert_eq!(run("4111--1111--1111--1111").1, vec![]);
}

#[test]
fn two_spaced_cards_in_a_row_are_both_masked() {
    let (out, found) = run("4111 1111 1111 1111 5555 5555 5555 4444");
    assert_eq!(out, "**** **** **** 1111 **** **** **** 4444");
    assert_eq!(found, [Brand::Visa, Brand::Mastercard]);
}

#[test]
fn does_not_flag_timestamps_ids_dates_prices_or_addresses() {
    let text = [
        r#"{"ts":1732492923045,"ts_us":1732492923045123,"ts_ns":1732492923045123456}"#,
        r#"{"created":"2026-11-25T00:42:03.045Z","date":"25/11/2026","time":"00:42:03"}"#,
        r#"{"order_id":"ord_20261125_000123","invoice":100234556,"sku":"SKU-1029-3847-5566"}"#,
        r#"{"price":1299.99,"total":"12,499.00","qty":3,"amounts":[10,20,30,40,50,60,70]}"#,
        "10.42.7.193 192.168.100.200 2001:db8::1 port 8443",
        "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
        "100 200 300 400 500 600 700",
        "tel +1 415 555 2671, 0044 20 7946 0958, (415) 555-2671",
    ];
    for t in text {
        let (out, found) = run(t);
        assert_eq!(found, vec![], "{t}");
        assert_eq!(out, t);
    }
}

#[test]
fn does_not_flag_luhn_failures_or_brandless_numbers() {
    for s in [
        "4111111111111112",
        "1234567812345670",
        "9111111111111111",
        "0000000000000000",
        "8888888888888888",
    ] {
        assert_eq!(run(s).1, vec![], "{s}");
    }
}

#[test]
fn does_not_flag_e164_phone_numbers() {
    let visa_like = with_check_digit("491511234567");
    assert!(crate::pan::classify(visa_like.as_bytes()).is_some());
    let phone = format!("call +{visa_like} now");
    assert_eq!(run(&phone).1, vec![]);
    // Without the plus it is indistinguishable from a card, and so is masked.
    assert_eq!(run(&visa_like).1, vec![Brand::Visa]);
    // A '+' between digit groups is a URL-encoded space, not a phone prefix.
    assert_eq!(run("4111+1111+1111+1111").1, vec![Brand::Visa]);
    // 16 digits are more than any phone number has.
    assert_eq!(run("+4111111111111111").1, vec![Brand::Visa]);
}

#[test]
fn does_not_flag_digits_inside_uuids() {
    let tail = with_check_digit("60111111111");
    assert_eq!(crate::pan::classify(tail.as_bytes()), Some(Brand::Maestro));
    for uuid in [
        format!("123e4567-e89b-42d3-a456-{tail}"),
        "51051051-0510-5100-a456-426614174000".to_string(),
        format!("id={{12345678-1234-5234-8234-{tail}}}"),
    ] {
        let (out, found) = run(&uuid);
        assert_eq!(found, vec![], "{uuid}");
        assert_eq!(out, uuid);
    }
    // The same digits outside a UUID are a card number.
    assert_eq!(run(&format!("ref {tail} x")).1, vec![Brand::Maestro]);
}

#[test]
fn does_not_flag_digits_inside_hashes_and_keys() {
    // A SHA-256 in hex whose middle happens to spell a Luhn-valid Visa number.
    let hash = "9f2c4111111111111111a7e0c3b5d8e1f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2";
    assert_eq!(hash.len(), 64);
    let (out, found) = run(&format!(r#"{{"sha256":"{hash}"}}"#));
    assert_eq!(found, vec![], "inside a 64-character hex string");
    assert!(out.contains(hash));
    // Short hex context is still text: track data and ids keep their PANs found.
    assert_eq!(run("%B4111111111111111^DOE").1, vec![Brand::Visa]);
    assert_eq!(run("abc4111111111111111def").1, vec![Brand::Visa]);
}

#[test]
fn keep_first_and_keep_last_and_mask_char_are_honoured() {
    let o = Options {
        masking: Masking {
            keep_first: 6,
            keep_last: 4,
            mask_char: b'#',
        },
        ..opts()
    };
    assert_eq!(run_with("4111 1111 1111 1111", o).0, "4111 11## #### 1111");
    let o = Options {
        masking: Masking {
            keep_first: 0,
            keep_last: 0,
            mask_char: b'X',
        },
        ..opts()
    };
    assert_eq!(run_with("378282246310005", o).0, "XXXXXXXXXXXXXXX");
}

#[test]
fn bare_json_numbers_are_masked_with_nines_and_stay_valid_json() {
    let o = Options {
        json: true,
        ..opts()
    };
    let input = r#"{"pan":4111111111111111,"list":[ 5555555555554444],"s":"4111111111111111"}"#;
    let (out, found) = run_with(input, o);
    assert_eq!(found.len(), 3);
    assert_eq!(
        out,
        r#"{"pan":9999999999991111,"list":[ 9999999999994444],"s":"************1111"}"#
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["pan"].is_u64());
    // The nines never form a card number, even with leading digits kept.
    let o = Options {
        json: true,
        masking: Masking {
            keep_first: 6,
            keep_last: 4,
            mask_char: b'*',
        },
        ..opts()
    };
    for pan in ["4111111111111111", "5555555555554444", "6011000990139424"] {
        let (out, _) = run_with(&format!(r#"{{"n":{pan}}}"#), o);
        let digits: String = out.chars().filter(char::is_ascii_digit).collect();
        assert_eq!(&digits[..6], &pan[..6]);
        assert_eq!(crate::pan::classify(digits.as_bytes()), None, "{out}");
        assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok());
    }
}

#[test]
fn a_masked_json_number_never_forms_a_card_number_with_the_groups_after_it() {
    // With nines, the kept "6" and "05" and the group after it would read "6999999999999905 428",
    // a valid 19-digit card number.
    let o = Options {
        json: true,
        masking: Masking {
            keep_first: 1,
            keep_last: 2,
            mask_char: b'*',
        },
        ..opts()
    };
    let (out, found) = run_with("6200000000000005 428", o);
    assert_eq!(found.len(), 1);
    assert_ne!(out, "6999999999999905 428");
    let (again, refound) = run_with(&out, o);
    assert!(refound.is_empty(), "{out} holds a card number");
    assert_eq!(again, out);
}

#[test]
fn reporting_without_masking_leaves_bytes_alone() {
    let o = Options {
        mask: false,
        ..opts()
    };
    let (out, found) = run_with("a 4111 1111 1111 1111 b", o);
    assert_eq!(out, "a 4111 1111 1111 1111 b");
    assert_eq!(found, [Brand::Visa]);
}

#[test]
fn stops_at_a_group_that_may_continue_past_the_buffer() {
    let o = opts();
    let mut none = |_: Found| {};
    // A trailing group could still grow: settled up to its start.
    let mut buf = b"abc 4111 1111 1111 111".to_vec();
    assert_eq!(scan(&mut buf, 0, false, &o, &mut none), 4);
    // A trailing partial %20 separator.
    let mut buf = b"x 4111%2".to_vec();
    assert_eq!(scan(&mut buf, 0, false, &o, &mut none), 2);
    // A run already longer than any PAN is settled even though it goes on.
    let mut buf = b"x 12345678901234567890".to_vec();
    assert_eq!(scan(&mut buf, 0, false, &o, &mut none), buf.len());
    // No digits at the end: all settled.
    let mut buf = b"no digits here".to_vec();
    assert_eq!(scan(&mut buf, 0, false, &o, &mut none), buf.len());
}

#[test]
fn word_digit_test_matches_the_byte_test_for_every_byte_in_every_lane() {
    for b in 0..=255u8 {
        for lane in 0..8 {
            let mut w = [b'a'; 8];
            w[lane] = b;
            assert_eq!(
                word_has_digit(u64::from_le_bytes(w)),
                b.is_ascii_digit(),
                "byte {b:#x} lane {lane}"
            );
        }
    }
    assert_eq!(find_digit(b"abcdefghijklmnop7q", 0), Some(16));
    assert_eq!(find_digit(b"abcdefgh", 0), None);
    assert_eq!(find_digit(b"ab1", 5), None);
}

#[test]
fn digits_are_counted_a_word_at_a_time_as_byte_by_byte() {
    // Every byte value in every position of a word, beside digits and non-digits.
    for b in 0..=255u8 {
        for at in 0..8 {
            for fill in [b'0', b'9', b'/', b':', 0x00, 0xff, b'a'] {
                let mut w = [fill; 8];
                w[at] = b;
                let want = w.iter().filter(|c| c.is_ascii_digit()).count() as u32;
                assert_eq!(digits_in_word(u64::from_le_bytes(w)), want, "{w:?}");
            }
        }
    }
    // And whole buffers of every length around the word and check sizes.
    let text = b"id 4111-1111 x9/0:12345678901a".repeat(5);
    for len in 0..text.len() {
        let buf = &text[..len];
        let digits = buf.iter().filter(|c| c.is_ascii_digit()).count();
        for n in [1, 11, 12, 13, 40] {
            assert_eq!(has_digits(buf, n), digits >= n, "{len} {n}");
        }
    }
}
