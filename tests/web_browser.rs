//! End to end in headless Chromium: sign in, see a ticket arrive live, reply, change the
//! status, get told about an assignment, edit a rule; screenshots of the main pages go to
//! target/screenshots/. Without chromedriver the suite is skipped with a reason, except in CI.

mod support;

use std::time::Duration;

use chrono::Utc;
use fantoccini::{Client, Locator};
use helpdesk::store::manage;
use support::browser::{browser, require_chromedriver, screenshot, start_driver};
use support::web::{PASSWORD, WebApp};

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

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .expect(css)
        .click()
        .await
        .expect("clicked");
}

#[tokio::test]
async fn an_admin_works_a_ticket_in_the_browser() {
    let Some(chromedriver) = require_chromedriver() else {
        return;
    };
    let app = WebApp::new(support::sqlite().await).await;
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
    let driver = start_driver(&chromedriver).await;
    let client = browser(&driver).await;

    // Sign in.
    client.goto(&format!("{base}/tickets")).await.expect("page");
    wait_for(&client, "//h1[.='Sign in']").await;
    screenshot(&client, "login").await;
    fill(&client, "input[name=email]", "admin@helpdesk.example").await;
    fill(&client, "input[name=password]", PASSWORD).await;
    click(&client, "form button[type=submit]").await;
    wait_for(&client, "//h1[.='Tickets']").await;

    // A ticket arrives while the list is open: it shows up without a reload.
    client
        .execute("window.stillTheSamePage = true;", vec![])
        .await
        .expect("marker");
    let number = app
        .ticket(
            "browser1@example.org",
            "Arrived while watching",
            "My printer is on fire.",
        )
        .await;
    let link = wait_for(&client, "//a[contains(., 'Arrived while watching')]").await;
    let same = client
        .execute("return window.stillTheSamePage === true;", vec![])
        .await
        .expect("marker read");
    assert_eq!(
        same,
        serde_json::Value::Bool(true),
        "the list updated in place"
    );
    screenshot(&client, "tickets").await;

    // Reply and change the status on the ticket page.
    link.click().await.expect("opened");
    wait_for(&client, &format!("//h1[contains(., '#{number}')]")).await;
    fill(
        &client,
        "#reply-form textarea[name=text]",
        "Please unplug it and call us.",
    )
    .await;
    click(&client, "#reply-form button[type=submit]").await;
    wait_for(
        &client,
        "//article[contains(@class, 'outbound')]//pre[contains(., 'Please unplug it')]",
    )
    .await;
    client
        .find(Locator::Css("#update-form select[name=status]"))
        .await
        .expect("status select")
        .select_by_value("pending")
        .await
        .expect("chosen");
    fill(
        &client,
        "#update-form input[name=reason]",
        "waiting for the customer",
    )
    .await;
    click(&client, "#update-form button[type=submit]").await;
    wait_for(
        &client,
        "//div[@id='ticket-facts']/span[contains(@class, 'status-pending')]",
    )
    .await;
    wait_for(
        &client,
        "//ol[@class='history']/li[contains(., 'waiting for the customer')]",
    )
    .await;

    // Another ticket is assigned to the admin elsewhere: a notice appears on this page.
    let other = app.ticket("browser2@example.org", "For you", "Hello").await;
    manage::set_assignee(
        &app.db.store,
        other,
        Some(app.admin_id),
        &manage::Change {
            agent_id: app.agent_id,
            reason: Some("handing over"),
            now: Utc::now(),
        },
    )
    .await
    .expect("assigned");
    app.state.live.wake();
    wait_for(
        &client,
        &format!("//div[@id='live-notice']/a[contains(., 'Ticket #{other} was assigned to you')]"),
    )
    .await;
    screenshot(&client, "ticket").await;

    // Add a rule, then edit it.
    client
        .goto(&format!("{base}/admin/rules"))
        .await
        .expect("page");
    fill(
        &client,
        "#rule-editor input[name=name]",
        "Printers to technical",
    )
    .await;
    fill(
        &client,
        "#rule-editor textarea[name=conditions]",
        r#"[{"if": "text_contains", "any": ["printer"]}]"#,
    )
    .await;
    fill(
        &client,
        "#rule-editor textarea[name=actions]",
        &format!(
            r#"[{{"then": "set_department", "department": {}}}]"#,
            app.technical
        ),
    )
    .await;
    click(&client, "#rule-editor button[type=submit]").await;
    wait_for(
        &client,
        "//table[@class='rules']//a[.='Printers to technical']",
    )
    .await
    .click()
    .await
    .expect("edit");
    wait_for(&client, "//h2[contains(., 'Edit rule')]").await;
    fill(
        &client,
        "#rule-editor input[name=name]",
        "Printers and scanners",
    )
    .await;
    fill(
        &client,
        "#rule-editor textarea[name=conditions]",
        r#"[{"if": "text_contains", "any": ["printer", "scanner"]}]"#,
    )
    .await;
    click(&client, "#rule-editor button[type=submit]").await;
    wait_for(
        &client,
        "//table[@class='rules']//a[.='Printers and scanners']",
    )
    .await;
    // A mistake is explained on the page.
    fill(&client, "#rule-editor input[name=name]", "Broken").await;
    fill(&client, "#rule-editor textarea[name=actions]", "[]").await;
    click(&client, "#rule-editor button[type=submit]").await;
    wait_for(
        &client,
        "//p[@class='error' and contains(., 'has no actions')]",
    )
    .await;
    screenshot(&client, "rules").await;
    let rules = helpdesk::store::rules::list(&app.db.store)
        .await
        .expect("rules");
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].name, "Printers and scanners");

    for (page, heading) in [
        ("/", "Dashboard"),
        ("/admin/agents", "Agents"),
        ("/admin/departments", "Departments"),
        ("/admin/channels", "Channels"),
        ("/admin/jobs", "Job queue"),
    ] {
        client.goto(&format!("{base}{page}")).await.expect("page");
        wait_for(&client, &format!("//h1[.='{heading}']")).await;
        let name = if page == "/" {
            "dashboard"
        } else {
            page.trim_start_matches("/admin/")
        };
        screenshot(&client, name).await;
    }

    // A narrow screen gets the same pages, laid out in one column.
    client.set_window_size(420, 900).await.expect("resized");
    client
        .goto(&format!("{base}/tickets/{number}"))
        .await
        .expect("page");
    wait_for(&client, &format!("//h1[contains(., '#{number}')]")).await;
    screenshot(&client, "ticket-narrow").await;

    client.close().await.expect("closed");
    let _ = stop.send(());
    let _ = server.await;
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

