//! `export --format ocsf`: the audit trail as OCSF records, for SIEMs and security data lakes. It
//! reads its logs (or standard input, so that a log shipper can pipe through it) as a stream,
//! verifies every chain as `verify-audit` does, and writes one JSON line per record. An event that
//! fails verification is not exported: it is reported on standard error, and the exit status is 1.

use std::io::{self, Write};
use std::process::ExitCode;

use pci_mesh_guard::audit::ocsf;
use pci_mesh_guard::audit::verify::{event_text, Verifier};

use super::{for_each_line, keyring_from_env, read_key_file, usage};

pub fn run(rest: &[String]) -> Result<ExitCode, String> {
    let (mut keys, mut partial, mut files) = (keyring_from_env()?, false, vec![]);
    let mut format = None;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--format" => format = Some(it.next().ok_or("--format needs a value")?.clone()),
            "--key-file" => {
                let f = it.next().ok_or("--key-file needs a value")?;
                read_key_file(&mut keys, f)?;
            }
            "--partial" => partial = true,
            s if s.starts_with("--") => return Err(format!("unknown option {s}\n{}", usage())),
            s => files.push(s.to_string()),
        }
    }
    match format.as_deref() {
        Some("ocsf") => {}
        Some(other) => return Err(format!("--format {other}: only ocsf is supported")),
        None => return Err(format!("export needs --format ocsf\n{}", usage())),
    }
    if files.is_empty() {
        files.push("-".into());
    }
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut verifier = Verifier::new(&keys, partial);
    let (mut records, mut written_err) = (0u64, None);
    for file in &files {
        for_each_line(file, |line| {
            let before = verifier.problems();
            let access = verifier.feed(line).is_some_and(|s| s.event() == "access");
            // Only what verified is exported: a record points at a seal that holds.
            if !access || verifier.problems() != before {
                return;
            }
            let Some(event) = event_text(line).and_then(|t| serde_json::from_str(t).ok()) else {
                return;
            };
            for record in ocsf::records(&event) {
                let written = serde_json::to_writer(&mut out, &record)
                    .map_err(io::Error::from)
                    .and_then(|()| out.write_all(b"\n"));
                if let Err(e) = written {
                    written_err.get_or_insert(e);
                }
                records += 1;
            }
        })?;
    }
    out.flush().map_err(|e| format!("standard output: {e}"))?;
    if let Some(e) = written_err {
        return Err(format!("standard output: {e}"));
    }
    let report = verifier.finish();
    for p in &report.problems {
        eprintln!("line {}: {}: {}", p.line, p.kind, p.message);
    }
    eprintln!(
        "{} events in {} chains, {records} OCSF records, {} problems",
        report.events,
        report.chains.len(),
        report.problems.len()
    );
    Ok(if report.problems.is_empty() && report.events > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
