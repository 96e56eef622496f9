//! The /canned page and the ticket page's picker: agents keep their own canned responses and
//! use the shared ones admins keep; picking one fills the reply box without any script, and
//! sending applies its actions.

use super::*;
use helpdesk::store::canned;

store_test! {
    #[tokio::test]
    async fn canned_responses_are_managed_picked_and_sent_with_their_actions(app: WebApp) {
        let number = app
            .ticket("canned-web@example.org", "Invoice twice", "I was charged twice")
            .await;
        app.route(number, Some(app.billing)).await;
        let agent = app.agent().await;
        let admin = app.admin().await;

        let page = app.get("/canned", Some(&agent)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let placeholders = section(&page.body, "placeholders");
        for name in ["customer_name", "ticket_number", "agent_name", "department"] {
            assert!(placeholders.contains(name), "{placeholders}");
        }
        assert!(page.body.contains("href=\"/canned\""), "in the navigation");

        // An agent saves their own; a shared one, or an unknown placeholder, is refused.
        let saved = app
            .post(
                "/canned",
                &agent,
                &[
                    ("name", "Double charge"),
                    (
                        "body",
                        "Hello {{customer_name}}, {{department}} refunds #{{ticket_number}}. {{agent_name}}",
                    ),
                    ("status", "pending"),
                    ("priority", ""),
                    ("tags", "Refund, web"),
                ],
            )
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let refused = app
            .post("/canned", &agent, &[("name", "x"), ("body", "y"), ("shared", "1")])
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let refused = app
            .post("/canned", &agent, &[("name", "Oops"), ("body", "Hi {{first_name}}")])
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(refused.body.contains("unknown placeholder"), "{}", refused.body);
        assert!(refused.body.contains("Hi {{first_name}}"), "the form keeps what was typed");

        // An admin keeps a shared one: the agent sees it but cannot change it.
        let shared = app
            .post(
                "/canned",
                &admin,
                &[("name", "Closing"), ("body", "Bye {{customer_name}}"), ("shared", "1")],
            )
            .await;
        assert_eq!(shared.status, StatusCode::SEE_OTHER, "{}", shared.body);
        let mine = canned::visible_to(&app.db.store, app.agent_id)
            .await
            .expect("read");
        let (shared_id, own_id) = match mine.as_slice() {
            [shared, own] if shared.is_shared() && !own.is_shared() => (shared.id, own.id),
            other => panic!("{other:?}"),
        };
        assert_eq!(own_id, mine[1].id);
        assert_eq!(mine[1].tags, ["refund", "web"]);
        let page = app.get("/canned", Some(&agent)).await;
        let shared_section = section(&page.body, "canned-shared");
        assert!(shared_section.contains("Closing"));
        assert!(!shared_section.contains(&format!("action=\"/canned/{shared_id}\"")));
        assert!(section(&page.body, "canned-mine").contains("Double charge"));
        let change = app
            .post(
                &format!("/canned/{shared_id}"),
                &agent,
                &[("name", "Closing"), ("body", "changed")],
            )
            .await;
        assert_eq!(change.status, StatusCode::FORBIDDEN);
        let delete = app
            .post(&format!("/canned/{shared_id}/delete"), &agent, &[])
            .await;
        assert_eq!(delete.status, StatusCode::FORBIDDEN);

        // The picker without a script: ?canned=ID gives the page with the reply box filled in
        // for this ticket and the canned response marked for sending.
        let page = app.get(&format!("/tickets/{number}"), Some(&agent)).await;
        assert!(page.body.contains("id=\"canned-picker\""));
        assert!(page.body.contains("Double charge"));
        let picked = app
            .get(&format!("/tickets/{number}?canned={own_id}"), Some(&agent))
            .await;
        assert_eq!(picked.status, StatusCode::OK, "{}", picked.body);
        let filled = format!("Hello Carla Customer, Billing refunds #{number}. Abe Agent");
        assert!(
            picked.body.contains(&format!("required>{filled}</textarea>")),
            "{}",
            picked.body
        );
        assert!(picked.body.contains(&format!(
            "name=\"canned_response_id\" form=\"reply-form\" id=\"canned-response-id\" value=\"{own_id}\""
        )));
        let missing = app
            .get(&format!("/tickets/{number}?canned=999999"), Some(&agent))
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);

        // Sent as edited, with the canned response's actions in the same commit.
        let own_id_text = own_id.to_string();
        let sent = app
            .post(
                &format!("/tickets/{number}/reply"),
                &agent,
                &[
                    ("text", &format!("{filled} Sorry!")),
                    ("canned_response_id", &own_id_text),
                ],
            )
            .await;
        assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
        let detail = app.detail(number).await;
        assert_eq!(detail.summary.status, "pending");
        assert!(
            detail
                .messages
                .iter()
                .any(|m| m.body_text == format!("{filled} Sorry!")),
            "{detail:#?}"
        );
        let facts = views::ticket_facts(&app.db.store, number.into())
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(
            views::tags(&app.db.store, facts.id).await.expect("tags"),
            ["refund", "web"]
        );
        assert!(
            history(&app, number)
                .await
                .iter()
                .any(|event| event.reason.as_deref() == Some("canned response \"Double charge\""))
        );

        // The owner renames and deletes their own.
        let renamed = app
            .post(
                &format!("/canned/{own_id}"),
                &agent,
                &[("name", "Charged twice"), ("body", "Sorry {{customer_name}}")],
            )
            .await;
        assert_eq!(renamed.status, StatusCode::SEE_OTHER, "{}", renamed.body);
        assert!(app.get("/canned", Some(&agent)).await.body.contains("Charged twice"));
        let deleted = app
            .post(&format!("/canned/{own_id}/delete"), &agent, &[])
            .await;
        assert_eq!(deleted.status, StatusCode::SEE_OTHER);
        let left = canned::visible_to(&app.db.store, app.agent_id)
            .await
            .expect("read");
        assert_eq!(left.len(), 1);
    }
}
