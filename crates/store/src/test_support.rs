//! What the crate's own tests set up alike.

use time::OffsetDateTime;
use twofold_core::audit::{NewAuditEvent, ResultCode};
use twofold_core::factors::{NewOathToken, OathAlgorithm, OathKind, OathParams};
use twofold_core::user::NewUser;

use crate::SqlStore;

fn setup_event() -> NewAuditEvent {
    NewAuditEvent {
        at: OffsetDateTime::now_utc(),
        actor: "test".into(),
        via: None,
        subject: None,
        event: "test.setup".into(),
        method: None,
        result: ResultCode::Success,
        source_ip: None,
        detail: None,
    }
}

/// A user `name` with one HOTP token at counter 0: their ids.
pub(crate) async fn user_with_token(store: &SqlStore, name: &str) -> (i64, i64) {
    let new = NewUser {
        username: name.into(),
        ..NewUser::default()
    };
    let user = store.create_user(&new, &setup_event()).await.unwrap();
    let token = NewOathToken {
        label: "t".into(),
        params: OathParams {
            kind: OathKind::Hotp,
            algorithm: OathAlgorithm::Sha1,
            digits: 6,
            period: 30,
        },
        sealed_secret: "sealed".into(),
        counter: 0,
    };
    let token = store
        .add_oath_token(user.id, &token, &setup_event())
        .await
        .unwrap();
    (user.id, token.id)
}
