//! The native command-line tool: the filter's own engine over files and streams.
//!
//!   pci-mesh-guard scan [OPTIONS] [FILE...]     report where PANs are (never printing one)
//!   pci-mesh-guard redact [OPTIONS] [FILE...]   write the input with PANs masked
//!   pci-mesh-guard check-config FILE            validate a plugin configuration
//!   pci-mesh-guard lint FILE                    the policy linter's findings
//!   pci-mesh-guard verify-audit [FILE...]       check the audit trail's chains
//!   pci-mesh-guard evidence LOG...              the data-flow diagram and scope from audit logs
//!
//! Files are streamed through the same redactor that guards the mesh, in 64 KiB reads.

use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;

use pci_mesh_guard::config::Policy;
use pci_mesh_guard::pan::{Counts, Masking, Options, Pattern, Redactor, ALL_BRANDS};

mod export;
mod verify;

use verify::{keyring_from_env, read_key_file, verify_audit};

// The evidence needs the native-only SVG renderer.
#[cfg(not(target_arch = "wasm32"))]
mod evidence;

const USAGE_TEXT: &str = "usage:
  pci-mesh-guard scan [OPTIONS] [FILE...]      report PANs found (exit 1 if any, 0 if none)
  pci-mesh-guard redact [OPTIONS] [FILE...]    write the input with PANs masked to stdout
  pci-mesh-guard check-config FILE             validate a plugin configuration (exit 0 if valid)
  pci-mesh-guard lint FILE                     list policy findings (exit 0 if none, 1 if any)
  pci-mesh-guard verify-audit [--key-file F]... [--partial] [FILE...]
                                               check audit chains in Envoy logs or JSON lines
                                               (exit 0 if intact, 1 if not); each chain's key, by
                                               the kid its events name, comes from the keyring:
                                               PCI_MESH_GUARD_AUDIT_KEY (and _KEY_ID) and every
                                               --key-file (lines `KID KEY`, or a key alone);
                                               --partial accepts chains that start mid-way;
                                               --until TS (UTC, or now) ends the period the
                                               files cover: they are one trail, and a chain
                                               cut before TS is reported `truncated`
  pci-mesh-guard export --format ocsf [--key-file F]... [--partial] [FILE...]
                                               verify as verify-audit does and write each
                                               access event as an OCSF 1.1.0 HTTP Activity
                                               record (JSON lines), with a Detection Finding for
                                               card numbers passed in clear on a denial under
                                               dry_run; events that fail verification are left
                                               out and reported (exit 1)
{EVIDENCE}
options:
  --config FILE      take masking settings and patterns from a plugin configuration's `redaction`
  --keep-first N     leading digits left visible (default 0, at most 8)
  --keep-last N      trailing digits left visible (default 4, at most 4)
  --mask-char C      the character replacing hidden digits (default *)
  --json             the input is JSON: PANs written as bare numbers are masked with 9s
  --in-place         (redact) rewrite each FILE instead of writing to stdout
Without FILE, standard input is read. Exit status 2 means an error.";

/// The usage text, with the `evidence` command's part.
fn usage() -> String {
    #[cfg(not(target_arch = "wasm32"))]
    let evidence = evidence::USAGE;
    #[cfg(target_arch = "wasm32")]
    let evidence = "  (evidence: native builds only)";
    USAGE_TEXT.replace("{EVIDENCE}", evidence)
}

