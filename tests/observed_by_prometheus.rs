//! What an operator's Prometheus and Grafana get: the alert rules pass their unit tests and each
//! has a runbook; the dashboard is what its generator writes; and under a real Prometheus scraping
//! the demo's server sidecar, the demo trips its alerts and every dashboard query parses, returns
//! data, and names only metrics the sidecar exports.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn promtool(args: &[&str]) -> Output {
    Command::new("promtool")
        .args(args)
        .current_dir(mesh::root().join("envoy-config/prometheus"))
        .output()
        .expect("run promtool (scripts/tools.sh installs Debian's prometheus)")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The alert names of `alerts.yaml`, in order.
fn alert_names() -> Vec<String> {
    let rules = std::fs::read_to_string(mesh::root().join("envoy-config/prometheus/alerts.yaml"))
        .expect("read alerts.yaml");
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(str::to_owned)
        .collect()
}

/// The metric names a PromQL text mentions (the plugin's and Envoy's).
fn metric_names(promql: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\b(pci_mesh_guard_[a-z_]+|envoy_[a-z_]+)\b").unwrap();
    re.find_iter(promql)
        .map(|m| m.as_str().to_owned())
        .collect()
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    let check = promtool(&["check", "rules", "alerts.yaml"]);
    assert!(check.status.success(), "{}", text(&check));
    assert!(
        text(&check).contains(&format!("SUCCESS: {} rules found", alert_names().len())),
        "{}",
        text(&check)
    );
    let test = promtool(&["test", "rules", "alerts_test.yaml"]);
    assert!(test.status.success(), "{}", text(&test));
}

