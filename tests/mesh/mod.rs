//! The end-to-end harness: starts the local mesh (backend, server sidecar with the filter, client
//! sidecar) as child processes of the test, under each supported Envoy, and tears it down again.
#![allow(dead_code)] // each test file uses a different part of the harness

pub mod http;

use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use http::{Request, Response};

/// The card numbers end-to-end tests send; none may ever show in a sidecar's log.
pub const TEST_PANS: &[&str] = &[
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011000990139424",
];

/// The digits of `line` with card separators between digits removed, so a PAN written in groups
/// (`4111 1111 ...`, `4111%201111...`) shows as its plain digits.
fn joined_digits(line: &str) -> String {
    let b = line.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let prev_digit = out.ends_with(|c: char| c.is_ascii_digit());
        let sep = match &b[i..] {
            [b' ' | b'-' | b'+', ..] => 1,
            [b'%', b'2', b'0' | b'D' | b'd', ..] => 3,
            _ => 0,
        };
        if prev_digit && sep > 0 && b.get(i + sep).is_some_and(u8::is_ascii_digit) {
            i += sep;
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

pub fn joined_digits_for_tests(line: &str) -> String {
    joined_digits(line)
}

/// Fails when a test PAN appears in a sidecar log or in the audit access log: neither Envoy nor
/// the filter may ever write one.
fn assert_no_pan_in_logs(mesh: &Mesh) {
    for name in ["server", "client", "audit"] {
        for (n, line) in mesh.log(name).lines().enumerate() {
            let digits = joined_digits(line);
            if let Some(pan) = TEST_PANS.iter().find(|p| digits.contains(*p)) {
                panic!(
                    "{name}.log line {}: a card number ending {} is in the log",
                    n + 1,
                    &pan[pan.len() - 4..]
                );
            }
        }
    }
}

/// Fails when an audit event in the server sidecar's log or its audit access log is not a JSON
/// object naming each key once at every level (RFC 8259: parsers disagree on which copy of a
/// repeated key they keep).
fn assert_events_name_each_key_once(mesh: &Mesh) {
    for name in ["server", "audit"] {
        for (n, line) in mesh.log(name).lines().enumerate() {
            if let Some(text) = pci_mesh_guard::audit::verify::event_text(line) {
                if let Err(e) = pci_mesh_guard::audit::json::parse_unique(text) {
                    panic!("{name}.log line {}: {e}: {text}", n + 1);
                }
            }
        }
    }
}

/// Istio's sidecar log flags, as pilot-agent passes them with the default injection values
/// (`global.proxy.logLevel: warning`, `global.proxy.componentLogLevel: "misc:error"`).
pub const ISTIO_LOG_FLAGS: &[&str] = &[
    "--log-level",
    "warning",
    "--component-log-level",
    "misc:error",
];

/// Runs the command-line tool's `verify-audit` over `file` with the test sidecars' audit key:
/// its exit code and what it printed.
pub fn verify_audit_cli(file: &std::path::Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pci-mesh-guard"))
        .arg("verify-audit")
        .arg(file)
        .env("PCI_MESH_GUARD_AUDIT_KEY", AUDIT_KEY)
        .output()
        .expect("run verify-audit");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The audit chain key the test sidecars get through their VM environment.
pub const AUDIT_KEY: &str = "e2e-audit-key-0123456789";

/// The key of the PAN tokens in the test sidecars' audit events.
pub const TOKEN_KEY: &str = "e2e-token-key-0123456789";

/// Envoy versions every end-to-end test runs against: the newest and the oldest supported.
pub const ENVOY_VERSIONS: &[&str] = &["1.40.0", "1.36.4"];

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The filter under test: `PMG_WASM` if set, else built once by this harness.
pub fn wasm() -> PathBuf {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        if let Ok(p) = std::env::var("PMG_WASM") {
            return PathBuf::from(p);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "--lib", "--target", "wasm32-wasip1"])
            .current_dir(root())
            .status()
            .expect("run cargo to build the filter");
        assert!(
            status.success(),
            "building the filter for wasm32-wasip1 failed"
        );
        root().join("target/wasm32-wasip1/release/pci_mesh_guard.wasm")
    })
    .clone()
}

/// The native build (`scripts/build-module.sh`): `PMG_MODULE` if set, else built once by this
/// harness into `target/module` (apart from `target/release`, which a default-feature build of
/// the library would overwrite with a `.so` that has no hooks).
pub fn native_module() -> PathBuf {
    static MODULE: OnceLock<PathBuf> = OnceLock::new();
    MODULE
        .get_or_init(|| {
            if let Ok(p) = std::env::var("PMG_MODULE") {
                return PathBuf::from(p);
            }
            let out = Command::new(root().join("scripts/build-module.sh"))
                .stderr(Stdio::inherit())
                .output()
                .expect("run scripts/build-module.sh");
            assert!(out.status.success(), "building the native module failed");
            let path = String::from_utf8_lossy(&out.stdout);
            PathBuf::from(path.lines().last().unwrap_or_default().trim())
        })
        .clone()
}

/// Which build of the filter a test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// `pci_mesh_guard.wasm`, a proxy-wasm filter in Envoy's V8.
    Wasm,
    /// `libpci_mesh_guard.so`, an Envoy dynamic module.
    Native,
}

impl Build {
    /// The filter file of this build.
    pub fn module(self) -> PathBuf {
        match self {
            Build::Wasm => wasm(),
            Build::Native => native_module(),
        }
    }

    /// The snippet of `envoy-config/` that loads this build (`{{PMG_FILTER}}`).
    fn snippet(self) -> String {
        let file = match self {
            Build::Wasm => "filter-wasm.yaml",
            Build::Native => "filter-native.yaml",
        };
        fs::read_to_string(root().join("envoy-config").join(file)).expect("read a filter snippet")
    }
}

