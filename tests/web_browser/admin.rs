//! The dashboard, agents, tokens, webhooks and customers' records in the browser.

use super::*;

store_test! {
    #[tokio::test]
    async fn an_admin_watches_the_dashboard_and_manages_agents_tokens_and_webhooks(db: TestStore) {
        let Some(chromedriver) = require_chromedriver() else {
            return;
        };
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

store_test! {
    #[tokio::test]
    async fn an_admin_sees_the_customer_renames_and_merges_their_records(db: TestStore) {
        let Some(chromedriver) = require_chromedriver() else {
            return;
        };
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