#[tokio::test]
async fn an_admin_watches_the_dashboard_and_manages_agents_tokens_and_webhooks() {
    let Some(chromedriver) = require_chromedriver() else {
        return;
    };
    for db in support::stores("web_browser_admin").await {
        let backend = db.backend();
        let session = Session::start(&chromedriver, db).await;
        let client = &session.client;
        let app = &session.app;

        // The dashboard is open when a ticket arrives: its figures change without a reload.
        client
            .execute("window.stillTheSamePage = true;", vec![])
            .await
            .expect("marker");
        wait_on_page(client, "//span[@data-figure='open' and .='0']").await;
        app.ticket(
            "dash1@example.org",
            "Arrived on the dashboard",
            "The lights are off.",
        )
        .await;
        wait_on_page(client, "//span[@data-figure='open' and .='1']").await;
        wait_on_page(client, "//span[@data-figure='unassigned' and .='1']").await;
        let same = client
            .execute("return window.stillTheSamePage === true;", vec![])
            .await
            .expect("marker read");
        assert_eq!(
            same,
            serde_json::Value::Bool(true),
            "{backend:?}: the dashboard updated in place"
        );
        let suffix = format!("{backend:?}").to_lowercase();
        screenshot(client, &format!("dashboard-live-{suffix}")).await;
        // A figure leads to the tickets it counts.
        click(
            client,
            "a.tile[href^='/tickets?sla=first_response_due_soon']",
        )
        .await;
        wait_on_page(client, "//h1[.='Tickets']").await;
        wait_on_page(
            client,
            "//select[@name='sla']/option[@value='first_response_due_soon' and @selected]",
        )
        .await;

        // An agent's chat ids: a typo is explained and kept in the form, then fixed.
        session.open("/admin/agents", "Agents").await;
        let form = format!("#chat-ids-{}", app.agent_id);
        fill(client, &format!("{form} input[name=telegram]"), "42o42").await;
        click(client, &format!("{form} button[type=submit]")).await;
        wait_on_page(
            client,
            "//form[contains(@class, 'chat-ids')]/p[@class='error' and contains(., 'must be a number')]",
        )
        .await;
        screenshot(client, &format!("agents-chat-ids-error-{suffix}")).await;
        fill(client, &format!("{form} input[name=telegram]"), "4242").await;
        fill(
            client,
            &format!("{form} input[name=discord]"),
            "80351110224678912",
        )
        .await;
        click(client, &format!("{form} button[type=submit]")).await;
        wait_on_page(
            client,
            &format!(
                "//form[@id='chat-ids-{}']//input[@name='telegram' and @value='4242']",
                app.agent_id
            ),
        )
        .await;
        let agents = helpdesk::store::agents::list_agents(&app.db.store)
            .await
            .expect("agents");
        let abe = agents.iter().find(|a| a.id == app.agent_id).expect("agent");
        assert_eq!(abe.identities, "discord:80351110224678912, telegram:4242");

        // An API token: its secret is shown once.
        session.open("/admin/tokens", "API tokens").await;
        fill(client, "#token-form input[name=name]", "Nightly export").await;
        click(client, "#token-form button[type=submit]").await;
        let secret = wait_on_page(client, "//code[@id='secret-value']")
            .await
            .text()
            .await
            .expect("secret");
        assert!(secret.starts_with("hd_"));
        screenshot(client, &format!("tokens-{suffix}")).await;
        session.open("/admin/tokens", "API tokens").await;
        wait_on_page(client, "//td[.='Nightly export']").await;
        let source = client.source().await.expect("page source");
        assert!(!source.contains(&secret), "the token is not shown again");
        click(client, "form[action$='/revoke'] button").await;
        wait_on_page(client, "//td[starts-with(., 'revoked')]").await;

        // A webhook for two events; its deliveries have their own page.
        session.open("/admin/webhooks", "Webhooks").await;
        fill(
            client,
            "#webhook-form input[name=url]",
            "https://crm.example.com/helpdesk",
        )
        .await;
        click(client, "#webhook-form input[value='ticket.created']").await;
        click(client, "#webhook-form input[value='ticket.status_changed']").await;
        click(client, "#webhook-form button[type=submit]").await;
        wait_on_page(client, "//code[@id='secret-value']").await;
        wait_on_page(client, "//td[.='ticket.created,ticket.status_changed']").await;
        screenshot(client, &format!("webhooks-{suffix}")).await;
        click(client, "a[href^='/admin/webhooks/']").await;
        wait_on_page(client, "//h2[.='Recent deliveries']").await;
        screenshot(client, &format!("webhook-{suffix}")).await;

        session.finish().await;
    }
}

