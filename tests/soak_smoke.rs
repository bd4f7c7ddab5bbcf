//! A short run of `scripts/soak.sh` (the million-request soak is run by hand): the script's
//! accounting holds on a few thousand requests: only 200 and 403 answers, as many access events
//! and plugin counts as requests the server saw, and an audit trail that verifies.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

#[test]
fn a_short_soak_passes_its_own_checks() {
    for envoy in mesh::each_build() {
        let dir = mesh::root()
            .join("target/e2e")
            .join(format!("soak-{}", std::process::id()));
        let mut cmd = mesh::script("soak.sh", &envoy);
        cmd.arg("5000").arg(&dir).env("PMG_SOAK_ROUND", "2");
        let out = cmd.output().expect("run scripts/soak.sh");
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{said}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert!(said.contains("soak passed"), "{said}");
        let line = said
            .lines()
            .find(|l| l.starts_with("server HTTP requests"))
            .expect("the accounting line");
        let numbers: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit() && c != ',')
            .filter_map(|w| w.replace(',', "").parse().ok())
            .collect();
        assert_eq!(numbers.len(), 3, "{line}");
        assert!(
            numbers[0] >= 5000 && numbers.iter().all(|n| *n == numbers[0]),
            "{line}"
        );
    }
}
