//! Files with secrets in them are the owner's only (issue 8): the SQLite
//! database, its -wal and -shm files and the log files are created 0600
//! (the log directory 0700) whatever the umask, here the usual 022.

#[macro_use]
mod common;

use common::{client_trusting, Env};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use twofold_testkit::db::Backend;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_and_log_files_are_owner_only() {
    let env = Env::new(Backend::Sqlite).await;
    let db = env
        .db
        .sqlite_path()
        .expect("a SQLite test database")
        .to_path_buf();
    let logs = env.data_dir().join("logs");
    let server = env.start();
    env.ok(&["settings", "set", "portal.logging", "true"]);

    // The server keeps the database open, so its -wal and -shm files exist.
    let client = client_trusting(&env.data_dir().join("tls/cert.pem"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let log_file = loop {
        client.get(server.url("/readyz")).send().await.unwrap();
        let written = std::fs::read_dir(&logs)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0));
        if let Some(file) = written {
            break file;
        }
        assert!(
            Instant::now() < deadline,
            "no log file in {}",
            logs.display()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    for file in [
        db.clone(),
        with_suffix(&db, "-wal"),
        with_suffix(&db, "-shm"),
        log_file,
    ] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    assert_eq!(mode(&logs), 0o700, "{}", logs.display());
    drop(server);
}
