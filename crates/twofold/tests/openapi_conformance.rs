//! The OpenAPI document is true: schemathesis runs every one of its checks
//! against `twofold serve`, on SQLite and PostgreSQL, with a full
//! administrator's credentials and the document the server serves. Any 5xx,
//! any answer the document does not describe (status, headers, body), any
//! request the document allows and the server refuses or the other way
//! round fails the test with schemathesis's report and a `curl` line to
//! reproduce it.
//!
//! The run is bounded and seeded (`tests/openapi/schemathesis.toml`): about
//! a minute per backend, the same requests every time. schemathesis is a
//! Python program: `scripts/test.sh` installs the pinned version
//! (`tests/openapi/requirements.txt`) into `target/schemathesis`, where
//! this test finds it; `TWOFOLD_SCHEMATHESIS` may name another `st`.

mod common;

use common::Env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use twofold_testkit::db::Backend;

/// Far above a normal run, so only a hang trips it.
const RUN_LIMIT: Duration = Duration::from_mins(10);

fn schemathesis() -> PathBuf {
    if let Some(st) = std::env::var_os("TWOFOLD_SCHEMATHESIS").filter(|v| !v.is_empty()) {
        return PathBuf::from(st);
    }
    // target/<profile>/twofold → target/schemathesis/bin/st
    let installed = Path::new(common::BIN)
        .ancestors()
        .nth(2)
        .map(|target| target.join("schemathesis/bin/st"));
    match installed {
        Some(st) if st.exists() => st,
        _ => panic!(
            "schemathesis is not installed: run ./scripts/test.sh (it installs the pinned \
             version into target/schemathesis), or point TWOFOLD_SCHEMATHESIS at an `st`"
        ),
    }
}

async fn served_document_holds(backend: Backend) {
    let st = schemathesis();
    let env = Env::new(backend).await;
    let secret = env
        .ok(&[
            "service-account",
            "create",
            "conformance",
            "--role",
            "admin",
            "--perm",
            "all",
            "--scope",
            "all",
        ])
        .lines()
        .last()
        .unwrap()
        .to_string();
    let server = env.start();
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/openapi/schemathesis.toml"
    );
    let cert = env.data_dir().join("tls/cert.pem");
    let mut child = Command::new(&st)
        .args(["--config-file", config, "--no-color", "run"])
        .arg(server.url("/sdk/v1/openapi.json"))
        .args([
            "--checks",
            "all",
            "--auth",
            &format!("conformance:{secret}"),
        ])
        .arg("--tls-verify")
        .arg(&cert)
        // Nothing it keeps (examples, reports) lands in the source tree.
        .current_dir(env.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", st.display()));
    // Read the output on threads, so a full pipe never blocks the run.
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "schemathesis did not finish within {RUN_LIMIT:?}:\n{}",
                stdout.join().unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(
        status.success(),
        "schemathesis found the document and the server disagreeing ({status}):\n{stdout}\n{stderr}"
    );
    // A run that reached nothing would pass too: every operation was tested.
    let doc: serde_json::Value =
        serde_json::from_str(&twofold_web::sdk_api::openapi_document()).unwrap();
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert!(
        stdout.contains(&format!("Tested: {operations}\n")),
        "not every one of the {operations} operations was tested:\n{stdout}"
    );
    drop(server);
}

twofold_testkit::both_backends!(served_document_holds);
