//! The SQLite database holds password hashes, sealed seeds and the audit
//! log (issue 8): its file, -wal and -shm are the owner's only (0600),
//! whether the store creates the file or finds it readable by others.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use twofold_testkit::{Backend, TestDb};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The database file and the two files SQLite keeps beside it in WAL mode.
fn files(db: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .collect()
}

#[tokio::test]
async fn a_new_database_is_owner_only() {
    let test_db = TestDb::new(Backend::Sqlite).await.unwrap();
    let db = test_db.sqlite_path().unwrap();
    assert!(!db.exists());
    let store = test_db.store().await.unwrap();
    store.ping().await.unwrap();
    for file in files(db) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    store.close().await;
}

#[tokio::test]
async fn an_existing_database_readable_by_others_is_tightened() {
    let test_db = TestDb::new(Backend::Sqlite).await.unwrap();
    let db = test_db.sqlite_path().unwrap();
    // As an older release left it.
    test_db.store().await.unwrap().close().await;
    std::fs::set_permissions(db, std::fs::Permissions::from_mode(0o644)).unwrap();

    let store = test_db.store().await.unwrap();
    for file in files(db) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    store.close().await;
}
