//! `store_test!`: one test body run on every store, the way ripgrep's `rgtest!` reruns a test
//! on a second regex engine.
//!
//! ```ignore
//! store_test! {
//!     #[tokio::test]
//!     async fn replies_thread(db: TestStore) { ... }
//! }
//! ```
//!
//! expands into `mod replies_thread { fn sqlite; fn postgres }`, so `cargo test replies_thread`
//! runs both and `cargo test sqlite` only the SQLite half. The argument's type, a name in
//! `support`, says what the test starts from (a `support::Fixture`: `TestStore`, `WebApp`, or
//! `Env`, a data directory for the binary). The PostgreSQL half creates a database named after
//! the test's module path; without `DATABASE_URL` it prints SKIPPED and passes, except under
//! `CI=true`, where it fails.

macro_rules! store_test {
    ($(#[$attr:meta])* async fn $name:ident($arg:ident: $ty:ident $(,)?) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($arg: $crate::support::$ty) $body

            $(#[$attr])*
            async fn sqlite() {
                body(<$crate::support::$ty as $crate::support::Fixture>::sqlite().await).await;
            }

            $(#[$attr])*
            async fn postgres() {
                let Some(server) = $crate::support::postgres_url() else {
                    eprintln!("SKIPPED: DATABASE_URL is not set; the PostgreSQL half needs it");
                    return;
                };
                let name = $crate::support::database_name(module_path!());
                let fixture =
                    <$crate::support::$ty as $crate::support::Fixture>::postgres(&server, &name);
                body(fixture.await).await;
            }
        }
    };
}
