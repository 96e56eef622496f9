//! Customers on the pages: who may see them, search, rename and merge.

use super::*;

async fn customer_of(app: &WebApp, number: i64) -> i64 {
    helpdesk::store::customer_views::of_ticket(&app.db.store, number.into())
        .await
        .expect("read")
        .expect("ticket")
        .id
}

store_test! {
    /// Agents see the customers of the tickets they may see; admins see all.
    #[tokio::test]
    async fn agents_see_only_the_customers_of_their_departments_tickets(app: WebApp) {
        let backend = app.db.backend();
        let billing = app
            .mail_from("Bea Billing <bea@example.org>", "s1@example.org", "Invoice")
            .await;
        app.route(billing, Some(app.billing)).await;
        let technical = app
            .mail_from(
                "Tom Tech <tom@example.org>",
                "s2@example.org",
                "Server down",
            )
            .await;
        app.route(technical, Some(app.technical)).await;
        let (bea, tom) = (
            customer_of(&app, billing).await,
            customer_of(&app, technical).await,
        );
        let agent = app.agent().await;
        let admin = app.admin().await;

        for list in ["/customers", "/customers?q=example.org"] {
            let theirs = app.get(list, Some(&agent)).await;
            assert_eq!(theirs.status, StatusCode::OK, "{backend:?} {list}");
            assert!(theirs.body.contains("Bea Billing"), "{}", theirs.body);
            assert!(!theirs.body.contains("Tom Tech"), "{backend:?} {list}");
            let all = app.get(list, Some(&admin)).await.body;
            assert!(
                all.contains("Bea Billing") && all.contains("Tom Tech"),
                "{all}"
            );
        }
        assert_eq!(
            app.get(&format!("/customers/{bea}"), Some(&agent))
                .await
                .status,
            StatusCode::OK
        );
        let hidden = app.get(&format!("/customers/{tom}"), Some(&agent)).await;
        assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{backend:?}");
        assert!(!hidden.body.contains("Tom Tech"));
        assert_eq!(
            app.get(&format!("/customers/{tom}"), Some(&admin))
                .await
                .status,
            StatusCode::OK
        );
        // Nor can the agent rename a customer they cannot see.
        let rename = app
            .post(
                &format!("/customers/{tom}/rename"),
                &agent,
                &[("name", "Renamed by Abe")],
            )
            .await;
        assert_eq!(rename.status, StatusCode::NOT_FOUND, "{backend:?}");
        assert!(
            !app.get(&format!("/customers/{tom}"), Some(&admin))
                .await
                .body
                .contains("Renamed by Abe")
        );

        // A ticket of Tom's handed to the agent shows him to the agent.
        app.route(technical, Some(app.billing)).await;
        assert_eq!(
            app.get(&format!("/customers/{tom}"), Some(&agent))
                .await
                .status,
            StatusCode::OK
        );
    }
}

