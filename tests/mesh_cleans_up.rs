//! The harness leaves no process behind: after a mesh is dropped, backend and sidecars are gone.
#![cfg(not(target_arch = "wasm32"))]

mod mesh;

use mesh::{Mesh, Request};

#[test]
fn mesh_processes_are_gone_after_each_run() {
    for envoy in mesh::envoys() {
        let mesh = Mesh::builder(&envoy, "cleanup")
            .config(r#"{"authorization":{"default_action":"allow"}}"#)
            .start()
            .unwrap_or_else(|e| panic!("Envoy {}: {}\n{}", envoy.version, e.what, e.log));
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
                envoy.version
            );
        }
        assert!(
            !dir.exists(),
            "mesh directory left behind: {}",
            dir.display()
        );
    }
}
