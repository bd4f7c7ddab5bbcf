//! The harness leaves no process behind: after a mesh is dropped, backend and sidecars are gone.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use mesh::{Mesh, Request};

#[test]
fn mesh_processes_are_gone_after_each_run() {
    for envoy in mesh::envoys() {
        let mesh = Mesh::builder(&envoy, "cleanup")
            .config(r#"{"authorization":{"default_action":"allow"}}"#)
            .up();
        assert_eq!(mesh.send("checkout", Request::get("/")).status, 200);
        let pids = mesh.pids();
        assert_eq!(pids.len(), 3, "backend, server and client: {pids:?}");
        assert!(pids.iter().all(|(_, pid)| mesh::process_alive(*pid)));
        let dir = mesh.dir.clone();
        drop(mesh);
        for (name, pid) in pids {
            assert!(
                !mesh::process_alive(pid),
                "Envoy {}: {name} (pid {pid}) still running",
                envoy
            );
        }
        assert!(
            !dir.exists(),
            "mesh directory left behind: {}",
            dir.display()
        );
    }
}

#[test]
fn the_log_check_sees_pans_in_any_printed_form() {
    for line in [
        "x 4111111111111111 y",
        "card=4111 1111 1111 1111",
        "q=4111%201111%201111%201111&",
        "5555-5555-5555-4444",
    ] {
        let digits = mesh::joined_digits_for_tests(line);
        assert!(mesh::TEST_PANS.iter().any(|p| digits.contains(p)), "{line}");
    }
    assert!(!mesh::joined_digits_for_tests("**** **** **** 1111").contains("1111111"));
}
