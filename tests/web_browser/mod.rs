//! End to end in headless Chromium: sign in, see a ticket arrive live, reply, change the
//! status, get told about an assignment, edit a rule; screenshots of the main pages go to
//! target/screenshots/. Without chromedriver the suite is skipped with a reason, except in CI.


use crate::support;
use std::time::Duration;

use chrono::Utc;
use fantoccini::{Client, Locator};
use helpdesk::store::manage;
use crate::support::browser::{browser, browser_with, require_chromedriver, screenshot, start_driver};
use crate::support::web::{PASSWORD, WebApp};

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

    // Add a rule on the form (conditions and actions from lists), then edit it.
    client
        .goto(&format!("{base}/admin/rules"))
        .await
        .expect("page");
    click(&client, "a[href='/admin/rules/new']").await;
    wait_for(&client, "//h1[.='New rule']").await;
    fill(
        &client,
        "#rule-editor input[name=name]",
        "Printers to technical",
    )
    .await;
    choose(
        &client,
        "#rule-editor select[name=new_condition]",
        "text_contains",
    )
    .await;
    click(&client, "#rule-editor button[value=add_condition]").await;
    wait_for(&client, "//input[@name='c1_if' and @value='text_contains']").await;
    fill(&client, "#rule-editor input[name=c1_value]", "printer").await;
    choose(
        &client,
        "#rule-editor select[name=new_action]",
        "set_department",
    )
    .await;
    click(&client, "#rule-editor button[value=add_action]").await;
    wait_for(&client, "//select[@name='a1_value']").await;
    choose(
        &client,
        "#rule-editor select[name=a1_value]",
        &app.technical.to_string(),
    )
    .await;
    click(&client, "#rule-editor .row button[value=save]").await;
    wait_on_page(
        &client,
        "//table[@class='rules']//li[.='department → Technical']",
    )
    .await;
    wait_for(
        &client,
        "//table[@class='rules']//a[.='Printers to technical']",
    )
    .await
    .click()
    .await
    .expect("edit");
    wait_for(&client, "//h1[contains(., 'Edit rule')]").await;
    screenshot(&client, "rule-edit").await;
    fill(
        &client,
        "#rule-editor input[name=name]",
        "Printers and scanners",
    )
    .await;
    fill(
        &client,
        "#rule-editor input[name=c1_value]",
        "printer, scanner",
    )
    .await;
    // Enter in a text field saves (it does not press the first row's "Remove").
    client
        .find(Locator::Css("#rule-editor input[name=c1_value]"))
        .await
        .expect("field")
        .send_keys("\u{E007}")
        .await
        .expect("enter");
    wait_on_page(
        &client,
        "//table[@class='rules']//a[.='Printers and scanners']",
    )
    .await;
    screenshot(&client, "rules-list").await;
    // A mistake is explained on the page.
    client
        .goto(&format!("{base}/admin/rules/new"))
        .await
        .expect("page");
    fill(&client, "#rule-editor input[name=name]", "Broken").await;
    click(&client, "#rule-editor .row button[value=save]").await;
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