#[test]
fn every_alert_has_a_severity_a_unit_test_and_a_runbook_page() {
    let names = alert_names();
    assert!(names.len() >= 9, "{names:?}");
    let dir = mesh::root().join("envoy-config/prometheus");
    let rules = std::fs::read_to_string(dir.join("alerts.yaml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("alerts_test.yaml")).unwrap();
    for (i, name) in names.iter().enumerate() {
        let rule = rules
            .split("- alert: ")
            .nth(i + 1)
            .expect("the rule's text");
        assert!(
            rule.contains("severity: critical") || rule.contains("severity: warning"),
            "{name}: no severity"
        );
        assert!(rule.contains("summary: "), "{name}: no summary");
        // The runbook: a page of the book whose title is the alert's name.
        let url = rule
            .split("runbook_url: \"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("{name}: no runbook_url"));
        let page = std::fs::read_to_string(mesh::root().join(url))
            .unwrap_or_else(|e| panic!("{name}: runbook_url {url}: {e}"));
        assert!(
            page.starts_with(&format!("# {name}\n")),
            "{name}: {url} is not its runbook"
        );
        let summary = std::fs::read_to_string(mesh::root().join("docs/src/SUMMARY.md")).unwrap();
        let in_book = url.trim_start_matches("docs/src/");
        assert!(
            summary.contains(&format!("({in_book})")),
            "{name}: {url} is not in the book"
        );
        let cases = tests.matches(&format!("alertname: {name}\n")).count();
        assert!(
            cases >= 2,
            "{name}: {cases} unit test case(s), want it firing and quiet"
        );
    }
}

#[test]
fn the_dashboard_is_what_its_generator_writes() {
    let out = Command::new(mesh::tools_python())
        .arg(mesh::root().join("scripts/dashboard.py"))
        .arg("--check")
        .output()
        .expect("run scripts/dashboard.py");
    assert!(out.status.success(), "{}", text(&out));
}

/// The dashboard's queries (`scripts/dashboard.py --queries`).
fn dashboard_queries() -> Vec<Value> {
    let out = Command::new(mesh::tools_python())
        .arg(mesh::root().join("scripts/dashboard.py"))
        .arg("--queries")
        .output()
        .expect("run scripts/dashboard.py");
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// Stops what `scripts/demo.sh --keep` left running, however the test ends.
struct Kept(PathBuf);

impl Drop for Kept {
    fn drop(&mut self) {
        let _ = Command::new(mesh::root().join("scripts/mesh.sh"))
            .arg("down")
            .arg(&self.0)
            .status();
    }
}

fn query(dir: &Path, promql: &str) -> Value {
    let out = Command::new(mesh::root().join("scripts/observe.sh"))
        .arg("query")
        .arg(dir)
        .arg(promql)
        .output()
        .expect("run scripts/observe.sh query");
    assert!(out.status.success(), "{promql}: {}", text(&out));
    serde_json::from_slice(&out.stdout).expect("Prometheus answers JSON")
}

/// The one metric the native build does not export: it has no VM.
const WASM_ONLY: &str = "pci_mesh_guard_vm_memory_bytes";

#[test]
fn the_demo_trips_alerts_in_a_real_prometheus_and_feeds_every_dashboard_query() {
    let label_values = regex::Regex::new(r"^label_values\((.*), ([a-z_]+)\)$").unwrap();
    for envoy in mesh::each_build() {
        let dir = mesh::root()
            .join("target/e2e")
            .join(format!("demo-observed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let kept = Kept(dir.clone());
        let mut cmd = mesh::script("demo.sh", &envoy);
        cmd.args(["--observe", "--keep"]).env("PMG_DEMO_DIR", &dir);
        let out = cmd.output().expect("run scripts/demo.sh");
        let shown = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "the demo failed:\n{shown}\n{}",
            text(&out)
        );

        // The alerts, as the demo shows them from Prometheus' API.
        let alerts = shown
            .split("Prometheus: the alerts the scenes tripped")
            .nth(1)
            .unwrap_or_default();
        for want in [
        "firing   PciMeshGuardPlaintextRefused (warning) namespace=payments,pod=payments-api-local,reason=no_mtls",
        "firing   PciMeshGuardUnscannableBodies (warning) direction=request,namespace=payments,pod=payments-api-local",
        "spiffe://cluster.local/ns/marketing/sa/newsletter",
    ] {
        assert!(alerts.contains(want), "{want:?} missing:\n{shown}");
    }
        assert!(
            !alerts.contains("PciMeshGuardAuditEventsDropped") && !alerts.contains("NotReporting"),
            "an alert the demo gives no cause for:\n{alerts}"
        );

        // The sidecar's own output is valid Prometheus text.
        let admin = std::fs::read_to_string(dir.join("server.admin")).expect("the admin address");
        let exported = mesh::admin_text(admin.trim(), "/stats/prometheus");
        let lint = mesh::promtool_lint_of_plugin_metrics(&exported);
        assert!(
            lint.is_empty(),
            "promtool's lint on the plugin's metrics: {lint:#?}"
        );

        // Every metric the dashboard and the alert rules name is one the sidecar exports.
        let queries = dashboard_queries();
        let rules =
            std::fs::read_to_string(mesh::root().join("envoy-config/prometheus/alerts.yaml"))
                .unwrap();
        let mut named = metric_names(&rules);
        for q in &queries {
            named.extend(metric_names(q["expr"].as_str().unwrap()));
        }
        assert!(named.len() >= 8, "{named:?}");
        // The VM's memory is the wasm build's alone (its dashboard panel stays empty otherwise).
        if envoy.is_native() {
            named.retain(|n| n != WASM_ONLY);
        }
        for name in &named {
            assert!(
                exported.contains(&format!("# TYPE {name} ")),
                "{name} is named by a query or rule but the sidecar does not export it"
            );
        }

        // Every dashboard query parses and returns data, with its variables as Grafana fills them
        // for "All" and a range of 5 minutes.
        for q in &queries {
            let expr = q["expr"].as_str().unwrap();
            if envoy.is_native() && expr.contains(WASM_ONLY) {
                continue;
            }
            let promql = match label_values.captures(expr) {
                Some(c) => format!("count by ({}) ({})", &c[2], &c[1]),
                None => expr.to_owned(),
            }
            .replace("$namespace", ".*")
            .replace("$pod", ".*")
            .replace("$__rate_interval", "1m")
            .replace("$__range", "5m");
            let answer = query(&dir, &promql);
            assert_eq!(answer["status"], "success", "{q}: {answer}");
            let result = answer["data"]["result"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert!(!result.is_empty(), "{q} returns no data: {answer}");
            if q["panel"] == "Top denied callers" {
                let callers: Vec<&str> = result
                    .iter()
                    .filter_map(|r| r["metric"]["caller"].as_str())
                    .collect();
                assert!(
                    callers.contains(&"spiffe://cluster.local/ns/marketing/sa/newsletter")
                        && callers.contains(&"unauthenticated"),
                    "{callers:?}"
                );
            }
        }
        drop(kept);
    }
}

/// The alert rules as a PrometheusRule and the dashboard as a ConfigMap (envoy-config/kubernetes/)
/// are what scripts/ops_manifests.py makes of their one source each, and valid for the operator's
/// and Kubernetes' resource types; a field those types do not define is refused.
#[test]
fn the_kubernetes_forms_of_rules_and_dashboard_follow_their_sources_and_validate() {
    let script = mesh::root().join("scripts/ops_manifests.py");
    let run = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(mesh::tools_python())
            .arg(&script)
            .args(args)
            .output()
            .expect("run scripts/ops_manifests.py")
    };
    let out = run(&["--check".as_ref()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = mesh::root().join("envoy-config/kubernetes");
    let rule = std::fs::read_to_string(dir.join("prometheusrule.yaml")).unwrap();
    for name in alert_names() {
        assert!(rule.contains(&format!("- alert: {name}\n")), "{name}");
    }
    let map = std::fs::read_to_string(dir.join("grafana-dashboard-configmap.yaml")).unwrap();
    assert!(map.contains("grafana_dashboard: '1'") || map.contains("grafana_dashboard: \"1\""));

    let bad = std::env::temp_dir().join(format!("pmg-rule-{}.yaml", std::process::id()));
    std::fs::write(
        &bad,
        rule.replacen("      expr: |", "      expresion: up\n      expr: |", 1),
    )
    .unwrap();
    let out = run(&["--validate".as_ref(), bad.as_os_str()]);
    let _ = std::fs::remove_file(&bad);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an unknown field passed");
    assert!(said.contains("rules[0].expresion: unknown field"), "{said}");
}
