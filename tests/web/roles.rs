//! The role matrix: every page and action for a stranger, an agent and an admin.

use super::*;

store_test! {
    /// Every page and action for anonymous visitors, agents and admins.
    #[tokio::test]
    async fn the_role_matrix_holds_for_every_page_and_action(app: WebApp) {
        let backend = app.db.backend();
        let theirs = app
            .ticket("m1@example.org", "Invoice twice", "Charged twice")
            .await;
        app.route(theirs, Some(app.billing)).await;
        let other = app
            .ticket("m2@example.org", "Server down", "It is down")
            .await;
        app.route(other, Some(app.technical)).await;
        let admin = app.admin().await;
        let agent = app.agent().await;

        let shared_pages = [
            "/".to_owned(),
            "/tickets".to_owned(),
            format!("/tickets/{theirs}"),
        ];
        let admin_pages = [
            "/admin/rules",
            "/admin/rules/new",
            "/admin/agents",
            "/admin/departments",
            "/admin/channels",
            "/admin/jobs",
            "/admin/tokens",
            "/admin/webhooks",
        ];
        for page in shared_pages.iter().map(String::as_str).chain(admin_pages) {
            let anonymous = app.get(page, None).await;
            assert_eq!(
                anonymous.status,
                StatusCode::SEE_OTHER,
                "{backend:?} anonymous {page}"
            );
            assert!(anonymous.location().starts_with("/login?next="));
            let as_admin = app.get(page, Some(&admin)).await;
            assert_eq!(
                as_admin.status,
                StatusCode::OK,
                "{backend:?} admin {page}: {}",
                as_admin.body
            );
            let expected = if admin_pages.contains(&page) {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::OK
            };
            let as_agent = app.get(page, Some(&agent)).await;
            assert_eq!(as_agent.status, expected, "{backend:?} agent {page}");
        }
        // An agent sees the tickets of their departments only.
        assert_eq!(
            app.get(&format!("/tickets/{other}"), Some(&agent))
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        let list = app.get("/tickets", Some(&agent)).await.body;
        assert!(list.contains("Invoice twice") && !list.contains("Server down"));
        let list = app.get("/tickets", Some(&admin)).await.body;
        assert!(list.contains("Invoice twice") && list.contains("Server down"));
        // Admin links are not even shown to agents.
        assert!(
            !app.get("/", Some(&agent))
                .await
                .body
                .contains("/admin/rules")
        );

        let admin_id = app.admin_id.to_string();
        let admin_actions: Vec<(&str, Vec<(&str, &str)>)> = vec![
            (
                "/admin/rules",
                vec![
                    ("name", "Refunds"),
                    ("enabled", "1"),
                    ("c1_if", "subject_contains"),
                    ("c1_value", "refund"),
                    ("a1_then", "set_priority"),
                    ("a1_value", "high"),
                ],
            ),
            (
                "/admin/departments",
                vec![("name", "Sales"), ("strategy", "least_open")],
            ),
            (
                "/admin/agents",
                vec![
                    ("email", "new@helpdesk.example"),
                    ("name", "Nia New"),
                    ("role", "agent"),
                ],
            ),
            (
                "/admin/tokens",
                vec![
                    ("name", "CRM sync"),
                    ("owner", &admin_id),
                    ("role", "agent"),
                ],
            ),
            (
                "/admin/webhooks",
                vec![
                    ("url", "https://crm.example.com/hook"),
                    ("event", "ticket.created"),
                ],
            ),
        ];
        for (path, form) in &admin_actions {
            let anonymous = app.request(Method::POST, path, None, Some(form)).await;
            assert_eq!(anonymous.status, StatusCode::SEE_OTHER, "anonymous {path}");
            let as_agent = app.post(path, &agent, form).await;
            assert_eq!(as_agent.status, StatusCode::FORBIDDEN, "agent {path}");
            let forged = app
                .request(Method::POST, path, Some(&admin.cookie), Some(form))
                .await;
            assert_eq!(
                forged.status,
                StatusCode::FORBIDDEN,
                "admin without CSRF token {path}"
            );
            let mut wrong_token = vec![("csrf", "0000")];
            wrong_token.extend_from_slice(form);
            let forged = app
                .request(Method::POST, path, Some(&admin.cookie), Some(&wrong_token))
                .await;
            assert_eq!(
                forged.status,
                StatusCode::FORBIDDEN,
                "admin with a wrong token {path}"
            );
            let done = app.post(path, &admin, form).await;
            // Forms that make a secret answer with the page that shows it (once).
            let expected =
                if path.starts_with("/admin/tokens") || path.starts_with("/admin/webhooks") {
                    StatusCode::OK
                } else {
                    StatusCode::SEE_OTHER
                };
            assert_eq!(done.status, expected, "admin {path}: {}", done.body);
        }
        assert!(
            app.get("/admin/rules", Some(&admin))
                .await
                .body
                .contains("Refunds")
        );
        assert!(
            app.get("/admin/departments", Some(&admin))
                .await
                .body
                .contains("Sales")
        );
        assert!(
            app.get("/admin/agents", Some(&admin))
                .await
                .body
                .contains("Nia New")
        );

        // Ticket actions: agents may act on their tickets, not on others'; nobody without a token.
        let reply = [("text", "We refunded the second charge.")];
        for (who, ticket, expected) in [
            (&agent, other, StatusCode::NOT_FOUND),
            (&agent, theirs, StatusCode::SEE_OTHER),
            (&admin, other, StatusCode::SEE_OTHER),
        ] {
            let path = format!("/tickets/{ticket}/reply");
            assert_eq!(
                app.post(&path, who, &reply).await.status,
                expected,
                "{path}"
            );
            let forged = app
                .request(Method::POST, &path, Some(&who.cookie), Some(&reply))
                .await;
            assert_eq!(forged.status, StatusCode::FORBIDDEN);
            assert_eq!(
                app.request(Method::POST, &path, None, Some(&reply))
                    .await
                    .status,
                StatusCode::SEE_OTHER
            );
        }
    }
}