store_test! {
    #[tokio::test]
    async fn customers_are_shown_on_tickets_searched_renamed_and_merged(app: WebApp) {
        let backend = app.db.backend();
        let first = app
            .mail_from(
                "Pia Pedersen <pia@customer.example>",
                "c1@example.org",
                "Printer jam",
            )
            .await;
        let second = app
            .mail_from(
                "Pia Pedersen <PIA@customer.example>",
                "c2@example.org",
                "Toner empty",
            )
            .await;
        let private = app
            .mail_from(
                "P. Pedersen <p.private@mail.example>",
                "c3@example.org",
                "Invoice address",
            )
            .await;
        let hidden = app
            .mail_from(
                "Pia Pedersen <pia@customer.example>",
                "c4@example.org",
                "Server room",
            )
            .await;
        for number in [first, second, private] {
            app.route(number, Some(app.billing)).await;
        }
        app.route(hidden, Some(app.technical)).await;
        let pia = customer_of(&app, first).await;
        let other = customer_of(&app, private).await;
        assert_eq!(customer_of(&app, second).await, pia, "{backend:?}");
        assert_ne!(other, pia);
        let admin = app.admin().await;
        let agent = app.agent().await;

        // The ticket page names the customer, every address, and their other tickets.
        let page = app.get(&format!("/tickets/{first}"), Some(&agent)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let panel = &page.body[page.body.find("id=\"customer-panel\"").expect("panel")..];
        let panel = &panel[..panel.find("</section>").expect("end")];
        assert!(panel.contains(&format!("href=\"/customers/{pia}\"")));
        assert!(panel.contains("Pia Pedersen") && panel.contains("pia@customer.example"));
        assert!(
            panel.contains(&format!("href=\"/tickets/{second}\""))
                && panel.contains("Toner empty")
                && panel.contains("status-new"),
            "{backend:?}: {panel}"
        );
        assert!(
            !panel.contains("Server room") && !panel.contains("Printer jam"),
            "neither tickets the agent may not see nor this one"
        );
        let page = app.get(&format!("/tickets/{first}"), Some(&admin)).await;
        assert!(page.body.contains("Server room"), "admins see every ticket");

        // Ticket search by address (any case) and by name.
        let found = app
            .get("/tickets?q=pia%40customer.example", Some(&admin))
            .await
            .body;
        assert!(
            found.contains("Printer jam")
                && found.contains("Toner empty")
                && found.contains("Server room")
                && !found.contains("Invoice address"),
            "{backend:?} by address: {found}"
        );
        let found = app.get("/tickets?q=PEDERSEN", Some(&agent)).await.body;
        assert!(
            found.contains("Printer jam")
                && found.contains("Invoice address")
                && !found.contains("Server room"),
            "{backend:?} by name, within what the agent sees"
        );
        let found = app.get("/tickets?q=pia+pedersen", Some(&admin)).await.body;
        assert!(
            found.contains("Toner empty") && !found.contains("Invoice address"),
            "{backend:?} every word of the name"
        );
        let found = app
            .get(&format!("/tickets?customer={other}"), Some(&admin))
            .await
            .body;
        assert!(found.contains("Invoice address") && !found.contains("Printer jam"));
        assert!(
            found.contains(&format!(
                "The tickets of <a href=\"/customers/{other}\">P. Pedersen</a>"
            )),
            "{backend:?}: the list names whose tickets it shows: {found}"
        );

        // The list searches names and addresses, any part of them.
        let list = app.get("/customers?q=pedersen", Some(&agent)).await;
        assert_eq!(list.status, StatusCode::OK);
        assert!(list.body.contains("pia@customer.example") && list.body.contains("p.private@"));
        let list = app.get("/customers?q=PRIVATE", Some(&agent)).await.body;
        assert!(list.contains("p.private@mail.example") && !list.contains("pia@customer"));
        assert!(
            app.get("/customers", Some(&agent))
                .await
                .body
                .contains("href=\"/customers\" aria-current=\"page\"")
        );

        // Agents rename.
        let renamed = app
            .post(
                &format!("/customers/{other}/rename"),
                &agent,
                &[("name", "Pia (private)")],
            )
            .await;
        assert_eq!(renamed.status, StatusCode::SEE_OTHER);
        let page = app.get(&format!("/customers/{other}"), Some(&agent)).await;
        assert!(page.body.contains("Pia (private)") && page.body.contains("Invoice address"));
        assert!(page.body.contains("Only admins merge"));

        // Only admins merge; the confirmation says what moves where.
        let path = format!("/customers/{pia}/merge");
        assert_eq!(
            app.get(&format!("{path}?other={other}"), Some(&agent))
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        let other_id = other.to_string();
        assert_eq!(
            app.post(&path, &agent, &[("other", &other_id)])
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        let confirm = app
            .get(&format!("{path}?other=private"), Some(&admin))
            .await;
        assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
        assert!(
            confirm.body.contains("p.private@mail.example")
                && confirm.body.contains("1 ticket")
                && confirm
                    .body
                    .contains(&format!("Merge #{other} into #{pia}")),
            "{}",
            confirm.body
        );
        let itself = app.get(&format!("{path}?other={pia}"), Some(&admin)).await;
        assert_eq!(itself.status, StatusCode::UNPROCESSABLE_ENTITY);
        let merged = app.post(&path, &admin, &[("other", &other_id)]).await;
        assert_eq!(merged.status, StatusCode::SEE_OTHER, "{}", merged.body);
        assert_eq!(
            merged.location(),
            format!("/customers/{pia}?merged={other}")
        );
        assert_eq!(
            app.post(&path, &admin, &[("other", &other_id)])
                .await
                .status,
            StatusCode::NOT_FOUND,
            "a second merge of the same record finds it gone"
        );
        let pia_id = pia.to_string();
        assert_eq!(
            app.post(&path, &admin, &[("other", &pia_id)]).await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            app.get(&format!("/customers/{other}"), Some(&admin))
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        let page = app.get(merged.location(), Some(&admin)).await.body;
        assert!(
            page.contains("p.private@mail.example")
                && page.contains("Invoice address")
                && page.contains(&format!("#{other} was merged")),
            "{page}"
        );
        assert_eq!(customer_of(&app, private).await, pia);
        let event = history(&app, private)
            .await
            .into_iter()
            .find(|event| event.kind == "customer")
            .expect("the move is in the history");
        assert_eq!(event.old_value.as_deref(), Some("Pia (private)"));
        assert_eq!(event.new_value.as_deref(), Some("Pia Pedersen"));
        assert_eq!(event.actor, "Ada Admin");

        // A later mail from the merged address joins the kept customer.
        let later = app
            .mail_from(
                "P. Pedersen <p.private@mail.example>",
                "c5@example.org",
                "New question",
            )
            .await;
        assert_eq!(customer_of(&app, later).await, pia, "{backend:?}");
        let found = app
            .get("/tickets?q=p.private%40mail.example", Some(&admin))
            .await
            .body;
        assert!(found.contains("New question") && found.contains("Invoice address"));
    }
}

/// The customer of ticket `number` wrote on chat `channel` as account `id`, handle `handle`:
/// the ticket's customer panel and the customer's page show channel, handle and id, and a
/// search for the handle, with or without `@` and in any case, finds them on the customers
/// page and over the API (which carries the handle); a search for another handle does not.
pub(crate) async fn chat_customer_is_shown_and_found(
    app: &WebApp,
    number: i64,
    channel: &str,
    handle: &str,
    id: &str,
) {
    let backend = app.db.backend();
    let customer = customer_of(app, number).await;
    let admin = app.admin().await;
    let shown = format!(
        "<span class=\"badge channel\">{channel}</span> <span class=\"handle\">@{handle}</span> \
         <span class=\"address\">id {id}</span>"
    );
    let ticket = app.get(&format!("/tickets/{number}"), Some(&admin)).await;
    assert_eq!(ticket.status, StatusCode::OK, "{backend:?}");
    let panel = section(&ticket.body, "customer-panel");
    assert!(panel.contains(&shown), "{backend:?}: {shown} in {panel}");
    let page = app
        .get(&format!("/customers/{customer}"), Some(&admin))
        .await;
    assert!(page.body.contains(&shown), "{backend:?}: {}", page.body);

    let link = format!("href=\"/customers/{customer}\"");
    let upper = format!("@{}", handle.to_uppercase());
    for q in [handle.to_owned(), format!("@{handle}"), upper] {
        let query = serde_urlencoded::to_string([("q", q.as_str())]).expect("query");
        let list = app.get(&format!("/customers?{query}"), Some(&admin)).await;
        assert!(list.body.contains(&link), "{backend:?} {q}: {}", list.body);
        let found = crate::support::web::call(
            app,
            Method::GET,
            &format!("/api/v1/customers?{query}"),
            Some(&api_token(app).await),
            None,
            &[],
        )
        .await;
        assert_eq!(found.status, StatusCode::OK, "{}", found.text);
        let items = found.body["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{backend:?} {q}: {}", found.text);
        assert_eq!(items[0]["id"].as_i64(), Some(customer));
        assert_eq!(
            items[0]["identities"][0]["handle"].as_str(),
            Some(handle),
            "{}",
            found.text
        );
        assert_eq!(items[0]["identities"][0]["address"].as_str(), Some(id));
    }
    let elsewhere = app.get("/customers?q=%40someone_else", Some(&admin)).await;
    assert!(!elsewhere.body.contains(&link), "{backend:?}");
}

async fn api_token(app: &WebApp) -> String {
    helpdesk::store::api_tokens::create(
        &app.db.store,
        app.admin_id,
        "test",
        helpdesk::domain::Role::Admin,
        Utc::now(),
    )
    .await
    .expect("token")
    .token
}
