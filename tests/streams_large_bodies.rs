//! Under real Envoy: a 256 MiB body streams through the filter, masked on the way, while the server
//! sidecar's resident memory grows by less than 16 MiB: the body is never buffered whole.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mesh::Mesh;
use pci_mesh_guard::pan::{redact_all, Counts, Masking, Options};
use sha2::{Digest, Sha256};

const TOTAL: usize = 256 << 20;
const BLOCK: usize = 1024;
/// Not a multiple of `BLOCK`, so that chunk edges cut PANs at ever different offsets.
const CHUNK: usize = (64 << 10) + 7;

/// One KiB of text with one card number in it, cut so that chunks split PANs at many offsets.
fn block(i: usize) -> Vec<u8> {
    let mut b = format!("{{\"seq\":{i},\"note\":\"pay with 4111 1111 1111 1111 today\",\"pad\":\"")
        .into_bytes();
    b.resize(BLOCK - 3, b'x');
    b.extend_from_slice(b"\"}\n");
    b
}

#[test]
fn a_256_mib_body_streams_with_bounded_envoy_memory() {
    let blocks = TOTAL / BLOCK;
    // What the backend must receive: every block redacted.
    let mut want = Sha256::new();
    let opts = Options {
        masking: Masking::default(),
        mask: true,
        json: false,
    };
    for i in 0..blocks {
        let mut b = block(i);
        redact_all(&mut b, &opts, &[], true, &mut Counts::default());
        want.update(&b);
    }
    let want = format!("{:x}", want.finalize());

    for envoy in mesh::envoys() {
        let mesh = Mesh::builder(&envoy, "large-body")
            .config(r#"{"authorization":{"rules":[{"name":"shop","namespaces":["shop"]}]}}"#)
            .up();
        // Warm up the filter's VM and buffers, then take the baseline.
        let warm: Vec<Vec<u8>> = (0..64).map(block).collect();
        mesh.send_chunked(
            "checkout",
            "POST",
            "/warm",
            &[],
            warm.into_iter(),
            Duration::ZERO,
        );
        std::thread::sleep(Duration::from_millis(300));
        let before = mesh.rss("server");

        let peak = Arc::new(AtomicU64::new(before));
        let stop = Arc::new(AtomicBool::new(false));
        let server_pid = mesh.pids().iter().find(|(n, _)| *n == "server").unwrap().1;
        let sampler = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(rss) = rss_of(server_pid) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let chunks = Chunks {
            next_block: 0,
            blocks,
            pending: Vec::new(),
        };
        let resp = mesh.send_chunked(
            "checkout",
            "POST",
            "/v1/upload",
            &[
                ("x-request-id", "large".into()),
                ("content-type", "text/plain".into()),
            ],
            chunks,
            Duration::ZERO,
        );
        stop.store(true, Ordering::Relaxed);
        sampler.join().unwrap();
        assert_eq!(resp.status, 200, "Envoy {}: {}", envoy, resp.text());
        let got = mesh
            .received()
            .into_iter()
            .find(|r| r["path"] == "/v1/upload")
            .expect("upload received");
        assert_eq!(got["body_bytes"], TOTAL);
        assert_eq!(
            got["body_sha256"], want,
            "Envoy {}: every block masked",
            envoy
        );
        let event = mesh.access_event("large");
        assert_eq!(event["pan"]["request_body"]["redacted"], blocks);
        let growth = peak.load(Ordering::Relaxed).saturating_sub(before);
        eprintln!(
            "Envoy {}: server sidecar RSS before {} KiB, peak growth {} KiB over a {} MiB body",
            envoy,
            before / 1024,
            growth / 1024,
            TOTAL >> 20
        );
        assert!(
            growth < 16 << 20,
            "Envoy {}: RSS grew by {growth} bytes",
            envoy
        );
    }
}

fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}

/// The body as chunks of `CHUNK` bytes, made as they are sent.
struct Chunks {
    next_block: usize,
    blocks: usize,
    pending: Vec<u8>,
}

impl Iterator for Chunks {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        while self.pending.len() < CHUNK && self.next_block < self.blocks {
            self.pending.extend_from_slice(&block(self.next_block));
            self.next_block += 1;
        }
        if self.pending.is_empty() {
            return None;
        }
        let n = CHUNK.min(self.pending.len());
        Some(self.pending.drain(..n).collect())
    }
}
