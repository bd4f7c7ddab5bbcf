//! The dependency inventory (PCI DSS 6.3.2): `scripts/supply-chain.sh` passes cargo-deny's
//! license, ban and source checks, and writes a CycloneDX SBOM that is valid against the schema and
//! lists exactly the crates the module is built from; the license policy does refuse a license it
//! does not list; and the book (Developing) justifies every direct dependency.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::OnceLock;

/// What `scripts/supply-chain.sh` said; run once per test process (its tests share its output).
fn run_supply_chain() -> &'static str {
    static SAID: OnceLock<String> = OnceLock::new();
    SAID.get_or_init(supply_chain)
}

fn supply_chain() -> String {
    let out = Command::new(mesh::root().join("scripts/supply-chain.sh"))
        .output()
        .expect("run scripts/supply-chain.sh");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    said
}

/// `name@version` of every crate `cargo tree` resolves for the module (wasm32-wasip1, normal and
/// build dependencies), the crate itself excluded.
fn module_crates() -> BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--target",
            "wasm32-wasip1",
            "-e",
            "normal,build",
            "--prefix",
            "none",
        ])
        .current_dir(mesh::root())
        .output()
        .expect("run cargo tree");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next()?;
            let version = words.next()?.strip_prefix('v')?;
            Some(format!("{name}@{version}"))
        })
        .filter(|c| !c.starts_with("pci-mesh-guard@"))
        .collect()
}

#[test]
fn dependencies_pass_the_policy_and_the_sbom_lists_what_the_module_is_built_from() {
    let said = run_supply_chain();
    assert!(said.contains("bans ok, licenses ok, sources ok"), "{said}");
    assert!(said.contains("valid CycloneDX 1.5"), "{said}");
    let sbom: serde_json::Value = serde_json::from_slice(
        &std::fs::read(mesh::root().join("target/sbom/pci-mesh-guard.cdx.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(sbom["metadata"]["component"]["name"], "pci-mesh-guard");
    let components = sbom["components"].as_array().expect("components");
    let listed: BTreeSet<String> = components
        .iter()
        .map(|c| {
            format!(
                "{}@{}",
                c["name"].as_str().unwrap(),
                c["version"].as_str().unwrap()
            )
        })
        .collect();
    let built = module_crates();
    assert!(built.len() >= 20, "{built:?}");
    assert_eq!(
        listed, built,
        "the SBOM and the module's dependency tree differ"
    );
    for c in components {
        let name = c["name"].as_str().unwrap();
        assert_eq!(
            c["purl"].as_str().unwrap_or_default(),
            format!("pkg:cargo/{name}@{}", c["version"].as_str().unwrap()),
        );
        assert!(
            c["licenses"].as_array().is_some_and(|l| !l.is_empty()),
            "{name}: no license in the SBOM"
        );
    }
}

#[test]
fn the_license_policy_refuses_a_license_it_does_not_list() {
    run_supply_chain();
    // foldhash (in the module, through hashbrown) is Zlib-licensed: without Zlib it must fail.
    let policy = std::fs::read_to_string(mesh::root().join("deny.toml")).unwrap();
    let narrowed = policy.replace(r#", "Zlib""#, "");
    assert_ne!(narrowed, policy);
    let dir = mesh::root().join("target/sbom");
    let config = dir.join("deny-without-zlib.toml");
    std::fs::write(&config, narrowed).unwrap();
    let out = Command::new(mesh::root().join(".tools/bin/cargo-deny"))
        .arg("--config")
        .arg(&config)
        .args(["check", "licenses"])
        .current_dir(mesh::root())
        .output()
        .expect("run cargo-deny");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted without Zlib:\n{said}");
    assert!(said.contains("foldhash"), "{said}");
}

#[test]
fn the_book_justifies_every_direct_dependency() {
    let manifest = std::fs::read_to_string(mesh::root().join("Cargo.toml")).unwrap();
    let readme =
        std::fs::read_to_string(mesh::root().join("docs/src/developing/index.md")).unwrap();
    let mut in_deps = false;
    let mut names = vec![];
    for line in manifest.lines() {
        if line.starts_with('[') {
            in_deps = line.ends_with("dependencies]");
            continue;
        }
        if in_deps {
            if let Some((name, _)) = line.split_once(" = ") {
                names.push(name.trim().to_owned());
            }
        }
    }
    assert!(names.len() >= 8, "{names:?}");
    for name in names {
        assert!(
            readme.contains(&format!("\n| `{name}` |")),
            "the dependency table of docs/src/developing/index.md has no line for {name}"
        );
    }
}
