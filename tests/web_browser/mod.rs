//! End to end in headless Chromium: sign in, see a ticket arrive live, reply, change the
//! status, close tickets in bulk from the list, get told about an assignment, edit a rule;
//! screenshots of the main pages go to target/screenshots/. Without chromedriver the suite is skipped with a reason, except in CI.

use crate::support;
use std::time::Duration;

use crate::support::browser::{
    browser, browser_with, require_chromedriver, screenshot, start_driver,
};
use crate::support::web::{PASSWORD, WebApp};
use chrono::Utc;
use fantoccini::{Client, Locator};

mod account;
mod admin;
mod bulk;
mod layout;
mod presence;
mod sign_in;
mod tickets;
mod unread;

const WAIT: Duration = Duration::from_secs(15);

async fn wait_for(client: &Client, xpath: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|error| panic!("no {xpath} within {WAIT:?}: {error}"))
}

/// Like `wait_for`, but a timeout shows the page it happened on (and saves its screenshot).
async fn wait_on_page(client: &Client, xpath: &str) -> fantoccini::elements::Element {
    match client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(xpath))
        .await
    {
        Ok(element) => element,
        Err(error) => {
            screenshot(client, "failed-step").await;
            let url = client.current_url().await.map(|url| url.to_string());
            let source = client.source().await.unwrap_or_default();
            panic!("no {xpath} within {WAIT:?} ({error}) on {url:?}:\n{source}")
        }
    }
}

async fn fill(client: &Client, css: &str, text: &str) {
    let field = client.find(Locator::Css(css)).await.expect(css);
    field.clear().await.expect("cleared");
    field.send_keys(text).await.expect("typed");
}

async fn choose(client: &Client, css: &str, value: &str) {
    client
        .find(Locator::Css(css))
        .await
        .expect(css)
        .select_by_value(value)
        .await
        .expect("chosen");
}

/// Clicks the element `css` finds. A live refresh may replace it between finding and
/// clicking; then the fresh one is clicked, as a person would.
async fn click(client: &Client, css: &str) {
    for _ in 0..5 {
        let element = client.find(Locator::Css(css)).await.expect(css);
        match element.click().await {
            Err(fantoccini::error::CmdError::Standard(error))
                if error.error == fantoccini::error::ErrorStatus::StaleElementReference =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            result => {
                result.expect("clicked");
                return;
            }
        }
    }
    panic!("{css} kept being replaced before it could be clicked");
}

/// A served app and a signed-in admin's browser.
struct Session {
    app: WebApp,
    base: String,
    client: Client,
    _driver: support::browser::Driver,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Session {
    async fn start(chromedriver: &std::path::PathBuf, db: support::TestStore) -> Session {
        let app = WebApp::new(db).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("port");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(helpdesk::web::serve_on(
            listener,
            app.state.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        let driver = start_driver(chromedriver).await;
        let client = browser(&driver).await;
        client.goto(&format!("{base}/login")).await.expect("page");
        wait_for(&client, "//h1[.='Sign in']").await;
        fill(&client, "input[name=email]", "admin@helpdesk.example").await;
        fill(&client, "input[name=password]", PASSWORD).await;
        click(&client, "form button[type=submit]").await;
        wait_for(&client, "//h1[.='Dashboard']").await;
        Session {
            app,
            base,
            client,
            _driver: driver,
            stop,
            server,
        }
    }

    async fn open(&self, path: &str, heading: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .expect("page");
        wait_for(&self.client, &format!("//h1[.='{heading}']")).await;
    }

    async fn finish(self) {
        self.client.close().await.expect("closed");
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}