struct Args {
    command: String,
    files: Vec<String>,
    opts: Options,
    patterns: Arc<[Pattern]>,
    in_place: bool,
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pci-mesh-guard: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode, String> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = argv.first().cloned() else {
        return Err(usage());
    };
    if command == "-h" || command == "--help" {
        println!("{}", usage());
        return Ok(ExitCode::SUCCESS);
    }
    #[cfg(not(target_arch = "wasm32"))]
    if command == "evidence" {
        return evidence::run(&argv[1..]);
    }
    if command == "verify-audit" {
        return verify_audit(&argv[1..]);
    }
    if command == "export" {
        return export::run(&argv[1..]);
    }
    if command == "lint" {
        let [_, file] = argv.as_slice() else {
            return Err(usage());
        };
        let text = fs::read(file).map_err(|e| format!("{file}: {e}"))?;
        // Lint what the configuration says even when it asks for strict mode.
        let policy = Policy::parse_lenient(&text).map_err(|e| format!("{file}: {e}"))?;
        for f in &policy.findings {
            println!("{file}: {}: [{}] {}", f.path, f.code, f.message);
        }
        println!("{file}: {} finding(s)", policy.findings.len());
        return Ok(if policy.findings.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    if command == "check-config" {
        let [_, file] = argv.as_slice() else {
            return Err(usage());
        };
        let text = fs::read(file).map_err(|e| format!("{file}: {e}"))?;
        return match Policy::parse(&text) {
            Ok(p) => {
                println!(
                    "{file}: valid (mode {}, {} rules, {} patterns)",
                    p.mode.as_str(),
                    p.authorizer.rules.len(),
                    p.redaction.patterns.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => Err(format!("{file}: {e}")),
        };
    }
    let args = parse(command, &argv[1..])?;
    match args.command.as_str() {
        "scan" => scan(&args),
        "redact" => redact(&args),
        other => Err(format!("unknown command {other:?}\n{}", usage())),
    }
}

fn parse(command: String, rest: &[String]) -> Result<Args, String> {
    let mut masking = Masking::default();
    let mut patterns: Arc<[Pattern]> = Vec::new().into();
    let (mut json, mut in_place, mut files) = (false, false, vec![]);
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--config" => {
                let file = value("--config")?;
                let text = fs::read(&file).map_err(|e| format!("{file}: {e}"))?;
                let policy = Policy::parse(&text).map_err(|e| format!("{file}: {e}"))?;
                masking = policy.redaction.masking;
                patterns = policy.redaction.patterns.clone();
            }
            "--keep-first" => masking.keep_first = number(&value("--keep-first")?, 8)?,
            "--keep-last" => masking.keep_last = number(&value("--keep-last")?, 4)?,
            "--mask-char" => {
                masking.mask_char = match value("--mask-char")?.as_bytes() {
                    [c] if c.is_ascii_graphic() && !c.is_ascii_digit() => *c,
                    _ => {
                        return Err("--mask-char: one printable ASCII character, not a digit".into())
                    }
                }
            }
            "--json" => json = true,
            "--in-place" => in_place = true,
            s if s.starts_with("--") => return Err(format!("unknown option {s}\n{}", usage())),
            s => files.push(s.to_string()),
        }
    }
    if in_place && (command != "redact" || files.is_empty()) {
        return Err("--in-place goes with redact and at least one FILE".into());
    }
    Ok(Args {
        command,
        files,
        opts: Options {
            masking,
            mask: true,
            json,
        },
        patterns,
        in_place,
    })
}

fn number(s: &str, max: u8) -> Result<u8, String> {
    s.parse::<u8>()
        .ok()
        .filter(|n| *n <= max)
        .ok_or(format!("{s:?}: a number from 0 to {max}"))
}

/// Streams `input` through a redactor, handing each released piece of output to `out`.
fn stream(
    args: &Args,
    mut input: impl Read,
    mut out: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<Counts> {
    let mut r = Redactor::new(args.opts, args.patterns.clone(), true);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out(r.push(buf.get(..n).unwrap_or(&[])))?;
    }
    out(r.finish())?;
    Ok(*r.counts())
}

/// Calls `each` with every line of `file` (`-`: standard input), read as a stream: one line is
/// held at a time, however long the file. A line that is not UTF-8 is an error naming it.
fn for_each_line(file: &str, mut each: impl FnMut(&str)) -> Result<(), String> {
    let mut reader = io::BufReader::with_capacity(1 << 16, open(file)?);
    let (mut buf, mut n) = (Vec::new(), 0usize);
    loop {
        buf.clear();
        let read = io::BufRead::read_until(&mut reader, b'\n', &mut buf)
            .map_err(|e| format!("{file}: {e}"))?;
        if read == 0 {
            return Ok(());
        }
        n += 1;
        let line = std::str::from_utf8(&buf)
            .map_err(|_| format!("{file}:{n}: not UTF-8"))?
            .trim_end_matches(['\n', '\r']);
        each(line);
    }
}

fn open(file: &str) -> Result<Box<dyn Read>, String> {
    if file == "-" {
        return Ok(Box::new(io::stdin().lock()));
    }
    fs::File::open(file)
        .map(|f| Box::new(f) as Box<dyn Read>)
        .map_err(|e| format!("{file}: {e}"))
}

fn inputs(args: &Args) -> Vec<String> {
    if args.files.is_empty() {
        vec!["-".into()]
    } else {
        args.files.clone()
    }
}

fn redact(args: &Args) -> Result<ExitCode, String> {
    for file in inputs(args) {
        let counts = if args.in_place {
            let tmp = format!("{file}.pci-mesh-guard.tmp");
            let mut w = BufWriter::new(fs::File::create(&tmp).map_err(|e| format!("{tmp}: {e}"))?);
            let counts = stream(args, open(&file)?, |b| w.write_all(b))
                .and_then(|c| w.flush().map(|_| c))
                .map_err(|e| format!("{file}: {e}"))?;
            drop(w);
            fs::rename(&tmp, &file).map_err(|e| format!("{file}: {e}"))?;
            counts
        } else {
            let stdout = io::stdout();
            let mut w = BufWriter::new(stdout.lock());
            stream(args, open(&file)?, |b| w.write_all(b))
                .and_then(|c| w.flush().map(|_| c))
                .map_err(|e| format!("{file}: {e}"))?
        };
        eprintln!("{file}: {}", summary(&counts));
    }
    Ok(ExitCode::SUCCESS)
}

/// Reports each masked stretch by line and column, as masked text. Output and input have the same
/// length and order, so a byte that changed at offset k marks a PAN (or pattern match) there; the
/// input is kept only until its output has been compared.
fn scan(args: &Args) -> Result<ExitCode, String> {
    let mut any = false;
    for file in inputs(args) {
        let mut pending: Vec<u8> = Vec::new();
        let mut report = Report::new(&file);
        let mut input = open(&file)?;
        let mut r = Redactor::new(args.opts, args.patterns.clone(), true);
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = input.read(&mut buf).map_err(|e| format!("{file}: {e}"))?;
            let chunk = buf.get(..n).unwrap_or(&[]);
            pending.extend_from_slice(chunk);
            let out = if n == 0 { r.finish() } else { r.push(chunk) };
            for (a, b) in pending.iter().zip(out) {
                report.byte(*a, *b);
            }
            let done = out.len().min(pending.len());
            pending.drain(..done);
            if n == 0 {
                break;
            }
        }
        report.flush();
        let counts = r.counts();
        println!("{file}: {}", summary(counts));
        any |= counts.found > 0 || counts.patterns > 0;
    }
    Ok(if any {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Turns (input byte, output byte) pairs into `file:line:col: masked excerpt` lines.
struct Report<'a> {
    file: &'a str,
    line: usize,
    col: usize,
    /// The current changed stretch: where it started, its masked bytes, and how many unchanged
    /// bytes end it so far.
    start: Option<(usize, usize)>,
    excerpt: Vec<u8>,
    unchanged: usize,
}

impl<'a> Report<'a> {
    fn new(file: &'a str) -> Report<'a> {
        Report {
            file,
            line: 1,
            col: 1,
            start: None,
            excerpt: Vec::new(),
            unchanged: 0,
        }
    }

    fn byte(&mut self, input: u8, output: u8) {
        if input != output {
            if self.start.is_none() {
                self.start = Some((self.line, self.col));
            }
            self.excerpt.push(output);
            self.unchanged = 0;
        } else if self.start.is_some() {
            self.excerpt.push(output);
            self.unchanged += 1;
            // Separators of a grouped PAN are unchanged bytes inside it; a few more end it.
            if self.unchanged >= 8 || output == b'\n' {
                self.flush();
            }
        }
        if output == b'\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
    }

    fn flush(&mut self) {
        if let Some((line, col)) = self.start.take() {
            // The unchanged bytes after the last change: kept digits still belong to the PAN.
            let tail = self.excerpt.len() - self.unchanged;
            let kept = self.excerpt.get(tail..).unwrap_or(&[]);
            let digits_from = |k: usize| {
                kept.get(k..)
                    .map_or(0, |r| r.iter().take_while(|b| b.is_ascii_digit()).count())
            };
            let sep = if kept.starts_with(b"%20") || kept.starts_with(b"%2D") {
                3
            } else {
                usize::from(matches!(kept.first(), Some(b' ' | b'-' | b'+')))
            };
            let keep = tail
                + match (digits_from(0), digits_from(sep)) {
                    (0, 0) => 0,
                    (0, d) => sep + d,
                    (d, _) => d,
                };
            let text = String::from_utf8_lossy(self.excerpt.get(..keep).unwrap_or(&[]));
            println!("{}:{line}:{col}: {text}", self.file);
        }
        self.excerpt.clear();
        self.unchanged = 0;
    }
}

fn summary(c: &Counts) -> String {
    let brands: Vec<String> = ALL_BRANDS
        .iter()
        .zip(c.by_brand)
        .filter(|(_, n)| *n > 0)
        .map(|(b, n)| format!("{} {n}", b.as_str()))
        .collect();
    let mut s = format!("{} PANs", c.found);
    if !brands.is_empty() {
        s.push_str(&format!(" ({})", brands.join(", ")));
    }
    if c.patterns > 0 {
        s.push_str(&format!(", {} pattern matches", c.patterns));
    }
    s
}
