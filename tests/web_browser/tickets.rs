//! An admin works a ticket in the browser, and merges another customer's ticket.

use super::*;

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
    helpdesk::ops::apply(
        &app.db.store,
        other.into(),
        helpdesk::ops::ChangedBy {
            agent_id: app.agent_id,
            now: Utc::now(),
        },
        &helpdesk::ops::TicketChange {
            assignee: Some(Some(app.admin_id)),
            reason: Some("handing over".to_owned()),
            ..Default::default()
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

store_test! {
    #[tokio::test]
    async fn merging_another_customers_ticket_asks_for_confirmation_in_the_browser(db: TestStore) {
        let Some(chromedriver) = require_chromedriver() else {
            return;
        };
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
            app.detail(pia.get()).await.summary.status,
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