#[tokio::test]
async fn a_person_changes_their_password_at_account_and_other_sessions_end() {
    let Some(chromedriver) = require_chromedriver() else {
        return;
    };
    for db in support::stores("web_browser_account").await {
        let session = Session::start(&chromedriver, db).await;
        let client = &session.client;
        let app = &session.app;
        let elsewhere = app.admin().await;

        // The name in the top bar leads to the account page.
        click(client, "header.top a.who").await;
        wait_on_page(client, "//h1[.='Your account']").await;
        wait_on_page(client, "//dd[.='admin@helpdesk.example']").await;

        // A wrong current password is refused and explained.
        fill(client, "input[name=current]", "not the password").await;
        fill(client, "input[name=password]", "a brand new secret").await;
        fill(client, "input[name=again]", "a brand new secret").await;
        click(client, "#password button[type=submit]").await;
        wait_on_page(
            client,
            "//p[@class='error' and contains(., 'current password is not right')]",
        )
        .await;
        screenshot(client, "account-error").await;

        fill(client, "input[name=current]", PASSWORD).await;
        fill(client, "input[name=password]", "a brand new secret").await;
        fill(client, "input[name=again]", "a brand new secret").await;
        click(client, "#password button[type=submit]").await;
        wait_on_page(client, "//p[@id='password-changed']").await;
        screenshot(client, "account").await;
        // This browser stays signed in; the other session has ended.
        session.open("/tickets", "Tickets").await;
        assert_eq!(
            app.get("/", Some(&elsewhere)).await.status,
            axum::http::StatusCode::SEE_OTHER
        );

        // Signing out and in again takes the new password.
        click(client, "form.signout button[type=submit]").await;
        wait_on_page(client, "//h1[.='Sign in']").await;
        fill(client, "input[name=email]", "admin@helpdesk.example").await;
        fill(client, "input[name=password]", "a brand new secret").await;
        click(client, "form button[type=submit]").await;
        wait_on_page(client, "//h1[.='Dashboard']").await;

        session.finish().await;
    }
}