#[tokio::test]
async fn an_admin_sees_the_customer_renames_and_merges_their_records() {
    let Some(chromedriver) = require_chromedriver() else {
        return;
    };
    for db in support::stores("web_browser_customers").await {
        let backend = db.backend();
        let suffix = format!("{backend:?}").to_lowercase();
        let session = Session::start(&chromedriver, db).await;
        let client = &session.client;
        let app = &session.app;
        let first = app
            .mail_from(
                "Pia Pedersen <pia@customer.example>",
                "b1@example.org",
                "Printer jam",
            )
            .await;
        let second = app
            .mail_from(
                "Pia Pedersen <pia@customer.example>",
                "b2@example.org",
                "Toner empty",
            )
            .await;
        let private = app
            .mail_from(
                "P. Pedersen <p.private@mail.example>",
                "b3@example.org",
                "Invoice address",
            )
            .await;

        // The ticket page's panel: the customer, their address, their other ticket.
        session
            .open(
                &format!("/tickets/{first}"),
                &format!("#{first} Printer jam"),
            )
            .await;
        wait_on_page(
            client,
            "//section[@id='customer-panel']//span[@class='address' and .='pia@customer.example']",
        )
        .await;
        wait_on_page(
            client,
            &format!(
                "//section[@id='customer-panel']//a[@href='/tickets/{second}' and contains(., 'Toner empty')]/following-sibling::span[contains(@class, 'status-new')]"
            ),
        )
        .await;
        screenshot(client, &format!("ticket-customer-{suffix}")).await;

        // Search by address in the ticket list.
        session.open("/tickets", "Tickets").await;
        fill(client, "form.filters input[name=q]", "pia@customer.example").await;
        click(client, "form.filters button[type=submit]").await;
        wait_on_page(client, "//table[@class='tickets']//a[.='Toner empty']").await;
        let source = client.source().await.expect("page source");
        assert!(
            source.contains("Printer jam") && !source.contains("Invoice address"),
            "{backend:?}"
        );

        // The customers page: search, then the customer's own page.
        click(client, "header nav a[href='/customers']").await;
        wait_on_page(client, "//h1[.='Customers']").await;
        fill(client, "form.filters input[name=q]", "pedersen").await;
        click(client, "form.filters button[type=submit]").await;
        wait_on_page(client, "//table[@class='customers']//a[.='P. Pedersen']").await;
        screenshot(client, &format!("customers-{suffix}")).await;
        client
            .find(Locator::XPath(
                "//table[@class='customers']//a[.='Pia Pedersen']",
            ))
            .await
            .expect("link")
            .click()
            .await
            .expect("opened");
        wait_on_page(client, "//h1[contains(., 'Pia Pedersen')]").await;

        // Rename, then merge the other record into this one after the confirmation.
        fill(client, "#rename-form input[name=name]", "Pia P. Pedersen").await;
        click(client, "#rename-form button[type=submit]").await;
        wait_on_page(client, "//h1[contains(., 'Pia P. Pedersen')]").await;
        fill(
            client,
            "#merge-form input[name=other]",
            "p.private@mail.example",
        )
        .await;
        click(client, "#merge-form button[type=submit]").await;
        wait_on_page(
            client,
            "//section[@id='merge-confirm']//span[@class='address' and .='p.private@mail.example']",
        )
        .await;
        screenshot(client, &format!("customer-merge-{suffix}")).await;
        click(client, "#merge-confirm button[type=submit]").await;
        wait_on_page(
            client,
            "//p[@role='status' and contains(., 'was merged into this one')]",
        )
        .await;
        wait_on_page(
            client,
            &format!("//table[@class='tickets']//a[@href='/tickets/{private}']"),
        )
        .await;
        wait_on_page(
            client,
            "//section[@id='identities']//span[@class='address' and .='p.private@mail.example']",
        )
        .await;
        screenshot(client, &format!("customer-{suffix}")).await;

        session.finish().await;
    }
}

#[tokio::test]
async fn merging_another_customers_ticket_asks_for_confirmation_in_the_browser() {
    let Some(chromedriver) = require_chromedriver() else {
        return;
    };
    for db in support::stores("web_browser_merge").await {
        let session = Session::start(&chromedriver, db).await;
        let client = &session.client;
        let app = &session.app;
        let mut numbers = Vec::new();
        for (from, id, subject) in [
            (
                "Max Muster <max@example.org>",
                "bm-1@example.org",
                "VPN down",
            ),
            (
                "Pia Example <pia@example.org>",
                "bp-1@example.org",
                "VPN down too",
            ),
        ] {
            let raw = support::mail(
                &[
                    &format!("From: {from}"),
                    &format!("Subject: {subject}"),
                    &format!("Message-ID: <{id}>"),
                ],
                "Cannot connect.",
            );
            match app.db.intake.accept_email(raw).await.expect("taken in") {
                helpdesk::intake::Outcome::Created { number, .. } => numbers.push(number),
                other => panic!("{other:?}"),
            }
        }
        let (max, pia) = (numbers[0], numbers[1]);

        client
            .goto(&format!("{}/tickets/{pia}", session.base))
            .await
            .expect("page");
        wait_on_page(client, &format!("//h1[contains(., '#{pia}')]")).await;
        fill(client, "#merge-form input[name=into]", &max.to_string()).await;
        fill(client, "#merge-form input[name=reason]", "same outage").await;
        click(client, "#merge-form button[type=submit]").await;
        // Asked first, with whose messages move where.
        wait_on_page(
            client,
            &format!(
                "//p[@id='merge-plan' and contains(., 'The one message of Pia Example \
                 (pia@example.org) on #{pia} moves to #{max} of Max Muster (max@example.org).')]"
            ),
        )
        .await;
        screenshot(client, "merge-confirm").await;
        assert_eq!(
            app.detail(pia).await.summary.status,
            "new",
            "nothing is merged before the confirmation"
        );
        click(client, "#merge-confirm button[type=submit]").await;
        wait_on_page(client, &format!("//h1[contains(., '#{max}')]")).await;
        wait_on_page(
            client,
            &format!("//ol[@class='history']/li[contains(., '#{pia} merged into this ticket')]"),
        )
        .await;

        // The merged ticket points on and offers no reply or merge form.
        client
            .goto(&format!("{}/tickets/{pia}", session.base))
            .await
            .expect("page");
        wait_on_page(
            client,
            &format!("//p[@id='merged-notice']/a[@href='/tickets/{max}']"),
        )
        .await;
        assert!(client.find(Locator::Css("#reply-form")).await.is_err());
        assert!(client.find(Locator::Css("#merge-form")).await.is_err());
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