/// One Envoy and the build of the filter it runs.
#[derive(Debug, Clone)]
pub struct Envoy {
    pub version: String,
    pub bin: PathBuf,
    pub build: Build,
}

impl std::fmt::Display for Envoy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let build = match self.build {
            Build::Wasm => "wasm",
            Build::Native => "native",
        };
        write!(f, "{} ({build})", self.version)
    }
}

impl Envoy {
    pub fn is_native(&self) -> bool {
        self.build == Build::Native
    }

    /// The Envoy logger the filter writes to, as `--component-log-level` and `/logging` name it.
    pub fn filter_logger(&self) -> &'static str {
        match self.build {
            Build::Wasm => "wasm",
            Build::Native => "dynamic_modules",
        }
    }
}

/// The Envoy versions the native build is tested under: a module is built for one Envoy minor
/// version (and the next), and this one is built for 1.40.
pub const NATIVE_ENVOY_VERSIONS: &[&str] = &["1.40.0"];

/// What every end-to-end test runs against: the wasm build under each Envoy of `ENVOY_VERSIONS`
/// (or `PMG_ENVOY_VERSIONS`) and the native build under those of `NATIVE_ENVOY_VERSIONS`, each
/// Envoy installed by `scripts/envoy.sh`; or `ENVOY_BIN` alone, with both builds. `PMG_BUILDS`
/// (`wasm`, `native`) narrows the builds. A missing Envoy fails the test; `PMG_SKIP_E2E=1` skips
/// end-to-end tests on purpose, and is refused under `CI=true`.
pub fn envoys() -> Vec<Envoy> {
    let builds = std::env::var("PMG_BUILDS").unwrap_or_else(|_| "wasm native".into());
    let wanted = |b: Build| match b {
        Build::Wasm => builds.contains("wasm"),
        Build::Native => builds.contains("native"),
    };
    installed_envoys()
        .into_iter()
        .flat_map(|e| {
            let native = e.version == "ENVOY_BIN" || NATIVE_ENVOY_VERSIONS.contains(&&*e.version);
            let mut each = vec![Envoy {
                build: Build::Wasm,
                ..e.clone()
            }];
            if native {
                each.push(Envoy {
                    build: Build::Native,
                    ..e
                });
            }
            each
        })
        .filter(|e| wanted(e.build))
        .collect()
}

/// The first of `envoys()` of each build: for the tests that run a whole scenario once per build
/// (the demo, the soak), under the newest Envoy.
pub fn each_build() -> Vec<Envoy> {
    let mut seen = Vec::new();
    envoys()
        .into_iter()
        .filter(|e| {
            let first = !seen.contains(&e.build);
            seen.push(e.build);
            first
        })
        .collect()
}

/// The wasm build under every Envoy `envoys()` names: for what only the wasm build has (its
/// delivery by OCI image, VM failure policies).
pub fn wasm_envoys() -> Vec<Envoy> {
    envoys().into_iter().filter(|e| !e.is_native()).collect()
}

fn installed_envoys() -> Vec<Envoy> {
    static ENVOYS: OnceLock<Vec<Envoy>> = OnceLock::new();
    ENVOYS
        .get_or_init(|| {
            if std::env::var("PMG_SKIP_E2E").as_deref() == Ok("1") {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "PMG_SKIP_E2E=1 is not allowed under CI=true: end-to-end tests must run"
                );
                eprintln!("SKIPPING end-to-end tests: PMG_SKIP_E2E=1");
                return vec![];
            }
            if let Ok(bin) = std::env::var("ENVOY_BIN") {
                return vec![Envoy {
                    version: "ENVOY_BIN".into(),
                    bin: bin.into(),
                    build: Build::Wasm,
                }];
            }
            let versions = std::env::var("PMG_ENVOY_VERSIONS")
                .map(|v| v.split_whitespace().map(String::from).collect::<Vec<_>>())
                .unwrap_or_else(|_| ENVOY_VERSIONS.iter().map(|s| s.to_string()).collect());
            versions
                .into_iter()
                .map(|version| {
                    let out = Command::new(root().join("scripts/envoy.sh"))
                        .arg(&version)
                        .stderr(Stdio::inherit())
                        .output()
                        .expect("run scripts/envoy.sh");
                    assert!(
                        out.status.success(),
                        "Envoy {version} could not be provided (set ENVOY_BIN to use another)"
                    );
                    let bin = String::from_utf8_lossy(&out.stdout).trim().to_string();
                    Envoy {
                        version,
                        bin: bin.into(),
                        build: Build::Wasm,
                    }
                })
                .collect()
        })
        .clone()
}

/// A Python with the test tools (opentelemetry-proto), installed once by `scripts/test-tools.sh`.
/// The reference filters of the benchmark (`bench/reference-filter`), built once.
pub fn reference_filter() -> PathBuf {
    static MODULE: OnceLock<PathBuf> = OnceLock::new();
    MODULE
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let target = root().join("target/reference-filter");
            let status = Command::new(cargo)
                .args(["build", "--quiet", "--release", "--target", "wasm32-wasip1"])
                .arg("--manifest-path")
                .arg(root().join("bench/reference-filter/Cargo.toml"))
                .arg("--target-dir")
                .arg(&target)
                .status()
                .expect("run cargo to build the reference filter");
            assert!(status.success(), "building the reference filter failed");
            target.join("wasm32-wasip1/release/pmg_reference_filter.wasm")
        })
        .clone()
}

pub fn tools_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let out = Command::new(root().join("scripts/test-tools.sh"))
                .stderr(Stdio::inherit())
                .output()
                .expect("run scripts/test-tools.sh");
            assert!(
                out.status.success(),
                "the test tools could not be installed"
            );
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        })
        .clone()
}

