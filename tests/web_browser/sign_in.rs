//! Signing in over plain HTTP at a host name says why it cannot work.

use super::*;

/// Serves `state` on a free loopback port until the sender is dropped or fired.
async fn serve(
    state: helpdesk::web::AppState,
) -> (
    u16,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("port");
    let port = listener.local_addr().expect("address").port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(helpdesk::web::serve_on(listener, state, async move {
        let _ = stopped.await;
    }));
    (port, stop, server)
}

#[tokio::test]
async fn signing_in_over_plain_http_at_a_host_name_says_why_it_cannot_work() {
    let Some(chromedriver) = require_chromedriver() else {
        return;
    };
    let app = WebApp::new(support::sqlite().await).await;
    // The default web.public_url is loopback, so the session cookie is Secure.
    assert!(app.state.config.secure_cookies);
    let (port, stop, server) = serve(app.state.clone()).await;
    let driver = start_driver(&chromedriver).await;
    // A host name that is not loopback, resolved to the test server; no HTTPS upgrade attempts.
    let client = browser_with(
        &driver,
        &[
            "--host-resolver-rules=MAP helpdesk.test 127.0.0.1",
            "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
        ],
    )
    .await;
    let sign_in = |port: u16| {
        let client = client.clone();
        async move {
            client
                .goto(&format!("http://helpdesk.test:{port}/login"))
                .await
                .expect("page");
            wait_for(&client, "//h1[.='Sign in']").await;
            fill(&client, "input[name=email]", "admin@helpdesk.example").await;
            fill(&client, "input[name=password]", PASSWORD).await;
            click(&client, "form button[type=submit]").await;
        }
    };
    sign_in(port).await;
    let error = wait_on_page(
        &client,
        "//p[@class='error' and contains(., 'web.public_url')]",
    )
    .await;
    let text = error.text().await.expect("text");
    assert!(
        text.contains(&format!("http://helpdesk.test:{port}")) && text.contains("plain HTTP"),
        "{text}"
    );
    screenshot(&client, "sign-in-plain-http").await;
    let _ = stop.send(());
    let _ = server.await;

    // With web.public_url naming that address, the cookie goes without Secure and sign-in works.
    let mut config = (*app.state.config).clone();
    config.public_url = format!("http://helpdesk.test:{port}");
    config.secure_cookies = false;
    let state = helpdesk::web::AppState::new(app.db.store.clone(), config);
    let (port, stop, server) = serve(state).await;
    sign_in(port).await;
    wait_on_page(&client, "//h1[.='Dashboard']").await;
    client.close().await.expect("closed");
    let _ = stop.send(());
    let _ = server.await;
}
