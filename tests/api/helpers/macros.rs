//! Scenarios written once and run on each backend.

/// Runs each named scenario `async fn name(app: TestApp)` once per backend.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await;
                super::$name(app.expect("sqlite always runs")).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await {
                    super::$name(app).await;
                }
            }
        }
    )*};
}

/// Runs each named scenario `async fn name(app: TestApp)` once per backend, on a server whose
/// config the expression after `=>` (an `FnOnce(&mut Config)`) adjusts.
#[macro_export]
macro_rules! configured_backend_tests {
    ($($name:ident => $adjust:expr),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Sqlite, $adjust).await;
                super::$name(app.expect("sqlite always runs")).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Postgres, $adjust).await {
                    super::$name(app).await;
                }
            }
        }
    )*};
}