/// Kills the child when the test process dies, however it dies.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

/// The port a child process writes into `file` once it listens (20 s at most).
fn port_from_file(what: &str, file: &std::path::Path) -> u16 {
    wait_for(what, Duration::from_secs(20), || {
        fs::read_to_string(file).ok()?.trim().parse::<u16>().ok()
    })
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `f` until it gives a value or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn render(template: &str, vars: &[(&str, String)]) -> String {
    let read = |file: &str| {
        fs::read_to_string(root().join("envoy-config").join(file))
            .expect("read envoy-config template")
    };
    let mut text = read(template);
    if let Some((_, snippet)) = vars.iter().find(|(k, _)| *k == "PMG_FILTER") {
        text = place_filter(&text, snippet);
    }
    for (k, v) in vars {
        text = text.replace(&format!("{{{{{k}}}}}"), v);
    }
    assert!(
        !text.contains("{{") || text.contains("{{...}}"),
        "unfilled placeholder in {template}"
    );
    text
}

/// Puts a filter snippet (`envoy-config/filter-*.yaml`, from its first list item on) where each
/// `{{PMG_FILTER}}` line stands, indented as that line is.
fn place_filter(text: &str, snippet: &str) -> String {
    let body: Vec<&str> = snippet
        .lines()
        .skip_while(|l| !l.starts_with("- "))
        .collect();
    let mut out = String::with_capacity(text.len() + snippet.len());
    for line in text.lines() {
        match line.split_once("{{PMG_FILTER}}") {
            Some((indent, _)) => {
                for b in &body {
                    out.push_str(indent);
                    out.push_str(b);
                    out.push('\n');
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// `yaml` with `PCI_MESH_GUARD_AUDIT_KEY_ID: kid` beside each `PCI_MESH_GUARD_AUDIT_KEY` of a wasm
/// VM's environment.
fn with_key_id(yaml: &str, kid: &str) -> String {
    let mut out = String::with_capacity(yaml.len());
    for line in yaml.lines() {
        out.push_str(line);
        out.push('\n');
        if let Some((indent, _)) = line.split_once("PCI_MESH_GUARD_AUDIT_KEY: ") {
            out.push_str(&format!("{indent}PCI_MESH_GUARD_AUDIT_KEY_ID: \"{kid}\"\n"));
        }
    }
    out
}

/// One mesh process: its name, the child, and its log file.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

/// Why the mesh did not come up.
#[derive(Debug)]
pub struct StartError {
    pub what: String,
    pub log: String,
    /// What the backend had received by then.
    pub received: Vec<Value>,
}

pub struct MeshBuilder<'a> {
    envoy: &'a Envoy,
    name: String,
    config: String,
    mtls_port: u16,
    client: bool,
    /// Start an OTLP receiver in this mode (`scripts/otlp_receiver.py`); without one, the
    /// otel-collector cluster points at a port nobody listens on.
    otlp: Option<&'static str>,
    /// Extra command-line arguments for both sidecars' Envoy.
    envoy_args: Vec<String>,
    /// The server sidecar shaped as istiod builds it, the plugin delivered by ECDS
    /// (`envoy-config/istio-shaped-sidecar.yaml`), started with the sidecar's log flags.
    istio_shaped: bool,
    /// Another module in the plugin's place (a reference filter), for what Envoy does around it.
    module: Option<PathBuf>,
    /// Text replacements in the server sidecar's rendered configuration.
    server_edits: Vec<(String, String)>,
    /// Start the gRPC service (`scripts/grpc_echo.py`) that the server sidecar routes gRPC to.
    grpc: bool,
    /// The filter's entry in the server sidecar's `http_filters` (YAML, a list item), instead of
    /// the build's own `envoy-config/filter-*.yaml`.
    snippet: Option<String>,
    /// Ambient shape: a waypoint (`envoy-config/waypoint.yaml`) in the server's place, reached
    /// over HBONE through a ztunnel stand-in (`envoy-config/ztunnel.yaml`) in the client's.
    ambient: bool,
    /// The server's audit chain key, and its id (`PCI_MESH_GUARD_AUDIT_KEY_ID`) when one is given.
    audit_key: (String, Option<String>),
}

impl<'a> MeshBuilder<'a> {
    /// The server sidecar as Istio runs it: the plugin's configuration delivered by ECDS from a
    /// watched file (`Mesh::deliver_plugin_config` replaces it), Istio's RBAC after the plugin,
    /// Istio's log flags. Its listeners are inbound_mtls and inbound_plaintext only.
    /// Starts the gRPC service the server sidecar routes gRPC (`content-type: application/grpc`) to.
    pub fn grpc(mut self) -> Self {
        self.grpc = true;
        self
    }

    /// Loads `module` in the plugin's place (its configuration is the builder's `config`).
    pub fn module(mut self, module: PathBuf) -> Self {
        self.module = Some(module);
        self
    }

    /// Loads the filter as `snippet` says (a list item of `http_filters`, in YAML or JSON), in
    /// place of the build's own `envoy-config/filter-*.yaml`.
    pub fn filter_snippet(mut self, snippet: &str) -> Self {
        self.snippet = Some(snippet.to_string());
        self
    }

    /// Replaces `from` (which must occur) with `to` in the server sidecar's configuration.
    pub fn server_edit(mut self, from: &str, to: &str) -> Self {
        self.server_edits.push((from.into(), to.into()));
        self
    }

    /// The mesh in Istio ambient's shape: callers' traffic tunnelled over HBONE by a ztunnel
    /// stand-in to a waypoint whose internal listener runs the plugin. `send` as a caller goes
    /// through that caller's tunnel; as `plaintext`, to the waypoint's chain with no tunnel.
    pub fn ambient(mut self) -> Self {
        self.ambient = true;
        self
    }

    /// Seals the server's audit events with `key`, named `kid` (else by its derived id), instead
    /// of `AUDIT_KEY`.
    pub fn audit_key(mut self, key: &str, kid: Option<&str>) -> Self {
        self.audit_key = (key.to_owned(), kid.map(str::to_owned));
        self
    }

    pub fn istio_shaped(mut self) -> Self {
        self.istio_shaped = true;
        self
    }

    pub fn config(mut self, json: &str) -> Self {
        self.config = json.to_string();
        self
    }

    /// Runs an OTLP receiver (`ok`, `partial`, `slow`, `503`) behind the otel-collector cluster.
    pub fn otlp(mut self, mode: &'static str) -> Self {
        self.otlp = Some(mode);
        self
    }

    /// Starts both sidecars with these extra Envoy arguments (log levels, for instance).
    pub fn envoy_args(mut self, args: &[&str]) -> Self {
        self.envoy_args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Binds the server's mTLS listener to this port instead of any free one.
    pub fn mtls_port(mut self, port: u16) -> Self {
        self.mtls_port = port;
        self
    }

    /// Starts the mesh, failing the test with the sidecar's log if it does not come up.
    pub fn up(self) -> Mesh {
        let version = self.envoy.version.clone();
        self.start()
            .unwrap_or_else(|e| panic!("Envoy {version}: {}\n{}", e.what, e.log))
    }

    pub fn start(self) -> Result<Mesh, StartError> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = root().join("target/e2e").join(format!(
            "{}-{}-{}-{}",
            self.name,
            self.envoy.version,
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create mesh directory");
        let mut mesh = Mesh {
            dir: dir.clone(),
            procs: vec![],
            envoy: self.envoy.clone(),
            outbound: 0,
            server_mtls: 0,
            server_plain: 0,
            server_admin: String::new(),
            envoy_args: self.envoy_args.clone(),
            ecds: None,
            refusing: None,
            tunnels: vec![],
            audit_key: self.audit_key.clone(),
        };

        let pki = dir.join("pki");
        let status = Command::new(root().join("scripts/pki.sh"))
            .arg(&pki)
            .stdout(Stdio::null())
            .status()
            .expect("run scripts/pki.sh");
        assert!(status.success(), "scripts/pki.sh failed");

        let port_file = dir.join("backend.port");
        mesh.spawn(
            "backend",
            Command::new("python3")
                .arg(root().join("scripts/backend.py"))
                .arg("--port-file")
                .arg(&port_file)
                .arg("--record")
                .arg(dir.join("received.jsonl"))
                .arg("--fixtures")
                .arg(root().join("tests/fixtures")),
        );
        let backend_port = port_from_file("the backend's port", &port_file);

        let grpc_port = if self.grpc {
            let port_file = dir.join("grpc.port");
            mesh.spawn(
                "grpc",
                Command::new(tools_python())
                    .arg(root().join("scripts/grpc_echo.py"))
                    .arg("serve")
                    .arg("--port-file")
                    .arg(&port_file)
                    .arg("--record")
                    .arg(dir.join("grpc.jsonl")),
            );
            port_from_file("the gRPC service's port", &port_file)
        } else {
            free_port()
        };

        let otel_port = match self.otlp {
            Some(mode) => {
                let python = tools_python();
                let port_file = dir.join("otlp.port");
                mesh.spawn(
                    "otlp",
                    Command::new(python)
                        .arg(root().join("scripts/otlp_receiver.py"))
                        .arg("--port-file")
                        .arg(&port_file)
                        .arg("--record")
                        .arg(dir.join("otlp.jsonl"))
                        .args(["--mode", mode]),
                );
                port_from_file("the OTLP receiver's port", &port_file)
            }
            None => {
                // Bound and never listening: the collector refuses, and no other test's listener
                // can take the port while this mesh runs (a port that was merely free could be).
                let (socket, port) = refusing_port();
                mesh.refusing = Some(socket);
                port
            }
        };
        if self.ambient {
            let config_literal = serde_json::to_string(&self.config).expect("encode config");
            let yaml = render(
                "waypoint.yaml",
                &[
                    ("PMG_FILTER", self.envoy.build.snippet()),
                    ("PKI", pki.display().to_string()),
                    ("WASM", self.envoy.build.module().display().to_string()),
                    ("PLUGIN_CONFIG", config_literal),
                    ("BACKEND_PORT", backend_port.to_string()),
                    ("GRPC_BACKEND_PORT", grpc_port.to_string()),
                    ("HBONE_PORT", "0".into()),
                    ("BYPASS_PORT", "0".into()),
                    ("AUDIT_KEY", self.audit_key.0.clone()),
                    ("TOKEN_KEY", TOKEN_KEY.into()),
                    ("OTEL_PORT", otel_port.to_string()),
                    ("AUDIT_LOG", dir.join("audit.log").display().to_string()),
                ],
            );
            // Started as Istio starts a waypoint's proxy, with the same log flags as a sidecar.
            mesh.start_istio_server(&yaml, "connect_terminate", "bypass")?;
            let ztunnel = render(
                "ztunnel.yaml",
                &[
                    ("PKI", pki.display().to_string()),
                    ("HBONE_PORT", mesh.server_mtls.to_string()),
                    ("DESTINATION", format!("127.0.0.1:{backend_port}")),
                    ("TUNNEL_PORT", "0".into()),
                ],
            );
            let admin = mesh.start_envoy("client", &ztunnel)?;
            mesh.tunnels = listener_ports(&admin);
            return Ok(mesh);
        }
        let (tls_any, raw) = if self.istio_shaped {
            let ecds = dir.join("ecds");
            fs::create_dir_all(&ecds).expect("create the ECDS directory");
            mesh.ecds = Some(Ecds {
                dir: ecds.clone(),
                version: AtomicUsize::new(0),
            });
            mesh.deliver_plugin_config(&self.config);
            let yaml = render(
                "istio-shaped-sidecar.yaml",
                &[
                    ("PKI", pki.display().to_string()),
                    ("ECDS_DIR", ecds.display().to_string()),
                    ("BACKEND_PORT", backend_port.to_string()),
                    ("MTLS_PORT", self.mtls_port.to_string()),
                    ("PLAIN_PORT", "0".into()),
                    ("AUDIT_LOG", dir.join("audit.log").display().to_string()),
                ],
            );
            mesh.start_istio_server(&yaml, "inbound_mtls", "inbound_plaintext")?;
            // The client's routes to listeners this sidecar does not have lead nowhere.
            (free_port(), free_port())
        } else {
            let config_literal = serde_json::to_string(&self.config).expect("encode config");
            let module = self
                .module
                .clone()
                .unwrap_or_else(|| self.envoy.build.module());
            let mut server_yaml = render(
                "server-sidecar.yaml",
                &[
                    (
                        "PMG_FILTER",
                        self.snippet
                            .clone()
                            .unwrap_or_else(|| self.envoy.build.snippet()),
                    ),
                    ("PKI", pki.display().to_string()),
                    ("WASM", module.display().to_string()),
                    ("PLUGIN_CONFIG", config_literal),
                    ("BACKEND_PORT", backend_port.to_string()),
                    ("GRPC_BACKEND_PORT", grpc_port.to_string()),
                    ("MTLS_PORT", self.mtls_port.to_string()),
                    ("PLAIN_PORT", "0".into()),
                    ("TLS_ANY_PORT", "0".into()),
                    ("AUDIT_KEY", self.audit_key.0.clone()),
                    ("TOKEN_KEY", TOKEN_KEY.into()),
                    ("OTEL_PORT", otel_port.to_string()),
                    ("RAW_PORT", "0".into()),
                    ("AUDIT_LOG", dir.join("audit.log").display().to_string()),
                ],
            );
            if let Some(kid) = &self.audit_key.1 {
                server_yaml = with_key_id(&server_yaml, kid);
            }
            for (from, to) in &self.server_edits {
                assert!(
                    server_yaml.contains(from.as_str()),
                    "{from:?} is not in the config"
                );
                server_yaml = server_yaml.replace(from.as_str(), to);
            }
            let admin = mesh.start_envoy("server", &server_yaml)?;
            let ports = listener_ports(&admin);
            mesh.server_mtls = port_of(&ports, "inbound_mtls");
            mesh.server_plain = port_of(&ports, "inbound_plaintext");
            let tls_any = port_of(&ports, "inbound_tls_any");
            let raw = port_of(&ports, "inbound_raw");
            mesh.server_admin = admin;
            (tls_any, raw)
        };

        if self.client {
            let client_yaml = render(
                "client-sidecar.yaml",
                &[
                    ("PKI", pki.display().to_string()),
                    ("SERVER_MTLS_PORT", mesh.server_mtls.to_string()),
                    ("SERVER_PLAIN_PORT", mesh.server_plain.to_string()),
                    ("SERVER_TLS_ANY_PORT", tls_any.to_string()),
                    ("SERVER_RAW_PORT", raw.to_string()),
                    ("OUTBOUND_PORT", "0".into()),
                ],
            );
            let admin = mesh.start_envoy("client", &client_yaml)?;
            mesh.outbound = port_of(&listener_ports(&admin), "outbound");
        }
        Ok(mesh)
    }
}

fn admin_get(admin: &str, path: &str) -> Option<Response> {
    let port = admin.rsplit(':').next()?.parse().ok()?;
    http::send(port, &Request::get(path)).ok()
}

/// `promtool check metrics` over a `/stats/prometheus` text: panics unless it parses (exit 0, or
/// 3 for lint findings only), and returns the lint findings on the plugin's own metrics other
/// than "no help text" (Envoy writes no HELP lines for any stat).
pub fn promtool_lint_of_plugin_metrics(exported: &str) -> Vec<String> {
    use std::io::Write;
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool (scripts/tools.sh installs Debian's prometheus)");
    if let Some(mut stdin) = check.stdin.take() {
        stdin.write_all(exported.as_bytes()).expect("feed promtool");
    }
    let out = check.wait_with_output().expect("promtool's answer");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "promtool check metrics does not accept the output ({:?}):\n{said}",
        out.status.code()
    );
    said.lines()
        .filter(|l| l.starts_with("pci_mesh_guard_") && !l.ends_with(" no help text"))
        .map(str::to_owned)
        .collect()
}

/// The text an Envoy admin endpoint (`127.0.0.1:PORT`) answers at `path`.
pub fn admin_text(admin: &str, path: &str) -> String {
    admin_get(admin, path)
        .unwrap_or_else(|| panic!("admin {admin}{path}"))
        .text()
}

fn listener_ports(admin: &str) -> Vec<(String, u16)> {
    let body = admin_get(admin, "/listeners?format=json").expect("admin /listeners");
    let v: Value = serde_json::from_slice(&body.body).expect("listeners JSON");
    v["listener_statuses"]
        .as_array()
        .expect("listener_statuses")
        .iter()
        // An internal listener (a waypoint's main_internal) has no port.
        .filter_map(|l| {
            let port = l["local_address"]["socket_address"]["port_value"].as_u64()? as u16;
            Some((l["name"].as_str().unwrap_or("").to_string(), port))
        })
        .collect()
}

fn port_of(ports: &[(String, u16)], name: &str) -> u16 {
    ports
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| *p)
        .unwrap_or_else(|| panic!("no listener {name} in {ports:?}"))
}

pub struct Mesh {
    pub dir: PathBuf,
    procs: Vec<Proc>,
    pub envoy: Envoy,
    /// The client sidecar's plaintext listener: where callers send requests.
    pub outbound: u16,
    pub server_mtls: u16,
    pub server_plain: u16,
    pub server_admin: String,
    envoy_args: Vec<String>,
    /// The ECDS source of an Istio-shaped sidecar.
    ecds: Option<Ecds>,
    /// Holds the otel-collector port of a mesh without a collector.
    refusing: Option<std::os::fd::OwnedFd>,
    /// An ambient mesh's tunnels: the ztunnel stand-in's listeners (`as-<caller>`) and ports.
    tunnels: Vec<(String, u16)>,
    /// The server's audit chain key and its id, if named.
    pub audit_key: (String, Option<String>),
}

/// The directory Envoy watches for the plugin's discovery response, and the last version written.
struct Ecds {
    dir: PathBuf,
    version: AtomicUsize,
}

impl Mesh {
    /// Delivers a plugin configuration to an Istio-shaped sidecar as istiod's ECDS would
    /// (`scripts/ecds.py`: a new discovery response moved into the directory Envoy watches).
    /// Returns its version.
    pub fn deliver_plugin_config(&self, json: &str) -> usize {
        let ecds = self.ecds.as_ref().expect("an Istio-shaped mesh");
        let version = ecds.version.fetch_add(1, Ordering::Relaxed) + 1;
        let config = self.dir.join(format!("plugin-config-{version}.json"));
        fs::write(&config, json).expect("write the plugin configuration");
        let status = Command::new("python3")
            .arg(root().join("scripts/ecds.py"))
            .arg(&config)
            .arg(self.envoy.build.module())
            .arg(&ecds.dir)
            .arg(version.to_string())
            .env("PCI_MESH_GUARD_AUDIT_KEY", AUDIT_KEY)
            .env("PCI_MESH_GUARD_TOKEN_KEY", TOKEN_KEY)
            .status()
            .expect("run scripts/ecds.py");
        assert!(status.success(), "scripts/ecds.py failed");
        version
    }

    /// A gRPC call through the client sidecar (`scripts/grpc_echo.py call`), as `caller`.
    pub fn grpc_call(&self, caller: &str, text: &str) -> Value {
        let out = Command::new(tools_python())
            .arg(root().join("scripts/grpc_echo.py"))
            .args([
                "call",
                "--port",
                &self.outbound.to_string(),
                "--caller",
                caller,
                "--text",
                text,
            ])
            .output()
            .expect("run scripts/grpc_echo.py call");
        assert!(
            out.status.success(),
            "grpc call: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("the call's JSON")
    }

    /// What the gRPC service received, one JSON object per request message.
    pub fn grpc_received(&self) -> Vec<Value> {
        self.json_lines("grpc.jsonl")
    }

    /// The server sidecar's `/stats/prometheus`.
    pub fn prometheus(&self) -> String {
        admin_get(&self.server_admin, "/stats/prometheus")
            .expect("admin /stats/prometheus")
            .text()
    }

    /// A counter or gauge of the server sidecar by its exact name (0 when Envoy has none).
    pub fn server_stat(&self, name: &str) -> u64 {
        self.stats(name)
            .into_iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| v)
    }

    /// A mesh under `envoy`; `name` labels its directory under `target/e2e`.
    pub fn builder<'a>(envoy: &'a Envoy, name: &str) -> MeshBuilder<'a> {
        MeshBuilder {
            envoy,
            name: name.to_string(),
            config: String::new(),
            mtls_port: 0,
            client: true,
            otlp: None,
            envoy_args: vec![],
            istio_shaped: false,
            module: None,
            server_edits: vec![],
            grpc: false,
            snippet: None,
            ambient: false,
            audit_key: (AUDIT_KEY.to_owned(), None),
        }
    }

    fn spawn(&mut self, name: &'static str, cmd: &mut Command) {
        let log = self.dir.join(format!("{name}.log"));
        let out = fs::File::create(&log).expect("create log");
        let err = out.try_clone().expect("clone log handle");
        let child = die_with_parent(cmd.stdin(Stdio::null()).stdout(out).stderr(err))
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        self.procs.push(Proc { name, child, log });
    }

    /// Starts the server-side Envoy with Istio's log flags (whatever the mesh's own arguments),
    /// and notes its admin address and the ports of its mTLS and plaintext listeners.
    fn start_istio_server(
        &mut self,
        yaml: &str,
        mtls: &str,
        plain: &str,
    ) -> Result<(), StartError> {
        let flags: Vec<String> = ISTIO_LOG_FLAGS.iter().map(|f| f.to_string()).collect();
        let mine = std::mem::replace(&mut self.envoy_args, flags);
        let admin = self.start_envoy("server", yaml);
        self.envoy_args = mine;
        let admin = admin?;
        let ports = listener_ports(&admin);
        self.server_mtls = port_of(&ports, mtls);
        self.server_plain = port_of(&ports, plain);
        self.server_admin = admin;
        Ok(())
    }

    /// Starts an Envoy and waits until its admin says it is ready; returns the admin address.
    fn start_envoy(&mut self, name: &'static str, yaml: &str) -> Result<String, StartError> {
        let config = self.dir.join(format!("{name}.yaml"));
        fs::write(&config, yaml).expect("write envoy config");
        let admin_file = self.dir.join(format!("{name}.admin"));
        let bin = self.envoy.bin.clone();
        let mut cmd = Command::new(bin);
        if self.envoy.is_native() {
            // The native module is found by name in this directory, and reads its keys from
            // Envoy's environment.
            let module = native_module();
            cmd.env(
                "ENVOY_DYNAMIC_MODULES_SEARCH_PATH",
                module.parent().unwrap_or(&module),
            )
            .env("PCI_MESH_GUARD_AUDIT_KEY", &self.audit_key.0)
            .env("PCI_MESH_GUARD_TOKEN_KEY", TOKEN_KEY);
            if let Some(kid) = &self.audit_key.1 {
                cmd.env("PCI_MESH_GUARD_AUDIT_KEY_ID", kid);
            }
        }
        self.spawn(
            name,
            cmd.arg("-c")
                .arg(&config)
                .arg("--use-dynamic-base-id")
                .arg("--admin-address-path")
                .arg(&admin_file)
                .args(["--concurrency", "1", "--drain-time-s", "1"])
                // The audit access log reaches its file within 200 ms (Envoy's default is 10 s).
                .args(["--file-flush-interval-msec", "200"])
                .args(&self.envoy_args),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let proc = self.procs.last_mut().expect("just spawned");
            if let Ok(Some(status)) = proc.child.try_wait() {
                let log = fs::read_to_string(&proc.log).unwrap_or_default();
                return Err(StartError {
                    what: format!("{name} Envoy exited during start-up: {status}"),
                    log,
                    received: self.received(),
                });
            }
            if let Ok(admin) = fs::read_to_string(&admin_file) {
                let admin = admin.trim().to_string();
                if admin_get(&admin, "/ready").is_some_and(|r| r.status == 200) {
                    return Ok(admin);
                }
            }
            if Instant::now() > deadline {
                let log = fs::read_to_string(&proc.log).unwrap_or_default();
                return Err(StartError {
                    what: format!("{name} Envoy not ready after 60 s"),
                    log,
                    received: self.received(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends a request through the client sidecar as `caller` (see envoy-config/client-sidecar.yaml);
    /// in an ambient mesh, through `caller`'s HBONE tunnel (see envoy-config/ztunnel.yaml).
    pub fn send(&self, caller: &str, req: Request<'_>) -> Response {
        if self.is_ambient() {
            return http::send(self.tunnel(caller), &req).expect("request through the tunnel");
        }
        let req = req.header("x-mesh-caller", caller);
        http::send(self.outbound, &req).expect("request through the client sidecar")
    }

    pub fn is_ambient(&self) -> bool {
        !self.tunnels.is_empty()
    }

    /// Where a caller's requests enter an ambient mesh: its tunnel, or for `plaintext` the
    /// waypoint's bypass listener (no tunnel at all).
    pub fn tunnel(&self, caller: &str) -> u16 {
        if caller == "plaintext" {
            return self.server_plain;
        }
        port_of(&self.tunnels, &format!("as-{caller}"))
    }

    /// Sends a chunked request through the client sidecar as `caller`, pausing between chunks.
    pub fn send_chunked(
        &self,
        caller: &str,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        chunks: impl Iterator<Item = Vec<u8>>,
        pause: Duration,
    ) -> Response {
        let mut all = headers.to_vec();
        let port = if self.is_ambient() {
            self.tunnel(caller)
        } else {
            all.push(("x-mesh-caller", caller.to_string()));
            self.outbound
        };
        http::send_chunked(port, method, path, &all, chunks, pause)
            .expect("chunked request through the client sidecar")
    }

    /// Resident memory of one of the mesh's processes, in bytes.
    pub fn rss(&self, name: &str) -> u64 {
        let pid = self
            .procs
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.child.id())
            .expect("no such process");
        let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .expect("VmRSS")
    }

    /// What the OTLP receiver got: one JSON object per export request.
    pub fn otlp_received(&self) -> Vec<Value> {
        self.json_lines("otlp.jsonl")
    }

    /// The server sidecar's counters whose names contain `filter`, from its admin endpoint.
    pub fn stats(&self, filter: &str) -> Vec<(String, u64)> {
        let resp = admin_get(&self.server_admin, "/stats").expect("admin /stats");
        resp.text()
            .lines()
            .filter(|l| l.contains(filter))
            .filter_map(|l| l.split_once(": "))
            .filter_map(|(k, v)| Some((k.to_string(), v.trim().parse().ok()?)))
            .collect()
    }

    /// Sets a log level of the server sidecar at run time through its admin endpoint, as
    /// `istioctl proxy-config log` does (`component=level`, e.g. `wasm=error`).
    pub fn set_server_log_level(&self, setting: &str) {
        let port = self
            .server_admin
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("admin port");
        let path = format!("/logging?{setting}");
        let mut req = Request::get(&path);
        req.method = "POST";
        let resp = http::send(port, &req).expect("admin /logging");
        assert_eq!(resp.status, 200, "/logging?{setting}: {}", resp.text());
    }

    /// POSTs to an admin endpoint of the server sidecar (`/drain_listeners`, ...).
    pub fn server_admin_post(&self, path: &str) -> Response {
        let port = self
            .server_admin
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("admin port");
        let mut req = Request::get(path);
        req.method = "POST";
        http::send(port, &req).expect("admin POST")
    }

    /// What the backend received, one JSON object per request.
    pub fn received(&self) -> Vec<Value> {
        self.json_lines("received.jsonl")
    }

    /// The JSON objects of a file in the mesh directory, one per line (none if it is missing).
    fn json_lines(&self, file: &str) -> Vec<Value> {
        fs::read_to_string(self.dir.join(file))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn log(&self, name: &str) -> String {
        fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// What the server sidecar's access log wrote for the plugin's `access_log` sink.
    pub fn audit_log(&self) -> String {
        fs::read_to_string(self.dir.join("audit.log")).unwrap_or_default()
    }

    /// Runs the audit trail verifier over the server sidecar's whole log.
    pub fn verify_audit(&self) -> pci_mesh_guard::audit::verify::Report {
        let log = self.log("server");
        use pci_mesh_guard::audit::{chain, verify};
        let (key, kid) = &self.audit_key;
        let mut ring = verify::Keyring::default();
        let kid = kid
            .clone()
            .unwrap_or_else(|| chain::derived_kid(key.as_bytes()));
        ring.add(kid, key.as_bytes().to_vec());
        verify::verify_with(log.lines(), &ring, false)
    }

    /// The audit events the filter wrote to the server sidecar's log, in order.
    pub fn events(&self) -> Vec<Value> {
        audit_events(&self.log("server"))
    }

    /// Waits for an access event for the request with this `x-request-id`.
    pub fn access_event(&self, request_id: &str) -> Value {
        eventually(Duration::from_secs(10), || {
            self.events()
                .into_iter()
                .find(|e| e["event"] == "access" && e["request"]["id"] == request_id)
        })
        .unwrap_or_else(|| panic!("no access event for {request_id}:\n{}", self.log("server")))
    }

    /// Stops process `name` as an orchestrator does (SIGTERM), and waits up to 20 s for it to
    /// exit; true when it did.
    pub fn terminate(&mut self, name: &str) -> bool {
        let Some(p) = self.procs.iter_mut().find(|p| p.name == name) else {
            return false;
        };
        let pid = p.child.id() as libc::pid_t;
        // SAFETY: sends a signal to a child this harness spawned and has not yet waited for.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return false;
        }
        eventually(Duration::from_secs(20), || {
            p.child.try_wait().ok().flatten()
        })
        .is_some()
    }

    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        self.procs.iter().map(|p| (p.name, p.child.id())).collect()
    }
}

/// Audit events in an Envoy log: the JSON object that ends a line of the filter's (`wasm log`
/// for the wasm build, Envoy's `dynamic_modules` logger for the native one).
pub fn audit_events(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| l.contains("wasm log") || l.contains("[dynamic_modules]"))
        .filter_map(|l| l.find("{\"schema\"").map(|i| &l[i..]))
        .filter_map(|j| serde_json::from_str(j).ok())
        .collect()
}

impl Drop for Mesh {
    fn drop(&mut self) {
        for p in self.procs.iter_mut().rev() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        if !std::thread::panicking() {
            assert_no_pan_in_logs(self);
            assert_events_name_each_key_once(self);
        }
        if std::thread::panicking() {
            eprintln!("mesh files kept for inspection: {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether `verify-audit`'s output (a demo's) says the trail verified with `events` events, and
/// some heartbeats besides (at most ten: a demo runs for minutes and each chain writes one a
/// minute), in `chains` chains.
pub fn verified_demo_trail(text: &str, events: usize, chains: usize) -> bool {
    let tail = format!(" events in {chains} chains, 0 problems");
    text.lines().any(|l| {
        l.strip_suffix(&tail)
            .and_then(|head| head.rsplit(' ').next())
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| (events..=events + 10).contains(&n))
    })
}

/// True while a process with this pid exists (and is not a zombie).
pub fn process_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(e) => e.kind() != io::ErrorKind::NotFound,
    }
}

/// A TCP port on 127.0.0.1 that refuses connections for as long as the returned socket lives: the
/// socket is bound and never listens, so no other process can bind the port meanwhile.
pub fn refusing_port() -> (std::os::fd::OwnedFd, u16) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a socket this function owns; every pointer refers to a local
    // of the size passed with it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
        let socket = std::os::fd::OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let rc = libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), len);
        assert!(rc == 0, "bind: {}", io::Error::last_os_error());
        let mut bound: libc::sockaddr_in = std::mem::zeroed();
        let mut bound_len = len;
        let rc = libc::getsockname(
            fd,
            (&mut bound as *mut libc::sockaddr_in).cast(),
            &mut bound_len,
        );
        assert!(rc == 0, "getsockname: {}", io::Error::last_os_error());
        (socket, u16::from_be(bound.sin_port))
    }
}

/// A port that was free a moment ago.
/// A command running one of the project's scripts (`scripts/demo.sh`, `scripts/soak.sh`) against
/// the filter under test and `envoy`, with every port the local mesh and its Prometheus take set
/// to a distinct free one, so that it runs beside other tests.
pub fn script(name: &str, envoy: &Envoy) -> Command {
    let mut cmd = Command::new(root().join("scripts").join(name));
    cmd.env("ENVOY_BIN", &envoy.bin);
    match envoy.build {
        Build::Wasm => cmd.env("PMG_WASM", wasm()),
        Build::Native => cmd
            .env("PMG_NATIVE", "1")
            .env("PMG_MODULE", native_module()),
    };
    let vars = [
        "PMG_OUTBOUND_PORT",
        "PMG_MTLS_PORT",
        "PMG_PLAIN_PORT",
        "PMG_TLS_ANY_PORT",
        "PMG_RAW_PORT",
        "PMG_BACKEND_PORT",
        "PMG_GRPC_BACKEND_PORT",
        "PMG_OTEL_PORT",
        "PMG_PROMETHEUS_PORT",
        "PMG_HBONE_PORT",
    ];
    for (var, port) in vars.iter().zip(free_ports(vars.len())) {
        cmd.env(var, port.to_string());
    }
    cmd
}

/// `n` distinct free ports: each listener is held until all are bound, so no two are the same
/// (separate `free_port` calls can return one port twice).
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("its address").port())
        .collect()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port")
}
