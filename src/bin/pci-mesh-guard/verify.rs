//! `verify-audit`, and the keyring every command that verifies takes: `--key-file` files and the
//! environment's key.

use std::fs;
use std::process::ExitCode;

use pci_mesh_guard::audit::chain;
use pci_mesh_guard::audit::verify::Keyring;

use super::{for_each_line, usage};

/// The keyring: the key in `PCI_MESH_GUARD_AUDIT_KEY` (under `PCI_MESH_GUARD_AUDIT_KEY_ID`, or
/// its derived id), if set.
pub fn keyring_from_env() -> Result<Keyring, String> {
    let mut ring = Keyring::default();
    if let Ok(key) = std::env::var(chain::KEY_ENV) {
        match std::env::var(chain::KEY_ID_ENV) {
            Ok(kid) => {
                if let Some(why) = chain::kid_problem(&kid) {
                    return Err(format!("{}: {why}", chain::KEY_ID_ENV));
                }
                ring.add(kid, key.into_bytes());
            }
            Err(_) => ring.add(chain::derived_kid(key.as_bytes()), key.into_bytes()),
        }
    }
    Ok(ring)
}

/// Adds the keys of keyring file `f` (`KID KEY` lines, or a key alone) to `ring`.
pub fn read_key_file(ring: &mut Keyring, f: &str) -> Result<(), String> {
    let text = fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?;
    ring.add_file_text(&text).map_err(|e| format!("{f}: {e}"))
}

pub fn verify_audit(rest: &[String]) -> Result<ExitCode, String> {
    use pci_mesh_guard::audit::verify::Verifier;
    let (mut keys, mut partial, mut files) = (keyring_from_env()?, false, vec![]);
    let mut until = None;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--key-file" => {
                let f = it.next().ok_or("--key-file needs a value")?;
                read_key_file(&mut keys, f)?;
            }
            "--partial" => partial = true,
            "--until" => {
                let ts = it.next().ok_or("--until needs a value")?;
                until = Some(period_end(ts)?);
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}\n{}", usage())),
            s => files.push(s.to_string()),
        }
    }
    if files.is_empty() {
        files.push("-".into());
    }
    // With the period's end, the files are one trail: a checkpoint in one log vouches for a
    // chain in another. Without it, each file is verified alone.
    let groups: Vec<Vec<String>> = match until {
        Some(_) => vec![files],
        None => files.into_iter().map(|f| vec![f]).collect(),
    };
    let mut intact = true;
    for group in groups {
        let mut verifier = Verifier::new(&keys, partial);
        if let Some(t) = until {
            verifier = verifier.until(t);
        }
        // The first line number of each file, as the verifier counts lines.
        let mut starts = Vec::with_capacity(group.len());
        let mut lines = 0usize;
        for file in &group {
            starts.push((lines, file.as_str()));
            for_each_line(file, |line| {
                lines += 1;
                verifier.feed(line);
            })?;
        }
        let report = verifier.finish();
        for p in &report.problems {
            let (first, file) = starts
                .iter()
                .rev()
                .find(|(first, _)| *first < p.line)
                .copied()
                .unwrap_or((0, "-"));
            println!("{file}:{}: {}: {}", p.line - first, p.kind, p.message);
        }
        println!(
            "{}: {} events in {} chains, {} problems",
            group.join(" "),
            report.events,
            report.chains.len(),
            report.problems.len()
        );
        intact &= report.problems.is_empty() && report.events > 0;
    }
    Ok(if intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The end of the period a trail covers: an RFC 3339 UTC time (`2026-12-07T00:00:00Z`, with or
/// without milliseconds) or `now`, as milliseconds since the epoch.
fn period_end(ts: &str) -> Result<i64, String> {
    if ts == "now" {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| format!("--until now: {e}"))?;
        return Ok(now.as_millis() as i64);
    }
    pci_mesh_guard::audit::parse_rfc3339_millis(ts)
        .ok_or_else(|| format!("--until {ts:?}: not a UTC time like 2026-12-07T00:00:00Z (or now)"))
}
