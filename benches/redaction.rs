//! Throughput of the PAN redactor against a naive baseline and a byte-copy floor, on four inputs.
//! Each input is about 1 MiB, fed in 64 KiB chunks as a proxy would hand a body over.
//! `scripts/bench.sh` runs this and turns the medians into the README's table.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pci_mesh_guard::pan::{luhn_valid, Masking, Options, Pattern, Redactor};

const SIZE: usize = 1 << 20;
const CHUNK: usize = 64 << 10;

fn repeat_to_size(mut f: impl FnMut(usize) -> String) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIZE + 1024);
    let mut i = 0;
    while out.len() < SIZE {
        out.extend_from_slice(f(i).as_bytes());
        i += 1;
    }
    out.truncate(SIZE);
    out
}

/// JSON records without a single digit.
fn json_no_digits() -> Vec<u8> {
    repeat_to_size(|_| {
        r#"{"name":"alice example","email":"alice@example.com","status":"active","tags":["gold","eu"],"note":"lorem ipsum dolor sit amet"},"#.to_string()
    })
}

/// JSON records with typical ids, timestamps, amounts and quantities.
fn json_ids_amounts() -> Vec<u8> {
    repeat_to_size(|i| {
        format!(
            r#"{{"id":"ord_20261125_{i:06}","customer":{},"amount":{}.{:02},"currency":"EUR","ts":{},"items":[{{"sku":"A-{}","qty":{},"price":19.99}}]}},"#,
            100_000 + i * 7,
            i % 5000,
            i % 100,
            1_732_492_923_045u64 + i as u64,
            1000 + i % 9000,
            1 + i % 5
        )
    })
}

/// CSV made almost only of digits.
fn csv_digits() -> Vec<u8> {
    repeat_to_size(|i| {
        format!(
            "{},{},{}.{:02},{},{},{}\n",
            1_732_492_923_045u64 + i as u64,
            20261125 + i % 30,
            i % 1000,
            i % 100,
            (i * 7919) % 1_000_000,
            i % 17,
            10_000_000 + i
        )
    })
}

/// Prose with one card number per KiB.
fn text_pan_per_kib() -> Vec<u8> {
    repeat_to_size(|i| {
        let mut s = format!("Customer {i} paid with card 4111 1111 1111 1111 on the terminal; ");
        while s.len() < 1023 {
            s.push_str("the order shipped the next morning without further notice. ");
        }
        s.truncate(1023);
        s.push('\n');
        s
    })
}

/// The naive approach: one regex over runs of digits and separators, then Luhn on each match.
fn naive(re: &regex::bytes::Regex, buf: &mut [u8]) -> usize {
    let mut found = 0;
    let spans: Vec<(usize, usize)> = re.find_iter(buf).map(|m| (m.start(), m.end())).collect();
    for (s, e) in spans {
        let digits: Vec<u8> = buf[s..e]
            .iter()
            .copied()
            .filter(u8::is_ascii_digit)
            .collect();
        if (12..=19).contains(&digits.len()) && luhn_valid(&digits) {
            found += 1;
            let mut n = 0;
            for b in &mut buf[s..e] {
                if b.is_ascii_digit() {
                    if n + 4 < digits.len() {
                        *b = b'*';
                    }
                    n += 1;
                }
            }
        }
    }
    found
}

fn bench(c: &mut Criterion) {
    let inputs = [
        ("json_no_digits", json_no_digits()),
        ("json_ids_amounts", json_ids_amounts()),
        ("csv_digits", csv_digits()),
        ("text_pan_per_kib", text_pan_per_kib()),
    ];
    let opts = Options {
        masking: Masking::default(),
        mask: true,
        json: false,
    };
    let patterns: Arc<[Pattern]> = Vec::new().into();
    let naive_re = regex::bytes::Regex::new(r"[0-9][0-9 -]{10,}[0-9]").unwrap();
    for (name, input) in &inputs {
        let mut g = c.benchmark_group(*name);
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function("redactor", |b| {
            b.iter(|| {
                let mut r = Redactor::new(opts, patterns.clone(), true);
                let mut out = 0usize;
                for chunk in input.chunks(CHUNK) {
                    out += black_box(r.push(chunk)).len();
                }
                out += r.finish().len();
                out
            })
        });
        g.bench_function("naive_regex_luhn", |b| {
            let mut buf = input.clone();
            b.iter(|| {
                buf.copy_from_slice(input);
                naive(&naive_re, black_box(&mut buf))
            })
        });
        g.bench_function("byte_copy_floor", |b| {
            let mut buf = vec![0u8; CHUNK];
            b.iter(|| {
                let mut n = 0;
                for chunk in input.chunks(CHUNK) {
                    let dst = &mut buf[..chunk.len()];
                    dst.copy_from_slice(black_box(chunk));
                    n += black_box(&*dst).len();
                }
                n
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
