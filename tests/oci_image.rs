//! The OCI image Istio pulls for a WasmPlugin: `scripts/oci.sh` packages the filter reproducibly,
//! skopeo accepts the layout and pushes it to a registry (Debian's `docker-registry`, on loopback),
//! and another client (oras) pulls it back and reads it as Istio's agent does: the manifest digest
//! a WasmPlugin's `sha256` is compared with, and the module in the last layer's tar.gz.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// A registry on 127.0.0.1, storing into a directory of its own; stopped and removed on drop.
struct Registry {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Registry {
    fn start() -> Registry {
        let port = mesh::free_port();
        let dir = std::env::temp_dir().join(format!("pmg-registry-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let child = mesh::die_with_parent(
            Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .spawn()
        .expect("start docker-registry (scripts/tools.sh installs it)");
        let registry = Registry { child, dir, port };
        let up = mesh::eventually(Duration::from_secs(20), || {
            let out = Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
                .arg(format!("http://127.0.0.1:{port}/v2/"))
                .output()
                .ok()?;
            (out.stdout == b"200").then_some(())
        });
        assert!(up.is_some(), "the registry did not come up");
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A directory of the test's own, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("pmg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `scripts/oci.sh` on the filter under test, writing the layout to `layout`; returns the
/// digest it printed.
fn oci_sh(layout: &Path, args: &[&str]) -> String {
    let out = Command::new(mesh::root().join("scripts/oci.sh"))
        .arg("--wasm")
        .arg(mesh::wasm())
        .arg("--layout")
        .arg(layout)
        .args(args)
        .output()
        .expect("run scripts/oci.sh");
    assert!(
        out.status.success(),
        "scripts/oci.sh {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(
        digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "not a digest: {digest:?}"
    );
    digest
}

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn the_image_is_reproducible_and_accepted_by_skopeo() {
    let tmp = TempDir::new("oci-repro");
    let (a, b) = (tmp.0.join("a"), tmp.0.join("b"));
    let first = oci_sh(&a, &["--tag", "repro"]);
    let second = oci_sh(&b, &["--tag", "repro"]);
    assert_eq!(first, second, "two builds of one module, two digests");
    let blobs = |dir: &Path| {
        let mut names: Vec<_> = std::fs::read_dir(dir.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    assert_eq!(blobs(&a), blobs(&b), "the same blobs, byte for byte");

    let layout = a;
    let out = Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:repro", layout.display()))
        .output()
        .expect("run skopeo (scripts/tools.sh installs it)");
    assert!(
        out.status.success(),
        "skopeo refused the layout: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspected["Digest"], format!("sha256:{first}"));
    assert_eq!(inspected["Os"], "wasip1");

    // Another module is another digest: the pin in a WasmPlugin tells builds apart.
    let mut other = std::fs::read(mesh::wasm()).unwrap();
    other.extend_from_slice(&[0, 4, 3, b'p', b'm', b'g']); // one more custom section
    std::fs::write(tmp.0.join("other.wasm"), &other).unwrap();
    let out = Command::new("python3")
        .arg(mesh::root().join("scripts/oci_image.py"))
        .arg(tmp.0.join("other.wasm"))
        .arg(tmp.0.join("other"))
        .arg("repro")
        .output()
        .unwrap();
    assert!(out.status.success());
    let other_digest = String::from_utf8(out.stdout).unwrap();
    assert_ne!(other_digest.trim(), format!("sha256:{first}"));
}

#[test]
fn a_pushed_image_pulls_back_with_the_digest_and_module_istio_checks() {
    let registry = Registry::start();
    let tmp = TempDir::new("oci-push");
    let reference = format!("127.0.0.1:{}/security/pci-mesh-guard:e2e", registry.port);
    let digest = oci_sh(
        &tmp.0,
        &["--tag", "e2e", "--push", &reference, "--insecure"],
    );

    let out = Command::new(mesh::tools_python())
        .arg(mesh::root().join("scripts/oci_pull.py"))
        .arg(&reference)
        .output()
        .expect("run scripts/oci_pull.py");
    assert!(
        out.status.success(),
        "oras could not pull the image: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pulled: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        pulled["manifest_digest"],
        format!("sha256:{digest}"),
        "the registry serves another manifest than the one whose digest oci.sh printed"
    );
    assert_eq!(
        pulled["layer_media_types"],
        serde_json::json!(["application/vnd.oci.image.layer.v1.tar+gzip"])
    );
    assert_eq!(
        pulled["module_sha256"].as_str(),
        Some(sha256_hex(&mesh::wasm()).as_str()),
        "plugin.wasm in the image is not the filter"
    );
}
