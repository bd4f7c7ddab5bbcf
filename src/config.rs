//! Plugin configuration: strict parsing of the SPEC's JSON, validation, and compilation into a `Policy`.
//!
//! Parsing rejects unknown keys and wrong types; validation rejects values that cannot be honoured.
//! Every error names the key path (`authorization.rules[2].name: duplicate rule name`).

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

use crate::authz::{Authorizer, PanGrant, Rule, RuleAction, Screens, StrMatch};
use crate::identity::{IdentitySource, TlsVersion};
use crate::lint::{lint, Finding};
use crate::pan::{Masking, Pattern};

mod audit;
mod keys;
pub use keys::accepted_keys;

pub use audit::AuditSettings;
use audit::{compile_audit, RawAudit};

/// A rejected configuration: which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path with array indexes, or empty for the document itself.
    pub path: String,
    pub message: String,
}

impl ConfigError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Enforce,
    DryRun,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::DryRun => "dry_run",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompressedBody {
    #[default]
    Block,
    Pass,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sink {
    /// Every event in the proxy log.
    #[default]
    Log,
    /// Every event in the proxy log, and shipped to an OpenTelemetry collector.
    OtlpHttp,
    /// Access events in filter state (`wasm.pmg_audit`), written by Envoy's access log; the
    /// other events in the proxy log.
    AccessLog,
}

impl Sink {
    pub fn as_str(self) -> &'static str {
        match self {
            Sink::Log => "log",
            Sink::OtlpHttp => "otlp_http",
            Sink::AccessLog => "access_log",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    mode: Mode,
    strict: bool,
    identity: RawIdentity,
    authorization: RawAuthorization,
    redaction: RawRedaction,
    audit: RawAudit,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            mode: Mode::Enforce,
            strict: false,
            identity: RawIdentity::default(),
            authorization: RawAuthorization::default(),
            redaction: RawRedaction::default(),
            audit: RawAudit::default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawIdentity {
    source: IdentitySource,
    require_mtls: bool,
    min_tls_version: String,
    trust_domains: Vec<String>,
    trust_xfcc: bool,
}

impl Default for RawIdentity {
    fn default() -> Self {
        RawIdentity {
            source: IdentitySource::PeerCertificate,
            require_mtls: true,
            min_tls_version: "TLSv1.2".into(),
            trust_domains: vec![],
            trust_xfcc: false,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAuthorization {
    default_action: RawAction,
    rules: Vec<RawRule>,
}

impl Default for RawAuthorization {
    fn default() -> Self {
        RawAuthorization {
            default_action: RawAction::Deny,
            rules: vec![],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawAction {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Direction {
    Request,
    Response,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    /// Istio's default action is ALLOW.
    #[serde(default = "default_rule_action")]
    action: RawAction,
    #[serde(default)]
    principals: Vec<String>,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    not_principals: Vec<String>,
    #[serde(default)]
    not_namespaces: Vec<String>,
    #[serde(default)]
    not_paths: Vec<String>,
    #[serde(default)]
    not_methods: Vec<String>,
    #[serde(default)]
    pan: Vec<Direction>,
}

fn default_rule_action() -> RawAction {
    RawAction::Allow
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRedaction {
    request_headers: bool,
    request_body: bool,
    response_headers: bool,
    response_body: bool,
    keep_first: u8,
    keep_last: u8,
    mask_char: String,
    patterns: Vec<RawPattern>,
    compressed_body: CompressedBody,
}

impl Default for RawRedaction {
    fn default() -> Self {
        RawRedaction {
            request_headers: true,
            request_body: true,
            response_headers: true,
            response_body: true,
            keep_first: 0,
            keep_last: 4,
            mask_char: "*".into(),
            patterns: vec![],
            compressed_body: CompressedBody::Block,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPattern {
    name: String,
    regex: String,
}

/// Where PANs are redacted, and how.
#[derive(Debug, Clone)]
pub struct Redaction {
    pub request_headers: bool,
    pub request_body: bool,
    pub response_headers: bool,
    pub response_body: bool,
    pub masking: Masking,
    pub patterns: Arc<[Pattern]>,
    pub compressed_body: CompressedBody,
}

/// The compiled configuration, built once per `on_configure` and shared by every request.
#[derive(Debug, Clone)]
pub struct Policy {
    pub mode: Mode,
    pub strict: bool,
    pub authorizer: Authorizer,
    pub redaction: Redaction,
    pub audit: AuditSettings,
    /// What the policy linter found (never fatal here unless `strict`).
    pub findings: Vec<Finding>,
}

impl Policy {
    /// Parses, validates and compiles a plugin configuration. Empty input means all defaults.
    pub fn parse(input: &[u8]) -> Result<Policy, ConfigError> {
        Policy::parse_with(input, true)
    }

    /// As `parse`, but linter findings never reject it, even under `strict` (for the `lint` tool).
    pub fn parse_lenient(input: &[u8]) -> Result<Policy, ConfigError> {
        Policy::parse_with(input, false)
    }

    fn parse_with(input: &[u8], honour_strict: bool) -> Result<Policy, ConfigError> {
        let raw: RawConfig = if input.iter().all(u8::is_ascii_whitespace) {
            RawConfig::default()
        } else {
            let value: serde_json::Value = serde_json::from_slice(input)
                .map_err(|e| ConfigError::new("", format!("not JSON: {e}")))?;
            require_objects(&value)?;
            // Deserialize from the text, not the `Value`: only the text still shows a key given
            // twice, which serde then rejects as a duplicate field.
            let de = &mut serde_json::Deserializer::from_slice(input);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let path = e.path().to_string();
                let path = if path == "." { String::new() } else { path };
                ConfigError::new(path, e.into_inner().to_string())
            })?
        };
        compile(raw, honour_strict)
    }
}

/// Serde's derived structs also accept a JSON array, field by field in order. A configuration
/// written that way is a mistake, so every section must be a JSON object.
fn require_objects(root: &serde_json::Value) -> Result<(), ConfigError> {
    use serde_json::Value;
    let object = |v: &Value, path: String| match v {
        Value::Object(_) => Ok(()),
        _ => Err(ConfigError::new(path, "must be a JSON object")),
    };
    object(root, String::new())?;
    for section in ["identity", "authorization", "redaction", "audit"] {
        if let Some(v) = root.get(section) {
            object(v, section.to_owned())?;
        }
    }
    for (list, key) in [("authorization", "rules"), ("redaction", "patterns")] {
        if let Some(Value::Array(items)) = root.get(list).and_then(|s| s.get(key)) {
            for (i, item) in items.iter().enumerate() {
                object(item, format!("{list}.{key}[{i}]"))?;
            }
        }
    }
    Ok(())
}

fn compile(raw: RawConfig, honour_strict: bool) -> Result<Policy, ConfigError> {
    let id = raw.identity;
    let min_tls_version = TlsVersion::parse(&id.min_tls_version).ok_or_else(|| {
        ConfigError::new(
            "identity.min_tls_version",
            format!(
                "unknown TLS version {:?} (expected TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3)",
                id.min_tls_version
            ),
        )
    })?;
    for (i, td) in id.trust_domains.iter().enumerate() {
        let probe = format!("spiffe://{td}");
        if let Err(e) = crate::identity::SpiffeId::parse(&probe) {
            return Err(ConfigError::new(
                format!("identity.trust_domains[{i}]"),
                format!("not a trust domain: {e}"),
            ));
        }
        if td.contains('/') {
            return Err(ConfigError::new(
                format!("identity.trust_domains[{i}]"),
                "not a trust domain: contains '/'",
            ));
        }
    }

    let mut names = HashSet::new();
    let mut rules = Vec::with_capacity(raw.authorization.rules.len());
    for (i, r) in raw.authorization.rules.into_iter().enumerate() {
        let at = |key: &str| format!("authorization.rules[{i}].{key}");
        if r.name.trim().is_empty() {
            return Err(ConfigError::new(at("name"), "must not be empty"));
        }
        if !names.insert(r.name.clone()) {
            return Err(ConfigError::new(
                at("name"),
                format!("duplicate rule name {:?}", r.name),
            ));
        }
        let action = match r.action {
            RawAction::Allow => RuleAction::Allow,
            RawAction::Deny => RuleAction::Deny,
        };
        if action == RuleAction::Deny && !r.pan.is_empty() {
            return Err(ConfigError::new(at("pan"), "a deny rule cannot grant PANs"));
        }
        let patterns = |key: &str, list: &[String]| -> Result<Vec<StrMatch>, ConfigError> {
            list.iter()
                .enumerate()
                .map(|(j, p)| {
                    StrMatch::compile(p)
                        .map_err(|e| ConfigError::new(format!("{}[{j}]", at(key)), e))
                })
                .collect()
        };
        let methods = |key: &str, list: Vec<String>| -> Result<Vec<String>, ConfigError> {
            for (j, m) in list.iter().enumerate() {
                if m.is_empty() || !m.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(ConfigError::new(
                        format!("{}[{j}]", at(key)),
                        "not an HTTP method",
                    ));
                }
            }
            Ok(list)
        };
        rules.push(Rule {
            principals: patterns("principals", &r.principals)?,
            not_principals: patterns("not_principals", &r.not_principals)?,
            namespaces: patterns("namespaces", &r.namespaces)?,
            not_namespaces: patterns("not_namespaces", &r.not_namespaces)?,
            paths: patterns("paths", &r.paths)?,
            not_paths: patterns("not_paths", &r.not_paths)?,
            methods: methods("methods", r.methods)?,
            not_methods: methods("not_methods", r.not_methods)?,
            pan: PanGrant {
                request: r.pan.contains(&Direction::Request),
                response: r.pan.contains(&Direction::Response),
            },
            name: r.name,
            action,
        });
    }

    let red = raw.redaction;
    if red.keep_first > 8 {
        return Err(ConfigError::new(
            "redaction.keep_first",
            "at most 8 (PCI DSS 3.4.1 allows at most the BIN and the last four digits)",
        ));
    }
    if red.keep_last > 4 {
        return Err(ConfigError::new(
            "redaction.keep_last",
            "at most 4 (PCI DSS 3.4.1)",
        ));
    }
    let mask_char = match red.mask_char.as_bytes() {
        [c] if c.is_ascii_graphic() && !c.is_ascii_digit() => *c,
        _ => {
            return Err(ConfigError::new(
                "redaction.mask_char",
                "must be exactly one printable ASCII character that is not a digit",
            ))
        }
    };
    let mut pattern_names = HashSet::new();
    let mut patterns = Vec::with_capacity(red.patterns.len());
    for (i, p) in red.patterns.iter().enumerate() {
        if p.name.trim().is_empty() {
            return Err(ConfigError::new(
                format!("redaction.patterns[{i}].name"),
                "must not be empty",
            ));
        }
        if !pattern_names.insert(p.name.as_str()) {
            return Err(ConfigError::new(
                format!("redaction.patterns[{i}].name"),
                format!("duplicate pattern name {:?}", p.name),
            ));
        }
        let compiled = Pattern::compile(&p.name, &p.regex)
            .map_err(|e| ConfigError::new(format!("redaction.patterns[{i}].regex"), e))?;
        patterns.push(compiled);
    }

    let audit = compile_audit(raw.audit)?;

    let authorizer = Authorizer {
        source: id.source,
        require_mtls: id.require_mtls,
        min_tls_version,
        trust_domains: id.trust_domains,
        trust_xfcc: id.trust_xfcc,
        default_allow: raw.authorization.default_action == RawAction::Allow,
        screens: Screens::of(&rules),
        rules,
    };
    let findings = lint(&authorizer);
    if raw.strict && honour_strict {
        if let Some(first) = findings.first() {
            return Err(ConfigError::new(
                first.path.clone(),
                format!(
                    "{} [{}] (strict: {} linter finding(s) make the configuration invalid)",
                    first.message,
                    first.code,
                    findings.len()
                ),
            ));
        }
    }

    Ok(Policy {
        mode: raw.mode,
        strict: raw.strict,
        authorizer,
        findings,
        redaction: Redaction {
            request_headers: red.request_headers,
            request_body: red.request_body,
            response_headers: red.response_headers,
            response_body: red.response_body,
            masking: Masking {
                keep_first: red.keep_first,
                keep_last: red.keep_last,
                mask_char,
            },
            patterns: patterns.into(),
            compressed_body: red.compressed_body,
        },
        audit,
    })
}

#[cfg(test)]
mod tests;
