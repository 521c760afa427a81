//! Test harness shared by Twofold's crates.

pub mod browser;
pub mod caddy;
pub mod db;
pub mod freeradius;
pub mod mobile;
pub mod nginx;
pub mod slapd;
pub mod sms_gateway;
pub mod smtp;
pub mod twilio;

pub use db::{both, Backend, TestDb};

/// Generates one test per backend from async bodies that take a [`Backend`]:
/// for every `NAME`, `sqlite::NAME` calls `super::NAME(Backend::Sqlite)` and
/// `postgres::NAME` calls `super::NAME(Backend::Postgres)`. Those test names
/// are what CI prints and people grep, so they do not change.
///
/// ```text
/// // Bodies returning `()`, each on a two-worker multi-thread runtime
/// // (servers, clients and the database all make progress at once):
/// twofold_testkit::both_backends!(signs_in, signs_out);
///
/// // Another test attribute, and optionally a return type:
/// twofold_testkit::both_backends!(#[tokio::test] -> anyhow::Result<()>; round_trips);
///
/// // Each body run inside a wrapper taking its future (multi-thread, `()`),
/// // for macros that nest these modules one level deeper (`use super::*`
/// // there makes `super::NAME` resolve):
/// twofold_testkit::both_backends!(via |test| in_mode(Mode::Remote, test); signs_in);
/// ```
///
/// The caller needs `tokio` (for `#[tokio::test]`); `Backend` comes from
/// here and needs no import.
#[macro_export]
macro_rules! both_backends {
    (#[$test:meta] -> $ret:ty; $($name:ident),+ $(,)?) => {
        $crate::both_backends!(@tests #[$test] -> $ret; ::std::convert::identity; $($name),+);
    };
    (#[$test:meta]; $($name:ident),+ $(,)?) => {
        $crate::both_backends!(@tests #[$test] -> (); ::std::convert::identity; $($name),+);
    };
    (via $wrap:expr; $($name:ident),+ $(,)?) => {
        $crate::both_backends!(
            @tests #[tokio::test(flavor = "multi_thread", worker_threads = 2)] -> ();
            $wrap; $($name),+
        );
    };
    (@tests #[$test:meta] -> $ret:ty; $wrap:expr; $($name:ident),+) => {
        mod sqlite {
            $(
                #[$test]
                async fn $name() -> $ret {
                    ($wrap)(super::$name($crate::db::Backend::Sqlite)).await
                }
            )+
        }
        mod postgres {
            $(
                #[$test]
                async fn $name() -> $ret {
                    ($wrap)(super::$name($crate::db::Backend::Postgres)).await
                }
            )+
        }
    };
    ($($name:ident),+ $(,)?) => {
        $crate::both_backends!(
            @tests #[tokio::test(flavor = "multi_thread", worker_threads = 2)] -> ();
            ::std::convert::identity; $($name),+
        );
    };
}
