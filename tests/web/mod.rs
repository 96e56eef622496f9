//! The web pages over HTTP on every backend: sign-in and sessions, the role matrix, CSRF
//! refusals, the ticket forms, the admin pages, downloads, and live events.


use crate::support;
use std::time::Duration;

use axum::http::{Method, StatusCode, header};
use chrono::Utc;
use helpdesk::store::views::{self, ListQuery, Visibility};
use http_body_util::BodyExt;
use crate::support::stores;
use crate::support::web::{PASSWORD, SignInForm, WebApp, apps};
use tower::ServiceExt;

store_test! {
    #[tokio::test]
    async fn sign_in_sets_a_safe_cookie_and_sign_out_ends_the_session(app: WebApp) {
        let backend = app.db.backend();
        let anonymous = app.get("/", None).await;
        assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
        assert_eq!(anonymous.location(), "/login?next=%2F");
        let form = app.get("/login", None).await;
        assert_eq!(form.status, StatusCode::OK);
        assert!(form.body.contains("name=\"email\"") && form.body.contains("name=\"password\""));

        let wrong = app
            .post_sign_in(&[
                ("email", "admin@helpdesk.example"),
                ("password", "not it at all"),
            ])
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{backend:?}");
        assert!(wrong.body.contains("Wrong email or password"));
        assert!(wrong.set_cookie("helpdesk_session").is_none());

        let signed_in = app
            .post_sign_in(&[
                ("email", "Admin@Helpdesk.example"),
                ("password", PASSWORD),
                ("next", "/tickets"),
            ])
            .await;
        assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
        assert_eq!(signed_in.location(), "/tickets");
        let cookie = signed_in.set_cookie("helpdesk_session").expect("session");
        for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
        }
        // The sign-in form's token has served its purpose.
        let form_token = signed_in.set_cookie("helpdesk_signin").expect("removed");
        assert!(form_token.contains("Max-Age=0"), "{form_token}");

        let browser = app.admin().await;
        let dashboard = app.get("/", Some(&browser)).await;
        assert_eq!(dashboard.status, StatusCode::OK);
        assert!(dashboard.body.contains("Ada Admin"));
        // The session lives in the database, stored only as a hash of the token.
        let token = browser.cookie.split_once('=').expect("cookie").1;
        let stored: i64 = match &app.db.store {
            helpdesk::store::Store::Sqlite { pool, .. } => {
                sqlx::query_scalar("SELECT COUNT(*) FROM web_sessions WHERE token_hash = $1")
                    .bind(token)
                    .fetch_one(pool)
                    .await
                    .expect("query")
            }
            helpdesk::store::Store::Postgres { pool } => {
                sqlx::query_scalar("SELECT COUNT(*) FROM web_sessions WHERE token_hash = $1")
                    .bind(token)
                    .fetch_one(pool)
                    .await
                    .expect("query")
            }
        };
        assert_eq!(stored, 0, "the raw token is not stored");

        // An open redirect is not offered.
        let elsewhere = app
            .post_sign_in(&[
                ("email", "admin@helpdesk.example"),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ])
            .await;
        assert_eq!(elsewhere.location(), "/");

        let no_token = app
            .request(Method::POST, "/logout", Some(&browser.cookie), Some(&[]))
            .await;
        assert_eq!(
            no_token.status,
            StatusCode::FORBIDDEN,
            "sign-out needs the CSRF token"
        );
        let out = app.post("/logout", &browser, &[]).await;
        assert_eq!(out.status, StatusCode::SEE_OTHER);
        assert!(
            out.headers[header::SET_COOKIE]
                .to_str()
                .expect("ascii")
                .contains("Max-Age=0")
        );
        let after = app.get("/", Some(&browser)).await;
        assert_eq!(after.status, StatusCode::SEE_OTHER, "the session is gone");
    }
}

store_test! {
    #[tokio::test]
    async fn failed_sign_ins_are_rate_limited_and_cross_site_sign_ins_refused(app: WebApp) {
        for _ in 0..5 {
            let wrong = app
                .post_sign_in(&[
                    ("email", "agent@helpdesk.example"),
                    ("password", "guessing"),
                ])
                .await;
            assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        }
        let limited = app
            .post_sign_in(&[("email", "agent@helpdesk.example"), ("password", PASSWORD)])
            .await;
        assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(limited.body.contains("Too many failed sign-ins"));
        // Other addresses are not affected.
        app.admin().await;

        let request = axum::http::Request::builder()
            .method(Method::POST)
            .uri("/login")
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::ORIGIN, "https://evil.example")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(axum::body::Body::from(format!(
                "email=admin%40helpdesk.example&password={}",
                PASSWORD.replace(' ', "+")
            )))
            .expect("request");
        let answer = app.router.clone().oneshot(request).await.expect("answer");
        assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    }
}

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

async fn history(app: &WebApp, number: i64) -> Vec<helpdesk::store::tickets::EventView> {
    app.detail(number).await.history
}

store_test! {
    #[tokio::test]
    async fn replies_notes_changes_and_merges_are_recorded_with_who_and_why(app: WebApp) {
        let backend = app.db.backend();
        let number = app
            .ticket("t1@example.org", "Cannot log in", "Password reset fails")
            .await;
        let duplicate = app
            .ticket("t2@example.org", "Login broken", "Same problem again")
            .await;
        app.route(number, Some(app.billing)).await;
        app.route(duplicate, Some(app.billing)).await;
        let agent = app.agent().await;
        let admin = app.admin().await;

        let page = app.get(&format!("/tickets/{number}"), Some(&agent)).await;
        assert!(page.body.contains("Password reset fails"));

        let reply = app
            .post(
                &format!("/tickets/{number}/reply"),
                &agent,
                &[("text", "Try this link.")],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let note = app
            .post(
                &format!("/tickets/{number}/reply"),
                &agent,
                &[("text", "Customer sounds annoyed."), ("note", "1")],
            )
            .await;
        assert_eq!(note.status, StatusCode::SEE_OTHER);
        let empty = app
            .post(
                &format!("/tickets/{number}/reply"),
                &agent,
                &[("text", "  ")],
            )
            .await;
        assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);

        let detail = app.detail(number).await;
        assert_eq!(
            detail.summary.status, "open",
            "a first public reply opens the ticket"
        );
        let public = detail
            .messages
            .iter()
            .find(|m| m.body_text == "Try this link.")
            .expect("reply");
        assert_eq!(
            (public.kind.as_str(), public.delivery_status.as_deref()),
            ("public", Some("pending"))
        );
        let internal = detail
            .messages
            .iter()
            .find(|m| m.body_text == "Customer sounds annoyed.")
            .expect("note");
        assert_eq!(
            (internal.kind.as_str(), internal.delivery_status.as_deref()),
            ("internal", None)
        );
        let queued = helpdesk::jobs::list(&app.db.store, None, 50)
            .await
            .expect("jobs");
        assert!(
            queued.iter().any(|job| job.queue.contains("deliver")),
            "{backend:?}: {queued:?}"
        );

        let changed = app
            .post(
                &format!("/tickets/{number}/update"),
                &agent,
                &[
                    ("status", "pending"),
                    ("priority", "high"),
                    ("department", &app.technical.to_string()),
                    ("assignee", &app.agent_id.to_string()),
                    ("reason", "waiting for the customer"),
                ],
            )
            .await;
        assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
        let events = history(&app, number).await;
        for (kind, old, new) in [
            ("status", Some("open"), Some("pending")),
            ("priority", Some("normal"), Some("high")),
            ("department", Some("Billing"), Some("Technical")),
            ("assignee", None, Some("Abe Agent")),
        ] {
            let event = events
                .iter()
                .find(|e| e.kind == kind && e.reason.as_deref() == Some("waiting for the customer"))
                .unwrap_or_else(|| panic!("{backend:?}: no {kind} event in {events:?}"));
            assert_eq!(event.actor, "Abe Agent");
            assert_eq!(
                (event.old_value.as_deref(), event.new_value.as_deref()),
                (old, new)
            );
        }
        let page = app
            .get(&format!("/tickets/{number}"), Some(&agent))
            .await
            .body;
        assert!(
            page.contains("waiting for the customer"),
            "history is shown"
        );

        // A move the workflow does not allow is refused with the reason.
        app.post(
            &format!("/tickets/{number}/update"),
            &admin,
            &[("status", "closed")],
        )
        .await;
        let reopen = app
            .post(
                &format!("/tickets/{number}/update"),
                &admin,
                &[("status", "open")],
            )
            .await;
        assert_eq!(reopen.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            reopen.body.contains("cannot go from closed to open"),
            "{}",
            reopen.body
        );

        // Merge the duplicate into a ticket that goes on.
        let target = app
            .ticket("t3@example.org", "Login issue", "Original report")
            .await;
        app.route(target, Some(app.billing)).await;
        let merged = app
            .post(
                &format!("/tickets/{duplicate}/merge"),
                &agent,
                &[
                    ("into", &format!("#{target}")),
                    ("reason", "same customer, same problem"),
                ],
            )
            .await;
        assert_eq!(merged.status, StatusCode::SEE_OTHER, "{}", merged.body);
        assert_eq!(merged.location(), format!("/tickets/{target}"));
        let kept = app.detail(target).await;
        assert!(
            kept.messages
                .iter()
                .any(|m| m.body_text.contains("Same problem again"))
        );
        assert!(kept.history.iter().any(|e| e.kind == "merged"));
        let gone = app.detail(duplicate).await;
        assert_eq!(gone.summary.status, "closed");
        assert!(gone.messages.is_empty());
        let page = app
            .get(&format!("/tickets/{duplicate}"), Some(&agent))
            .await
            .body;
        assert!(page.contains(&format!("Merged into <a href=\"/tickets/{target}\"")));
        let into_self = app
            .post(
                &format!("/tickets/{target}/merge"),
                &agent,
                &[("into", &target.to_string())],
            )
            .await;
        assert_eq!(into_self.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

store_test! {
    #[tokio::test]
    async fn the_list_filters_searches_and_pages_by_keyset(app: WebApp) {
        let backend = app.db.backend();
        let mut numbers = Vec::new();
        for i in 0..7 {
            let subject = if i == 3 {
                "Refund for order 77".to_owned()
            } else {
                format!("Question {i}")
            };
            let body = if i == 5 {
                "the parcel never arrived".to_owned()
            } else {
                "hello".to_owned()
            };
            numbers.push(
                app.ticket(&format!("l{i}@example.org"), &subject, &body)
                    .await,
            );
        }
        app.route(numbers[1], Some(app.billing)).await;
        let admin = app.admin().await;

        let found = app.get("/tickets?q=refund", Some(&admin)).await.body;
        assert!(
            found.contains("Refund for order 77") && !found.contains("Question 1"),
            "{backend:?}"
        );
        let found = app
            .get("/tickets?q=parcel+arrived", Some(&admin))
            .await
            .body;
        assert!(
            found.contains("Question 5") && !found.contains("Question 4"),
            "{backend:?} body text"
        );
        let found = app
            .get(&format!("/tickets?q=%23{}", numbers[2]), Some(&admin))
            .await
            .body;
        assert!(
            found.contains("Question 2") && !found.contains("Question 4"),
            "by number"
        );
        let odd = app.get("/tickets?q=%22%29+OR+*", Some(&admin)).await;
        assert_eq!(
            odd.status,
            StatusCode::OK,
            "search text is never query syntax"
        );

        let billing = app
            .get(
                &format!("/tickets?department={}", app.billing),
                Some(&admin),
            )
            .await
            .body;
        assert!(billing.contains("Question 1") && !billing.contains("Question 2"));
        let unassigned = app
            .get(
                "/tickets?assignee=none&status=active&channel=email&priority=normal",
                Some(&admin),
            )
            .await;
        assert_eq!(unassigned.status, StatusCode::OK);
        assert!(unassigned.body.contains("Question 6"));
        assert_eq!(
            app.get("/tickets?status=bogus", Some(&admin)).await.status,
            StatusCode::BAD_REQUEST
        );

        // Keyset pages: no ticket twice, none left out, in both directions.
        for sort in [views::Sort::UpdatedDesc, views::Sort::CreatedAsc] {
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page = views::list_tickets(
                    &app.db.store,
                    &ListQuery {
                        visibility: Visibility::All,
                        sort,
                        after,
                        limit: 3,
                        ..ListQuery::default()
                    },
                )
                .await
                .expect("page");
                seen.extend(page.tickets.iter().map(|t| t.number));
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            let mut expected = numbers.clone();
            if sort == views::Sort::UpdatedDesc {
                expected.sort();
                seen.sort();
            }
            assert_eq!(seen, expected, "{backend:?} {sort:?}");
        }
        // The page link round-trips.
        let cursor = views::Cursor {
            at: Utc::now(),
            id: 42,
        };
        assert_eq!(views::Cursor::decode(&cursor.encode()), Some(cursor));
    }
}

fn mail_with_attachments(id: &str) -> Vec<u8> {
    format!(
        "From: ada@example.org\r\nSubject: Screenshot\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n\
         <p>See <b>attached</b></p><script>alert('body')</script><img src=\"https://tracker.example/p.gif\" onerror=\"alert(1)\">\r\n--b1\r\n\
         Content-Type: text/html; name=\"page.html\"\r\n\
         Content-Disposition: attachment; filename=\"page.html\"\r\n\r\n\
         <script>alert('attachment')</script>\r\n--b1--\r\n"
    )
    .into_bytes()
}

store_test! {
    #[tokio::test]
    async fn attachments_download_as_files_and_mail_html_is_sanitized(app: WebApp) {
        let number = match app
            .db
            .intake
            .accept_email(mail_with_attachments("a1@example.org"))
            .await
            .expect("taken in")
        {
            helpdesk::intake::Outcome::Created { number, .. } => number,
            other => panic!("{other:?}"),
        };
        let admin = app.admin().await;
        let page = app.get(&format!("/tickets/{number}"), Some(&admin)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("<b>attached</b>"), "{}", page.body);
        assert!(
            !page.body.contains("alert("),
            "scripts and handlers are gone"
        );
        assert!(
            page.headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .expect("ascii")
                .contains("script-src 'self'")
        );
        let detail = app.detail(number).await;
        let attachment = detail.messages[0].attachments.first().expect("attachment");
        let link = format!("/tickets/{number}/attachments/{}", attachment.id);
        assert!(page.body.contains(&link));
        let download = app.get(&link, Some(&admin)).await;
        assert_eq!(download.status, StatusCode::OK);
        assert_eq!(
            download.headers[header::CONTENT_TYPE],
            "application/octet-stream"
        );
        assert_eq!(download.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(
            download.headers[header::CONTENT_DISPOSITION]
                .to_str()
                .expect("ascii")
                .starts_with("attachment; filename=\"page.html\"")
        );
        assert!(
            download.body.contains("alert('attachment')"),
            "the file itself is unchanged"
        );
        // Not through another ticket's address, nor for agents who cannot see the ticket.
        let other = app.ticket("a2@example.org", "Other", "x").await;
        let wrong = format!("/tickets/{other}/attachments/{}", attachment.id);
        assert_eq!(
            app.get(&wrong, Some(&admin)).await.status,
            StatusCode::NOT_FOUND
        );
        let agent = app.agent().await;
        assert_eq!(
            app.get(&link, Some(&agent)).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(app.get(&link, None).await.status, StatusCode::SEE_OTHER);
    }
}

/// The department called `name`, made if the database has none yet.
async fn department_named(app: &WebApp, name: &str) -> i64 {
    let known = helpdesk::store::agents::departments(&app.db.store)
        .await
        .expect("departments");
    match known.iter().find(|d| d.name == name) {
        Some(department) => department.id,
        None => {
            helpdesk::store::agents::create_department(
                &app.db.store,
                name,
                helpdesk::domain::AssignmentStrategy::LeastOpen,
                Utc::now(),
            )
            .await
            .expect("department")
            .id
        }
    }
}

async fn rule_names(app: &WebApp) -> Vec<String> {
    helpdesk::store::rules::list(&app.db.store)
        .await
        .expect("rules")
        .into_iter()
        .map(|rule| rule.name)
        .collect()
}

/// The rows of a rule's warnings on the list page, after the rule's own row.
fn warnings_of(page: &str, rule_id: i64) -> String {
    let row = page
        .find(&format!("id=\"rule-{rule_id}\""))
        .expect("the rule's row");
    let rest = &page[row..];
    let next_rule = rest[1..].find("id=\"rule-").map_or(rest.len(), |at| at + 1);
    rest[..next_rule].to_owned()
}

store_test! {
    #[tokio::test]
    async fn the_rules_editor_is_a_form_that_previews_warns_and_reorders(app: WebApp) {
        let backend = app.db.backend();
        let admin = app.admin().await;
        let general = department_named(&app, "General").await;
        let billing = app.billing.to_string();
        let invoice = app
            .ticket(
                "inv@example.org",
                "Invoice 2031 charged twice",
                "Please refund.",
            )
            .await;
        let hello = app
            .ticket("hi@example.org", "Hello", "Just saying hi")
            .await;

        // "Add" comes back with the row, nothing saved, what was typed kept.
        let with_condition = app
            .post(
                "/admin/rules",
                &admin,
                &[
                    ("name", "Invoices to Billing"),
                    ("enabled", "1"),
                    ("do", "add_condition"),
                    ("new_condition", "text_contains"),
                ],
            )
            .await;
        assert_eq!(with_condition.status, StatusCode::OK, "{backend:?}");
        assert!(
            with_condition
                .body
                .contains(r#"name="c1_if" value="text_contains""#)
        );
        assert!(
            with_condition
                .body
                .contains(r#"value="Invoices to Billing""#)
        );
        let with_action = app
            .post(
                "/admin/rules",
                &admin,
                &[
                    ("name", "Invoices to Billing"),
                    ("enabled", "1"),
                    ("c1_if", "text_contains"),
                    ("c1_value", "invoice"),
                    ("do", "add_action"),
                    ("new_action", "set_department"),
                ],
            )
            .await;
        assert!(
            with_action
                .body
                .contains(&format!(r#"<option value="{billing}" >Billing</option>"#))
                && with_action.body.contains(">Technical</option>"),
            "departments are offered by name: {}",
            with_action.body
        );
        assert!(with_action.body.contains(r#"value="invoice""#));
        assert!(rule_names(&app).await.is_empty(), "nothing saved yet");

        // A mistake is explained where it is.
        let missing = app
            .post(
                "/admin/rules",
                &admin,
                &[
                    ("name", "Invoices to Billing"),
                    ("c1_if", "text_contains"),
                    ("c1_value", "invoice"),
                    ("a1_then", "set_department"),
                    ("a1_value", ""),
                    ("do", "save"),
                ],
            )
            .await;
        assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            missing.body.contains("Action 1: choose a department"),
            "{}",
            missing.body
        );

        // The trap: invoices to Billing without "stop", then a catch-all to General.
        let saved = app
            .post(
                "/admin/rules",
                &admin,
                &[
                    ("name", "Invoices to Billing"),
                    ("enabled", "1"),
                    ("c1_if", "text_contains"),
                    ("c1_value", "invoice, refund"),
                    ("a1_then", "set_department"),
                    ("a1_value", &billing),
                    ("a2_then", "add_tags"),
                    ("a2_value", "billing"),
                ],
            )
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let rules = helpdesk::store::rules::list(&app.db.store)
            .await
            .expect("rules");
        let invoices = rules[0].id;
        assert_eq!(saved.location(), format!("/admin/rules#rule-{invoices}"));
        assert_eq!(
            serde_json::to_value(&rules[0].conditions).expect("json"),
            serde_json::json!([{"if": "text_contains", "any": ["invoice", "refund"]}])
        );
        let general_text = general.to_string();
        app.post(
            "/admin/rules",
            &admin,
            &[
                ("name", "To General"),
                ("enabled", "1"),
                ("a1_then", "set_department"),
                ("a1_value", &general_text),
            ],
        )
        .await;
        let to_general = helpdesk::store::rules::list(&app.db.store)
            .await
            .expect("rules")[1]
            .id;

        // The list names departments and warns on the rule that gets overridden.
        let list = app.get("/admin/rules", Some(&admin)).await.body;
        assert!(list.contains("department → Billing") && list.contains("department → General"));
        assert!(
            !list.contains("→ #") && !list.contains("deleted"),
            "no ids: {list}"
        );
        let warned = warnings_of(&list, invoices);
        assert!(
            warned.contains("Overridden") && warned.contains("“To General”"),
            "{backend:?}: {warned}"
        );
        assert!(
            warned.contains(&format!("#{invoice}")),
            "seen on the ticket: {warned}"
        );
        assert!(!warnings_of(&list, to_general).contains("Overridden"));

        // The edit page previews the tickets the rule changes, linked, and says what follows.
        let edit = app
            .get(&format!("/admin/rules/{invoices}"), Some(&admin))
            .await;
        assert_eq!(edit.status, StatusCode::OK);
        assert!(
            edit.body.contains(&format!(r#"href="/tickets/{invoice}""#)),
            "{}",
            edit.body
        );
        assert!(!edit.body.contains(&format!(r#"href="/tickets/{hello}""#)));
        assert!(
            edit.body
                .contains("then changed again: department by “To General”")
        );
        assert!(edit.body.contains("Overridden"));
        assert!(edit.body.contains(&format!(
            r#"<option value="{billing}" selected>Billing</option>"#
        )));

        // Ticking "stop" on the form ends the warning.
        let stopped = app
            .post(
                &format!("/admin/rules/{invoices}"),
                &admin,
                &[
                    ("name", "Invoices to Billing"),
                    ("enabled", "1"),
                    ("stop", "1"),
                    ("c1_if", "text_contains"),
                    ("c1_value", "invoice, refund"),
                    ("a1_then", "set_department"),
                    ("a1_value", &billing),
                    ("a2_then", "add_tags"),
                    ("a2_value", "billing"),
                ],
            )
            .await;
        assert_eq!(stopped.status, StatusCode::SEE_OTHER, "{}", stopped.body);
        let list = app.get("/admin/rules", Some(&admin)).await.body;
        assert!(!list.contains("Overridden"), "{list}");

        // Order changes in place: by position, then one step.
        app.post(
            &format!("/admin/rules/{to_general}/move"),
            &admin,
            &[("position", "1")],
        )
        .await;
        assert_eq!(
            rule_names(&app).await,
            ["To General", "Invoices to Billing"]
        );
        let list = app.get("/admin/rules", Some(&admin)).await.body;
        assert!(
            warnings_of(&list, to_general).contains("Overridden"),
            "now the catch-all is the one overridden"
        );
        app.post(
            &format!("/admin/rules/{to_general}/move"),
            &admin,
            &[("direction", "down")],
        )
        .await;
        assert_eq!(
            rule_names(&app).await,
            ["Invoices to Billing", "To General"]
        );

        // A preview of a rule not saved; removing a row comes back without it.
        let preview = app
            .post(
                "/admin/rules",
                &admin,
                &[
                    ("name", "Greetings"),
                    ("c1_if", "subject_contains"),
                    ("c1_value", "hello"),
                    ("c2_if", "channel"),
                    ("c2_value", "email"),
                    ("a1_then", "set_priority"),
                    ("a1_value", "low"),
                    ("do", "preview"),
                ],
            )
            .await;
        assert!(
            preview
                .body
                .contains(&format!(r#"href="/tickets/{hello}""#))
        );
        assert!(
            !preview
                .body
                .contains(&format!(r#"href="/tickets/{invoice}""#))
        );
        let removed = app
            .post(
                "/admin/rules",
                &admin,
                &[
                    ("name", "Greetings"),
                    ("c1_if", "subject_contains"),
                    ("c1_value", "hello"),
                    ("c2_if", "channel"),
                    ("c2_value", "email"),
                    ("do", "remove_c1"),
                ],
            )
            .await;
        assert!(!removed.body.contains(r#"_if" value="subject_contains""#));
        assert!(removed.body.contains(r#"name="c1_if" value="channel""#));
        assert_eq!(rule_names(&app).await.len(), 2);

        // A rule that can never fire says why.
        app.post(
            "/admin/rules",
            &admin,
            &[
                ("name", "Mail on chat"),
                ("enabled", "1"),
                ("c1_if", "channel"),
                ("c1_value", "email"),
                ("c2_if", "channel"),
                ("c2_value", "telegram"),
                ("a1_then", "assign_to"),
                ("a1_value", &app.agent_id.to_string()),
            ],
        )
        .await;
        let list = app.get("/admin/rules", Some(&admin)).await.body;
        assert!(
            list.contains("Never fires: conditions 1 and 2 contradict"),
            "{list}"
        );
        assert!(list.contains("assign to Abe Agent"));

        app.post(&format!("/admin/rules/{to_general}/delete"), &admin, &[])
            .await;
        assert_eq!(
            rule_names(&app).await,
            ["Invoices to Billing", "Mail on chat"]
        );
    }
}

store_test! {
    #[tokio::test]
    async fn the_jobs_page_filters_by_queue_and_state_and_links_the_ticket(app: WebApp) {
        let backend = app.db.backend();
        let admin = app.admin().await;
        let number = app.ticket("jobs@example.org", "Job", "x").await;
        helpdesk::jobs::deliver::send_reply(
            &app.db.store,
            &helpdesk::store::outbound::NewReply {
                number,
                agent_id: app.admin_id,
                text: "Hi",
                kind: helpdesk::domain::MessageKind::Public,
                external_id: Some("<reply-1@helpdesk.example>"),
                now: Utc::now(),
                channels_here: &[helpdesk::helpdesk_channel::ChannelKind::Email],
            },
        )
        .await
        .expect("reply queued");
        let deliveries = helpdesk::jobs::query(
            &app.db.store,
            &helpdesk::jobs::JobQuery {
                queue: Some("helpdesk.deliver"),
                status: None,
                before: None,
                limit: 10,
            },
        )
        .await
        .expect("jobs");
        let job = deliveries.first().expect("a delivery job").clone();
        assert_eq!(job.ticket, Some(number), "{backend:?}");
        assert!(job.created_at.is_some() && job.run_at.is_some());

        let page = app
            .get("/admin/jobs?queue=helpdesk.deliver", Some(&admin))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(&job.id));
        assert!(
            page.body
                .contains(&format!(r#"<a href="/tickets/{number}">#{number}</a>"#))
        );
        let other_queue = app
            .get("/admin/jobs?queue=helpdesk.sla", Some(&admin))
            .await;
        assert!(!other_queue.body.contains(&job.id));
        assert_eq!(
            app.get("/admin/jobs?queue=nowhere", Some(&admin))
                .await
                .status,
            StatusCode::BAD_REQUEST
        );

        let fail = match backend {
            helpdesk::store::Backend::Sqlite => {
                r#"UPDATE Jobs SET status = 'Failed', attempts = 5, last_result = '{"Err":"smtp down"}' WHERE id = $1"#
            }
            helpdesk::store::Backend::Postgres => {
                r#"UPDATE apalis.jobs SET status = 'Failed', attempts = 5, last_result = '{"Err":"smtp down"}' WHERE id = $1"#
            }
        };
        match &app.db.store {
            helpdesk::store::Store::Sqlite { writer, .. } => {
                sqlx::query(fail)
                    .bind(&job.id)
                    .execute(writer)
                    .await
                    .expect("failed");
            }
            helpdesk::store::Store::Postgres { pool } => {
                sqlx::query(fail)
                    .bind(&job.id)
                    .execute(pool)
                    .await
                    .expect("failed");
            }
        }
        let failed = app
            .get(
                "/admin/jobs?queue=helpdesk.deliver&state=Failed",
                Some(&admin),
            )
            .await
            .body;
        assert!(
            failed.contains(&job.id) && failed.contains("smtp down"),
            "{backend:?}: {failed}"
        );
        assert!(failed.contains("5/5"));
        let pending = app
            .get(
                "/admin/jobs?queue=helpdesk.deliver&state=Pending",
                Some(&admin),
            )
            .await
            .body;
        assert!(!pending.contains(&job.id));
    }
}

store_test! {
    #[tokio::test]
    async fn agents_departments_jobs_and_channels_pages_change_what_they_show(app: WebApp) {
        let backend = app.db.backend();
        let admin = app.admin().await;
        let updated = app
            .post(
                &format!("/admin/departments/{}", app.billing),
                &admin,
                &[("strategy", "least_open")],
            )
            .await;
        assert_eq!(updated.status, StatusCode::SEE_OTHER);
        let departments = helpdesk::store::agents::departments(&app.db.store)
            .await
            .expect("read");
        assert!(
            departments
                .iter()
                .any(|d| d.name == "Billing" && d.assignment_strategy == "least_open")
        );
        let duplicate = app
            .post(
                "/admin/departments",
                &admin,
                &[("name", "Billing"), ("strategy", "round_robin")],
            )
            .await;
        assert_eq!(duplicate.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(duplicate.body.contains("already exists"));

        let technical = app.technical.to_string();
        let changed = app
            .post(
                &format!("/admin/agents/{}", app.agent_id),
                &admin,
                &[
                    ("role", "agent"),
                    ("department", &technical),
                    ("max_open_tickets", "3"),
                ],
            )
            .await;
        assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
        let agents = helpdesk::store::agents::list_agents(&app.db.store)
            .await
            .expect("read");
        let abe = agents.iter().find(|a| a.id == app.agent_id).expect("agent");
        assert_eq!(
            (
                abe.departments.as_str(),
                abe.max_open_tickets,
                abe.available
            ),
            ("Technical", Some(3), false)
        );
        let demote_self = app
            .post(
                &format!("/admin/agents/{}", app.admin_id),
                &admin,
                &[("role", "agent")],
            )
            .await;
        assert_eq!(demote_self.status, StatusCode::UNPROCESSABLE_ENTITY);

        // A new agent with a password can sign in; a disabled one is signed out.
        let created = app
            .post(
                "/admin/agents",
                &admin,
                &[
                    ("email", "zoe@helpdesk.example"),
                    ("name", "Zoe"),
                    ("role", "agent"),
                    ("password", PASSWORD),
                    ("department", &technical),
                ],
            )
            .await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        let zoe = app.sign_in("zoe@helpdesk.example").await;
        let zoe_id =
            helpdesk::store::agents::agent_id_by_email(&app.db.store, "zoe@helpdesk.example")
                .await
                .expect("read")
                .expect("exists");
        app.post(
            &format!("/admin/agents/{zoe_id}/active"),
            &admin,
            &[("active", "off")],
        )
        .await;
        assert_eq!(app.get("/", Some(&zoe)).await.status, StatusCode::SEE_OTHER);

        let channels = app.get("/admin/channels", Some(&admin)).await.body;
        for name in ["email", "telegram", "discord"] {
            assert!(channels.contains(&format!("id=\"channel-{name}\"")));
        }
        // This instance runs mail; nothing runs the chat channels.
        assert!(section(&channels, "channel-email").contains(">enabled<"));
        assert!(section(&channels, "channel-telegram").contains(">not enabled<"));
        // What a channel reports about its connection is shown.
        helpdesk::store::health::report(
            &app.db.store,
            &helpdesk::store::health::ChannelHealth {
                channel: "email".into(),
                name: "imap:INBOX".into(),
                connected: false,
                detail: Some("reconnecting".into()),
                last_success_at: Some(Utc::now()),
                last_error: Some("connection refused".into()),
                last_error_at: Some(Utc::now()),
                consecutive_failures: 3,
                backlog: 0,
                updated_at: Utc::now(),
            },
        )
        .await
        .expect("reported");
        let channels = app.get("/admin/channels", Some(&admin)).await.body;
        assert!(channels.contains("imap:INBOX") && channels.contains("connection refused"));
        assert!(!channels.contains("enabled on another instance"));
        let departments = app.get("/admin/departments", Some(&admin)).await.body;
        assert!(
            departments.contains("SLA targets") && departments.contains("8 h 0 min"),
            "normal: 480 min"
        );

        // A failed job goes back to the queue.
        let number = app.ticket("j1@example.org", "Job", "x").await;
        app.post(
            &format!("/tickets/{number}/reply"),
            &admin,
            &[("text", "Hi")],
        )
        .await;
        let job = helpdesk::jobs::list(&app.db.store, None, 10)
            .await
            .expect("jobs")[0]
            .id
            .clone();
        let fail = match backend {
            helpdesk::store::Backend::Sqlite => {
                "UPDATE Jobs SET status = 'Failed', last_result = '\"smtp down\"' WHERE id = $1"
            }
            helpdesk::store::Backend::Postgres => {
                "UPDATE apalis.jobs SET status = 'Failed' WHERE id = $1"
            }
        };
        match &app.db.store {
            helpdesk::store::Store::Sqlite { writer, .. } => {
                sqlx::query(fail)
                    .bind(&job)
                    .execute(writer)
                    .await
                    .expect("failed");
            }
            helpdesk::store::Store::Postgres { pool } => {
                sqlx::query(fail)
                    .bind(&job)
                    .execute(pool)
                    .await
                    .expect("failed");
            }
        }
        let page = app.get("/admin/jobs?state=Failed", Some(&admin)).await.body;
        assert!(page.contains(&job) && page.contains("Retry"), "{backend:?}");
        let retried = app
            .post(&format!("/admin/jobs/{job}/retry"), &admin, &[])
            .await;
        assert_eq!(retried.status, StatusCode::SEE_OTHER);
        let pending = helpdesk::jobs::list(&app.db.store, Some("Pending"), 10)
            .await
            .expect("jobs");
        assert!(pending.iter().any(|j| j.id == job));
        let again = app
            .post(&format!("/admin/jobs/{job}/retry"), &admin, &[])
            .await;
        assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

store_test! {
    #[tokio::test]
    async fn the_dashboard_counts_open_unassigned_overdue_and_today(app: WebApp) {
        let first = app.ticket("d1@example.org", "One", "x").await;
        app.ticket("d2@example.org", "Two", "x").await;
        app.route(first, Some(app.billing)).await;
        let targets = config_targets();
        let stats = views::dashboard(&app.db.store, Visibility::All, &targets, Utc::now())
            .await
            .expect("figures");
        assert_eq!(
            (stats.open_total, stats.unassigned, stats.new_today),
            (2, 2, 2)
        );
        assert_eq!(stats.first_response_breached, 0);
        // A day later both normal tickets are overdue for a first response (8 h).
        let later = views::dashboard(
            &app.db.store,
            Visibility::All,
            &targets,
            Utc::now() + chrono::Duration::days(1),
        )
        .await
        .expect("figures");
        assert_eq!(later.first_response_breached, 2);
        // An agent's dashboard counts the tickets they can see.
        let theirs = views::dashboard(
            &app.db.store,
            Visibility::Agent(app.agent_id),
            &targets,
            Utc::now(),
        )
        .await
        .expect("figures");
        assert_eq!(theirs.open_total, 1);
        let agent = app.agent().await;
        let page = app.get("/", Some(&agent)).await.body;
        assert!(page.contains("My tickets") && page.contains("first response overdue"));
        // The parts the live script swaps in, and links to the lists the figures count.
        for part in [
            "id=\"dashboard-figures\" data-live-dashboard",
            "id=\"my-tickets\"",
            "id=\"dashboard-groups\"",
            "href=\"/tickets?status=active\"",
        ] {
            assert!(page.contains(part), "{part} missing");
        }
        let figure = |page: &str, name: &str| -> String {
            let marker = format!("data-figure=\"{name}\">");
            let at = page.find(&marker).expect("figure") + marker.len();
            page[at..].split('<').next().unwrap_or_default().to_owned()
        };
        assert_eq!(figure(&page, "open"), "1");
        let admin = app.admin().await;
        let before = app.get("/", Some(&admin)).await.body;
        assert_eq!(figure(&before, "open"), "2");
        app.ticket("d3@example.org", "Three", "x").await;
        let after = app.get("/", Some(&admin)).await.body;
        assert_eq!(figure(&after, "open"), "3");
        assert_eq!(figure(&after, "new-today"), "3");
        // The figures use the list's words, and each row of the tables opens the list that
        // counts the same tickets.
        assert!(after.contains("active (new, open, pending)"), "{after}");
        let links = after.replace("&#38;", "&").replace("&amp;", "&");
        for (link, count) in [
            ("/tickets?status=new", 3),
            ("/tickets?status=active&priority=normal", 3),
            (
                &*format!("/tickets?status=active&department={}", app.billing),
                1,
            ),
            ("/tickets?status=active&assignee=none", 3),
        ] {
            assert!(
                links.contains(&format!("href=\"{link}\"")),
                "{link} missing"
            );
            let list = app.get(link, Some(&admin)).await.body;
            assert_eq!(list.matches("<tr class=\"prio-").count(), count, "{link}");
        }
    }
}

fn config_targets() -> helpdesk::domain::sla::SlaTargets {
    helpdesk::config::Settings::load_from(None, Vec::new())
        .expect("defaults")
        .sla
        .targets()
}

/// Reads server-sent events from a response body until `wanted` shows up.
async fn read_events_until(body: &mut axum::body::Body, wanted: &str) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains(wanted) {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .unwrap_or_else(|_| panic!("no {wanted:?} within 10 s; got {seen:?}"))
            .expect("stream open")
            .expect("frame");
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
    seen
}

store_test! {
    #[tokio::test]
    async fn live_events_tell_about_changes_and_assignments(app: WebApp) {
        let number = app.ticket("e1@example.org", "Live", "x").await;
        app.route(number, Some(app.billing)).await;
        let agent = app.agent().await;
        let admin = app.admin().await;
        let request = axum::http::Request::builder()
            .uri("/events")
            .header(header::COOKIE, &agent.cookie)
            .body(axum::body::Body::empty())
            .expect("request");
        let response = app.router.clone().oneshot(request).await.expect("answer");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        let mut body = response.into_body();

        // A new mail arrives through intake (not the web): the feed still carries it.
        let arrived = app.ticket("e2@example.org", "Arrived live", "x").await;
        app.route(arrived, Some(app.billing)).await;
        let seen = read_events_until(&mut body, &format!("\"number\":{arrived}")).await;
        assert!(seen.contains("event: ticket"));

        let assigned = app
            .post(
                &format!("/tickets/{number}/update"),
                &admin,
                &[("assignee", &app.agent_id.to_string())],
            )
            .await;
        assert_eq!(assigned.status, StatusCode::SEE_OTHER);
        let seen = read_events_until(&mut body, "event: assigned").await;
        assert!(seen.contains(&format!("{{\"number\":{number}}}")), "{seen}");

        // Changes to tickets the agent cannot see are not sent to them.
        let hidden = app.ticket("e3@example.org", "Elsewhere", "x").await;
        app.route(hidden, Some(app.technical)).await;
        let marker = app.ticket("e4@example.org", "Marker", "x").await;
        app.route(marker, Some(app.billing)).await;
        let seen = read_events_until(&mut body, &format!("\"number\":{marker}")).await;
        assert!(!seen.contains(&format!("\"number\":{hidden}")), "{seen}");

        // Anonymous visitors get no stream.
        assert_eq!(app.get("/events", None).await.status, StatusCode::SEE_OTHER);
    }
}

/// Several instances on one PostgreSQL database: a change written by one reaches the pages
/// served by another (LISTEN/NOTIFY).
#[tokio::test]
async fn changes_reach_the_pages_of_another_instance() {
    let Some(server) = support::postgres_url() else {
        eprintln!("skipped: DATABASE_URL names no PostgreSQL server");
        return;
    };
    let db = support::postgres(&server, "web_instances").await;
    let other = helpdesk::store::Store::connect(&db.url, 4)
        .await
        .expect("second instance");
    let hub = helpdesk::web::live::Hub::start(other);
    let mut changes = hub.subscribe();
    // The reader of the second instance needs a moment to LISTEN.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let number = match db
        .intake
        .accept_email(support::mail(
            &[
                "From: a@example.org",
                "Subject: Hi",
                "Message-ID: <i1@example.org>",
            ],
            "x",
        ))
        .await
        .expect("taken in")
    {
        helpdesk::intake::Outcome::Created { number, .. } => number,
        other => panic!("{other:?}"),
    };
    let change = tokio::time::timeout(Duration::from_secs(5), changes.recv())
        .await
        .expect("in time")
        .expect("a change");
    assert_eq!(change.number, number);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "NOTIFY wakes the other instance before its poll interval ({:?})",
        started.elapsed()
    );
}

/// `helpdesk bench web` on a small database: the bulk fill works on each backend and every
/// page it measures answers 200.
#[tokio::test]
async fn the_web_benchmark_fills_and_measures_every_page() {
    let mut urls = vec![None];
    if let Some(server) = support::postgres_url() {
        urls.push(Some(server));
    }
    for database_url in urls {
        let report = helpdesk::web::bench::run(&helpdesk::web::bench::WebBench {
            tickets: 500,
            database_url: database_url.clone(),
            seconds: 1,
            concurrency: 2,
            reuse: false,
        })
        .await
        .unwrap_or_else(|error| panic!("{database_url:?}: {error}"));
        assert_eq!(report.tickets, 500);
        assert_eq!(report.pages.len(), 5);
        for page in &report.pages {
            assert!(page.requests > 0, "{page:?}");
            assert!(
                page.p50_ms <= page.p99_ms && page.p99_ms <= page.max_ms,
                "{page:?}"
            );
        }
    }
}

/// A form only admins may post: anonymous visitors are sent to sign in, agents get 403, and an
/// admin's post without the CSRF token or with a wrong one is refused.
async fn only_admins_may_post(
    app: &WebApp,
    path: &str,
    form: &[(&str, &str)],
    agent: &support::web::Browser,
    admin: &support::web::Browser,
) {
    let backend = app.db.backend();
    let anonymous = app.request(Method::POST, path, None, Some(form)).await;
    assert_eq!(
        anonymous.status,
        StatusCode::SEE_OTHER,
        "{backend:?} anonymous {path}"
    );
    assert!(anonymous.location().starts_with("/login"));
    let as_agent = app.post(path, agent, form).await;
    assert_eq!(
        as_agent.status,
        StatusCode::FORBIDDEN,
        "{backend:?} agent {path}"
    );
    let forged = app
        .request(Method::POST, path, Some(&admin.cookie), Some(form))
        .await;
    assert_eq!(
        forged.status,
        StatusCode::FORBIDDEN,
        "{backend:?} admin without CSRF token {path}"
    );
    assert!(forged.body.contains("CSRF"));
    let mut wrong_token = vec![("csrf", "0000")];
    wrong_token.extend_from_slice(form);
    let forged = app
        .request(Method::POST, path, Some(&admin.cookie), Some(&wrong_token))
        .await;
    assert_eq!(
        forged.status,
        StatusCode::FORBIDDEN,
        "{backend:?} admin with a wrong token {path}"
    );
}

async fn identities_of(app: &WebApp, agent_id: i64) -> String {
    helpdesk::store::agents::list_agents(&app.db.store)
        .await
        .expect("agents")
        .into_iter()
        .find(|agent| agent.id == agent_id)
        .expect("agent")
        .identities
}

store_test! {
    #[tokio::test]
    async fn agents_chat_ids_are_set_checked_and_cleared_on_the_agents_page(app: WebApp) {
        use helpdesk_channel::ChannelKind;
        let backend = app.db.backend();
        let admin = app.admin().await;
        let agent = app.agent().await;
        let path = format!("/admin/agents/{}/chat", app.agent_id);
        only_admins_may_post(
            &app,
            &path,
            &[("telegram", "4242"), ("discord", "")],
            &agent,
            &admin,
        )
        .await;
        assert_eq!(identities_of(&app, app.agent_id).await, "", "{backend:?}");

        let saved = app
            .post(
                &path,
                &admin,
                &[
                    ("telegram", " 123456789 "),
                    ("discord", "80351110224678912"),
                ],
            )
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        assert_eq!(
            identities_of(&app, app.agent_id).await,
            "discord:80351110224678912, telegram:123456789"
        );
        // The chat channels now know the agent by these ids.
        for (channel, id) in [
            (ChannelKind::Telegram, "123456789"),
            (ChannelKind::Discord, "80351110224678912"),
        ] {
            let found = helpdesk::chat::store::agent_by_identity(&app.db.store, channel, id)
                .await
                .expect("read");
            assert_eq!(found.map(|(id, _)| id), Some(app.agent_id), "{channel:?}");
        }
        let page = app.get("/admin/agents", Some(&admin)).await.body;
        assert!(
            page.contains("value=\"123456789\"") && page.contains("value=\"80351110224678912\"")
        );

        // A mistake is explained, what was typed stays in the form, nothing is stored.
        let bad = app
            .post(&path, &admin, &[("telegram", "12a4"), ("discord", "777")])
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            bad.body.contains("the Telegram user id must be a number"),
            "{}",
            bad.body
        );
        assert!(bad.body.contains("value=\"12a4\"") && bad.body.contains("value=\"777\""));
        let too_long = app
            .post(
                &path,
                &admin,
                &[("telegram", ""), ("discord", "99999999999999999999999")],
            )
            .await;
        assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(too_long.body.contains("too long"));
        assert_eq!(
            identities_of(&app, app.agent_id).await,
            "discord:80351110224678912, telegram:123456789"
        );

        // Ids are unique across agents; a refused form changes neither id.
        let other = support::plain_agent(&app.db.store, "bo@helpdesk.example", "Bo Other").await;
        let taken = app
            .post(
                &format!("/admin/agents/{other}/chat"),
                &admin,
                &[("telegram", "555"), ("discord", "80351110224678912")],
            )
            .await;
        assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            taken
                .body
                .contains("the Discord user id 80351110224678912 already belongs to Abe Agent"),
            "{}",
            taken.body
        );
        assert_eq!(identities_of(&app, other).await, "");

        // Clearing both unlinks the agent from the chats.
        let cleared = app
            .post(&path, &admin, &[("telegram", ""), ("discord", "")])
            .await;
        assert_eq!(cleared.status, StatusCode::SEE_OTHER);
        assert_eq!(identities_of(&app, app.agent_id).await, "");
        let moved = app
            .post(
                &format!("/admin/agents/{other}/chat"),
                &admin,
                &[("telegram", "123456789"), ("discord", "")],
            )
            .await;
        assert_eq!(
            moved.status,
            StatusCode::SEE_OTHER,
            "a freed id can be reused"
        );
        assert_eq!(identities_of(&app, other).await, "telegram:123456789");
        assert_eq!(
            app.post("/admin/agents/999999/chat", &admin, &[("telegram", "1")])
                .await
                .status,
            StatusCode::NOT_FOUND
        );

        // The new-agent form takes chat ids too, and keeps what was typed when refused.
        let refused = app
            .post(
                "/admin/agents",
                &admin,
                &[
                    ("email", "cy@helpdesk.example"),
                    ("name", "Cy Chat"),
                    ("role", "agent"),
                    ("telegram", "123456789"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            refused.body.contains("already belongs to another agent"),
            "{}",
            refused.body
        );
        assert!(refused.body.contains("value=\"cy@helpdesk.example\""));
        let refused = app
            .post(
                "/admin/agents",
                &admin,
                &[
                    ("email", "cy@helpdesk.example"),
                    ("name", "Cy Chat"),
                    ("role", "agent"),
                    ("discord", "@cy"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            refused
                .body
                .contains("the Discord user id must be a number")
        );
        let created = app
            .post(
                "/admin/agents",
                &admin,
                &[
                    ("email", "cy@helpdesk.example"),
                    ("name", "Cy Chat"),
                    ("role", "agent"),
                    ("telegram", "31337"),
                    ("discord", "4004"),
                ],
            )
            .await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        let cy = helpdesk::store::agents::agent_id_by_email(&app.db.store, "cy@helpdesk.example")
            .await
            .expect("read")
            .expect("created");
        assert_eq!(
            identities_of(&app, cy).await,
            "discord:4004, telegram:31337"
        );
    }
}

/// The secret a page shows once.
fn shown_secret(body: &str) -> String {
    let marker = "<code id=\"secret-value\">";
    let at = body.find(marker).expect("a secret on the page") + marker.len();
    body[at..].split('<').next().unwrap_or_default().to_owned()
}

store_test! {
    #[tokio::test]
    async fn admins_make_and_revoke_api_tokens_on_the_web(app: WebApp) {
        use helpdesk::store::api_tokens;
        let backend = app.db.backend();
        let admin = app.admin().await;
        let agent = app.agent().await;
        let admin_id = app.admin_id.to_string();
        let agent_id = app.agent_id.to_string();
        only_admins_may_post(
            &app,
            "/admin/tokens",
            &[("name", "x"), ("owner", &admin_id), ("role", "admin")],
            &agent,
            &admin,
        )
        .await;
        assert!(
            api_tokens::list(&app.db.store)
                .await
                .expect("list")
                .is_empty()
        );

        let made = app
            .post(
                "/admin/tokens",
                &admin,
                &[
                    ("name", "CRM sync"),
                    ("owner", &admin_id),
                    ("role", "admin"),
                ],
            )
            .await;
        assert_eq!(made.status, StatusCode::OK, "{backend:?}: {}", made.body);
        assert_eq!(made.headers[header::CACHE_CONTROL], "no-store");
        let token = shown_secret(&made.body);
        assert!(token.starts_with("hd_"), "{token}");
        // The token works on the API, and the list shows its use, never the token.
        let request = axum::http::Request::builder()
            .uri("/api/v1/tickets")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .expect("request");
        let answer = app.router.clone().oneshot(request).await.expect("answer");
        assert_eq!(answer.status(), StatusCode::OK);
        let list = app.get("/admin/tokens", Some(&admin)).await;
        assert!(list.body.contains("CRM sync") && list.body.contains("admin@helpdesk.example"));
        assert!(!list.body.contains(&token), "the secret is shown once only");
        assert!(!list.body.contains("never"), "last use is shown");
        assert!(list.headers.get(header::CACHE_CONTROL).is_none());

        // Mistakes are explained and the typed name kept.
        let too_much = app
            .post(
                "/admin/tokens",
                &admin,
                &[
                    ("name", "Agent script"),
                    ("owner", &agent_id),
                    ("role", "admin"),
                ],
            )
            .await;
        assert_eq!(too_much.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            too_much
                .body
                .contains("an admin token needs an admin as its owner")
        );
        assert!(too_much.body.contains("value=\"Agent script\""));
        assert!(!too_much.body.contains("secret-value"));
        let unnamed = app
            .post(
                "/admin/tokens",
                &admin,
                &[("name", " "), ("owner", &agent_id), ("role", "agent")],
            )
            .await;
        assert_eq!(unnamed.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(unnamed.body.contains("needs a name"));
        let no_role = app
            .post(
                "/admin/tokens",
                &admin,
                &[("name", "x"), ("owner", &agent_id), ("role", "root")],
            )
            .await;
        assert_eq!(no_role.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            api_tokens::list(&app.db.store).await.expect("list").len(),
            1
        );

        let id = api_tokens::list(&app.db.store).await.expect("list")[0].id;
        let path = format!("/admin/tokens/{id}/revoke");
        only_admins_may_post(&app, &path, &[], &agent, &admin).await;
        assert!(
            api_tokens::authenticate(&app.db.store, &token)
                .await
                .expect("read")
                .is_some(),
            "refused revocations revoke nothing"
        );
        let revoked = app.post(&path, &admin, &[]).await;
        assert_eq!(revoked.status, StatusCode::SEE_OTHER);
        assert!(
            api_tokens::authenticate(&app.db.store, &token)
                .await
                .expect("read")
                .is_none()
        );
        assert!(
            app.get("/admin/tokens", Some(&admin))
                .await
                .body
                .contains("revoked")
        );
        assert_eq!(
            app.post("/admin/tokens/999999/revoke", &admin, &[])
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    }
}

store_test! {
    #[tokio::test]
    async fn admins_add_turn_off_and_delete_webhooks_and_see_their_deliveries(app: WebApp) {
        use helpdesk::store::webhooks::{self, AttemptResult};
        let backend = app.db.backend();
        let admin = app.admin().await;
        let agent = app.agent().await;
        let wrong_scheme = app
            .post(
                "/admin/webhooks",
                &admin,
                &[
                    ("url", "ftp://crm.example.com/hook"),
                    ("description", "CRM"),
                    ("event", "ticket.created"),
                ],
            )
            .await;
        assert_eq!(wrong_scheme.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            wrong_scheme
                .body
                .contains("must start with http:// or https://")
        );
        assert!(
            wrong_scheme
                .body
                .contains("value=\"ftp://crm.example.com/hook\"")
        );
        assert!(
            wrong_scheme
                .body
                .contains("value=\"ticket.created\" checked")
        );
        let no_events = app
            .post(
                "/admin/webhooks",
                &admin,
                &[("url", "https://crm.example.com/hook")],
            )
            .await;
        assert_eq!(no_events.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(no_events.body.contains("events must name at least one"));
        assert!(
            webhooks::list(&app.db.store)
                .await
                .expect("list")
                .is_empty()
        );

        let added = app
            .post(
                "/admin/webhooks",
                &admin,
                &[
                    ("url", "https://crm.example.com/hook"),
                    ("description", "CRM"),
                    ("event", "ticket.created"),
                    ("event", "message.added"),
                ],
            )
            .await;
        assert_eq!(added.status, StatusCode::OK, "{backend:?}: {}", added.body);
        assert_eq!(added.headers[header::CACHE_CONTROL], "no-store");
        let secret = shown_secret(&added.body);
        let hooks = webhooks::list(&app.db.store).await.expect("list");
        assert_eq!(hooks.len(), 1);
        let hook = &hooks[0];
        assert_eq!(
            (hook.events.as_str(), hook.secret.as_str(), hook.active),
            ("ticket.created,message.added", secret.as_str(), true)
        );
        let list = app.get("/admin/webhooks", Some(&admin)).await.body;
        assert!(list.contains("https://crm.example.com/hook") && !list.contains(&secret));

        // A delivery that failed shows with its answer and error.
        let mut tx = app.db.store.begin_write().await.expect("tx");
        let delivery =
            webhooks::insert_delivery(&mut tx, hook.id, "ticket.created", 1, "{}", Utc::now())
                .await
                .expect("delivery");
        webhooks::record_attempt(
            &mut tx,
            delivery,
            3,
            &AttemptResult::Failed {
                status_code: Some(502),
                error: "the CRM answered 502 Bad Gateway".into(),
            },
            Utc::now(),
        )
        .await
        .expect("attempt");
        tx.commit().await.expect("commit");
        let page = app
            .get(&format!("/admin/webhooks/{}", hook.id), Some(&admin))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body.contains(&format!(
                "id=\"delivery-{delivery}\" class=\"delivery-failed\""
            )) && page.body.contains("HTTP 502")
                && page.body.contains("the CRM answered 502 Bad Gateway"),
            "{}",
            page.body
        );
        assert!(!page.body.contains(&secret));
        assert_eq!(
            app.get(&format!("/admin/webhooks/{}", hook.id), Some(&agent))
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        let list = app.get("/admin/webhooks", Some(&admin)).await.body;
        assert!(list.contains("delivery-failed"));

        let active_path = format!("/admin/webhooks/{}/active", hook.id);
        only_admins_may_post(&app, &active_path, &[("active", "off")], &agent, &admin).await;
        let off = app.post(&active_path, &admin, &[("active", "off")]).await;
        assert_eq!(off.status, StatusCode::SEE_OTHER);
        let stored = webhooks::find(&app.db.store, hook.id)
            .await
            .expect("read")
            .expect("kept");
        assert!(!stored.active);
        assert!(
            app.get("/admin/webhooks", Some(&admin))
                .await
                .body
                .contains("Turn on")
        );
        let on = app.post(&active_path, &admin, &[("active", "on")]).await;
        assert_eq!(on.status, StatusCode::SEE_OTHER);
        assert!(
            webhooks::find(&app.db.store, hook.id)
                .await
                .expect("read")
                .expect("kept")
                .active
        );
        let nonsense = app.post(&active_path, &admin, &[("active", "maybe")]).await;
        assert_eq!(nonsense.status, StatusCode::BAD_REQUEST);

        let delete_path = format!("/admin/webhooks/{}/delete", hook.id);
        only_admins_may_post(&app, &delete_path, &[], &agent, &admin).await;
        assert_eq!(webhooks::list(&app.db.store).await.expect("list").len(), 1);
        let deleted = app.post(&delete_path, &admin, &[]).await;
        assert_eq!(deleted.status, StatusCode::SEE_OTHER);
        assert!(
            webhooks::list(&app.db.store)
                .await
                .expect("list")
                .is_empty()
        );
        assert_eq!(
            app.get(&format!("/admin/webhooks/{}", hook.id), Some(&admin))
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    }
}

/// A sign-in attempt through the form from a client address (as the server's connection info
/// gives it), with an optional X-Forwarded-For header.
async fn sign_in_from(
    router: &axum::Router,
    client: &str,
    forwarded_for: Option<&str>,
    email: &str,
    password: &str,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let address: std::net::SocketAddr = client.parse().expect("address");
    let headers: Vec<(&str, &str)> = forwarded_for
        .map(|value| ("x-forwarded-for", value))
        .into_iter()
        .collect();
    let answer = SignInForm::open(router)
        .await
        .post(
            router,
            &[("email", email), ("password", password)],
            Some(address),
            &headers,
        )
        .await;
    (answer.status, answer.headers, answer.body)
}

store_test! {
    #[tokio::test]
    async fn one_client_cannot_try_passwords_on_many_addresses(app: WebApp) {
        let backend = app.db.backend();
        let sprayer = "203.0.113.7:40000";
        let limit = helpdesk::sign_in::MAX_FAILURES_PER_IP;
        for n in 0..limit {
            let (status, _, _) = sign_in_from(
                &app.router,
                sprayer,
                None,
                &format!("someone{n}@helpdesk.example"),
                "summer2024",
            )
            .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{backend:?} attempt {n}");
        }
        // Even the right password of a real address is refused from there now.
        let (status, headers, body) = sign_in_from(
            &app.router,
            sprayer,
            None,
            "admin@helpdesk.example",
            PASSWORD,
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{backend:?}");
        assert!(
            body.contains("Too many failed sign-ins from your network address (203.0.113.7)")
                && body.contains("Wait 15 minutes"),
            "{body}"
        );
        let retry_after: i64 = headers[header::RETRY_AFTER]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert!((1..=900).contains(&retry_after), "{retry_after}");
        // A header the client wrote itself changes nothing while no proxy is trusted.
        let (status, _, _) = sign_in_from(
            &app.router,
            sprayer,
            Some("192.0.2.1"),
            "admin@helpdesk.example",
            PASSWORD,
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        // Other clients are not affected, not even for the addresses that were tried.
        let (status, _, _) = sign_in_from(
            &app.router,
            "198.51.100.8:50000",
            None,
            "admin@helpdesk.example",
            PASSWORD,
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);

        // Behind a trusted proxy, the client is the address the proxy adds last.
        let mut config = support::web::config(&app.db);
        config.trust_forwarded_for = true;
        let proxied =
            helpdesk::web::router(helpdesk::web::AppState::new(app.db.store.clone(), config));
        let proxy = "10.0.0.2:41000";
        let (status, _, _) = sign_in_from(
            &proxied,
            proxy,
            Some("192.0.2.1, 203.0.113.7"),
            "agent@helpdesk.example",
            PASSWORD,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::TOO_MANY_REQUESTS,
            "the sprayer, through the proxy"
        );
        let (status, _, _) = sign_in_from(
            &proxied,
            proxy,
            Some("203.0.113.7, 192.0.2.44"),
            "agent@helpdesk.example",
            PASSWORD,
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "another client of the proxy");
    }
}

/// Two instances of the web server on one database: the app's router and another over its
/// own connections, as a second process would be.
async fn two_instances(app: &WebApp) -> [axum::Router; 2] {
    let store = helpdesk::store::Store::connect(&app.db.url, 5)
        .await
        .expect("a second instance's connections");
    let other = helpdesk::web::router(helpdesk::web::AppState::new(
        store,
        support::web::config(&app.db),
    ));
    [app.router.clone(), other]
}

/// Sends `tries` (client address, email, password) all at once, alternating between the two
/// instances, each through a sign-in form opened once, as a script would.
async fn sign_in_all_at_once(
    app: &WebApp,
    tries: Vec<(String, String, String)>,
) -> Vec<support::web::Answer> {
    let instances = two_instances(app).await;
    let form = SignInForm::open(&app.router).await;
    let sent: Vec<_> = tries
        .into_iter()
        .enumerate()
        .map(|(n, (client, email, password))| {
            let router = instances[n % 2].clone();
            let form = form.clone();
            tokio::spawn(async move {
                let client = client.parse().expect("address");
                form.post(
                    &router,
                    &[("email", email.as_str()), ("password", password.as_str())],
                    Some(client),
                    &[],
                )
                .await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for try_ in sent {
        answers.push(try_.await.expect("answered"));
    }
    answers
}

/// Asserts that `answers` checked exactly `checked` passwords (401) and refused the rest with
/// 429, a wait in Retry-After and `reason` on the page.
fn only_so_many_checked(
    backend: helpdesk::store::Backend,
    answers: &[support::web::Answer],
    checked: usize,
    reason: &str,
) {
    let wrong = answers
        .iter()
        .filter(|answer| answer.status == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(wrong, checked, "{backend:?}: passwords checked");
    for answer in answers
        .iter()
        .filter(|answer| answer.status != StatusCode::UNAUTHORIZED)
    {
        assert_eq!(
            answer.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            answer.body
        );
        assert!(answer.body.contains(reason), "{}", answer.body);
        let retry_after: i64 = answer.headers[header::RETRY_AFTER]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert!((1..=900).contains(&retry_after), "{retry_after}");
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_wrong_passwords_for_one_address_get_only_five_checks(app: WebApp) {
        let backend = app.db.backend();
        // From 100 clients, so only the address's limit applies.
        let tries = (0..100)
            .map(|n| {
                (
                    format!("198.51.100.{n}:40000"),
                    "agent@helpdesk.example".to_owned(),
                    format!("guess number {n}"),
                )
            })
            .collect();
        let answers = sign_in_all_at_once(&app, tries).await;
        only_so_many_checked(
            backend,
            &answers,
            helpdesk::sign_in::MAX_FAILURES as usize,
            "Too many failed sign-ins for agent@helpdesk.example",
        );
        // The right password waits for the window too; other addresses do not.
        let (status, _, _) = sign_in_from(
            &app.router,
            "192.0.2.10:40000",
            None,
            "agent@helpdesk.example",
            PASSWORD,
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{backend:?}");
        app.admin().await;
    }
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_wrong_passwords_from_one_client_get_only_twenty_checks(app: WebApp) {
        let backend = app.db.backend();
        let tries = (0..100)
            .map(|n| {
                (
                    "203.0.113.9:40000".to_owned(),
                    format!("someone{n}@helpdesk.example"),
                    "summer2024".to_owned(),
                )
            })
            .collect();
        let answers = sign_in_all_at_once(&app, tries).await;
        only_so_many_checked(
            backend,
            &answers,
            helpdesk::sign_in::MAX_FAILURES_PER_IP as usize,
            "Too many failed sign-ins from your network address (203.0.113.9)",
        );
        let (status, _, _) = sign_in_from(
            &app.router,
            "203.0.113.9:40001",
            None,
            "admin@helpdesk.example",
            PASSWORD,
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{backend:?}");
    }
}

store_test! {
    #[tokio::test]
    async fn a_right_password_starts_the_address_over_and_costs_the_client_nothing(app: WebApp) {
        let backend = app.db.backend();
        let office = "192.0.2.77:40000";
        let limit = helpdesk::sign_in::MAX_FAILURES;
        // A few slips, then the right password: the slips are forgiven.
        for round in 0..3 {
            for n in 0..limit - 1 {
                let (status, _, _) =
                    sign_in_from(&app.router, office, None, "agent@helpdesk.example", "oops").await;
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{backend:?} round {round} slip {n}"
                );
            }
            let (status, _, _) = sign_in_from(
                &app.router,
                office,
                None,
                "agent@helpdesk.example",
                PASSWORD,
            )
            .await;
            assert_eq!(status, StatusCode::SEE_OTHER, "{backend:?} round {round}");
        }
        // Many people signing in behind one router do not use up its limit: the right
        // passwords are not counted against it, the 12 slips above are.
        for n in 0..helpdesk::sign_in::MAX_FAILURES_PER_IP {
            let (status, _, _) = sign_in_from(
                &app.router,
                office,
                None,
                "admin@helpdesk.example",
                PASSWORD,
            )
            .await;
            assert_eq!(status, StatusCode::SEE_OTHER, "{backend:?} sign-in {n}");
        }
        let slips = 3 * (limit - 1);
        for n in slips..helpdesk::sign_in::MAX_FAILURES_PER_IP {
            let (status, _, _) = sign_in_from(
                &app.router,
                office,
                None,
                &format!("nobody{n}@helpdesk.example"),
                "oops",
            )
            .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{backend:?} try {n}");
        }
        let (status, _, _) = sign_in_from(
            &app.router,
            office,
            None,
            "admin@helpdesk.example",
            PASSWORD,
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{backend:?}");
    }
}

store_test! {
    #[tokio::test]
    async fn a_sign_in_without_the_forms_token_is_refused_and_checks_no_password(app: WebApp) {
        let backend = app.db.backend();
        let form = app.get("/login", None).await;
        let cookie = form.set_cookie("helpdesk_signin").expect("token cookie");
        for attribute in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/login",
            "Max-Age=3600",
        ] {
            assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
        }
        let opened = SignInForm::open(&app.router).await;
        let right = [("email", "agent@helpdesk.example"), ("password", PASSWORD)];
        let without = |cookie: Option<&str>, token: Option<&str>| {
            let mut fields = right.to_vec();
            if let Some(token) = token {
                fields.push(("csrf", token));
            }
            let mut request = axum::http::Request::post("/login")
                .header(header::HOST, "127.0.0.1:8080")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            if let Some(cookie) = cookie {
                request = request.header(header::COOKIE, cookie);
            }
            request
                .body(axum::body::Body::from(
                    serde_urlencoded::to_string(&fields).expect("form"),
                ))
                .expect("request")
        };
        let other = "0".repeat(64);
        let other_cookie = format!("helpdesk_signin={other}");
        // No Origin header in any of these, as a client that strips it would send them.
        let refusals = [
            ("no token at all", without(None, None)),
            ("the field only", without(None, Some(&opened.token))),
            ("the cookie only", without(Some(&opened.cookie), None)),
            (
                "a token of another form",
                without(Some(&other_cookie), Some(&opened.token)),
            ),
        ];
        for (case, request) in refusals {
            let answer = app.router.clone().oneshot(request).await.expect("answer");
            assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{backend:?} {case}");
            assert!(
                answer
                    .headers()
                    .get_all(header::SET_COOKIE)
                    .iter()
                    .all(|value| !value.as_bytes().starts_with(b"helpdesk_session=")),
                "{case}: no one is signed in"
            );
            let bytes = answer.into_body().collect().await.expect("body").to_bytes();
            let body = String::from_utf8_lossy(&bytes);
            assert!(
                body.contains("This sign-in form has expired or did not come from this site")
                    && body.contains("please sign in again")
                    && body.contains("name=\"csrf\""),
                "{case}: {body}"
            );
        }
        // None of them counted as a try: all five wrong passwords are still checked.
        for n in 0..helpdesk::sign_in::MAX_FAILURES {
            let wrong = opened
                .post(
                    &app.router,
                    &[("email", "agent@helpdesk.example"), ("password", "nope")],
                    None,
                    &[],
                )
                .await;
            assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{backend:?} {n}");
        }
        // The form and its cookie go on working for more than one try.
        let limited = opened.post(&app.router, &right, None, &[]).await;
        assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
        app.admin().await;
    }
}

/// On PostgreSQL a change's id is taken when its row is written, but transactions commit in
/// any order. A change that commits after one with a higher id was already read still reaches
/// the pages.
#[tokio::test]
async fn a_change_committed_late_with_a_lower_id_still_reaches_the_pages() {
    let Some(server) = support::postgres_url() else {
        eprintln!("skipped: DATABASE_URL names no PostgreSQL server");
        return;
    };
    let db = support::postgres(&server, "web_feed_order").await;
    let helpdesk::store::Store::Postgres { pool } = &db.store else {
        unreachable!("a PostgreSQL store");
    };
    let mut numbers = Vec::new();
    for id in ["o1@example.org", "o2@example.org"] {
        match db
            .intake
            .accept_email(support::mail(
                &[
                    "From: a@example.org",
                    "Subject: Order",
                    &format!("Message-ID: <{id}>"),
                ],
                "x",
            ))
            .await
            .expect("taken in")
        {
            helpdesk::intake::Outcome::Created { number, .. } => numbers.push(number),
            other => panic!("{other:?}"),
        }
    }
    let (early, late) = (numbers[0], numbers[1]);
    let hub = helpdesk::web::live::Hub::start(db.store.clone());
    let mut changes = hub.subscribe();
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The first transaction takes the lower id and commits last.
    let mut first = pool.begin().await.expect("tx");
    sqlx::query("UPDATE tickets SET priority = 'high' WHERE number = $1")
        .bind(early)
        .execute(&mut *first)
        .await
        .expect("update");
    let mut second = pool.begin().await.expect("tx");
    sqlx::query("UPDATE tickets SET priority = 'urgent' WHERE number = $1")
        .bind(late)
        .execute(&mut *second)
        .await
        .expect("update");
    second.commit().await.expect("commit");
    hub.wake();
    let seen = tokio::time::timeout(Duration::from_secs(5), changes.recv())
        .await
        .expect("the second change in time")
        .expect("a change");
    assert_eq!(seen.number, late);
    // A few reads go by with the lower id missing.
    tokio::time::sleep(Duration::from_millis(700)).await;
    first.commit().await.expect("commit");
    hub.wake();
    let seen_late = tokio::time::timeout(Duration::from_secs(5), changes.recv())
        .await
        .expect("the change committed late in time")
        .expect("a change");
    assert_eq!(seen_late.number, early);
    assert!(
        seen_late.id < seen.id,
        "the ids were taken in the other order ({} then {})",
        seen_late.id,
        seen.id
    );

    // A rolled-back change leaves a gap that is given up; later changes flow as before.
    let mut rolled_back = pool.begin().await.expect("tx");
    sqlx::query("UPDATE tickets SET priority = 'low' WHERE number = $1")
        .bind(early)
        .execute(&mut *rolled_back)
        .await
        .expect("update");
    rolled_back.rollback().await.expect("rollback");
    sqlx::query("UPDATE tickets SET priority = 'low' WHERE number = $1")
        .bind(late)
        .execute(pool)
        .await
        .expect("update");
    hub.wake();
    let after = tokio::time::timeout(Duration::from_secs(5), changes.recv())
        .await
        .expect("in time")
        .expect("a change");
    assert_eq!((after.number, after.id), (late, seen.id + 2));
    hub.close();
}

store_test! {
    #[tokio::test]
    async fn the_dashboard_sla_figures_link_to_the_tickets_they_count(app: WebApp) {
        let backend = app.db.backend();
        let overdue = app.ticket("s1@example.org", "Waiting a day", "x").await;
        let soon = app
            .ticket("s2@example.org", "Waiting seven hours", "x")
            .await;
        let fresh = app.ticket("s3@example.org", "Just came in", "x").await;
        // Normal priority: a first response within 8 h, resolution within 3 days (defaults).
        for (number, age) in [
            (overdue, chrono::Duration::hours(24)),
            (soon, chrono::Duration::minutes(7 * 60 + 30)),
        ] {
            let at = Utc::now() - age;
            let sql = "UPDATE tickets SET created_at = $1 WHERE number = $2";
            match &app.db.store {
                helpdesk::store::Store::Sqlite { writer, .. } => sqlx::query(sql)
                    .bind(at)
                    .bind(number)
                    .execute(writer)
                    .await
                    .map(|done| done.rows_affected()),
                helpdesk::store::Store::Postgres { pool } => sqlx::query(sql)
                    .bind(at)
                    .bind(number)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected()),
            }
            .expect("aged");
        }
        let admin = app.admin().await;
        let dashboard = app.get("/", Some(&admin)).await.body;
        for state in [
            "first_response_breached",
            "first_response_due_soon",
            "resolution_breached",
            "resolution_due_soon",
        ] {
            assert!(
                dashboard.contains(&format!(
                    "href=\"/tickets?sla={state}&amp;sort=created_asc\""
                )),
                "{backend:?}: no link for {state}"
            );
        }
        let stats = views::dashboard(
            &app.db.store,
            Visibility::All,
            &config_targets(),
            Utc::now(),
        )
        .await
        .expect("figures");
        assert_eq!(
            (stats.first_response_breached, stats.first_response_due_soon),
            (1, 1)
        );
        let breached = app
            .get("/tickets?sla=first_response_breached", Some(&admin))
            .await;
        assert_eq!(breached.status, StatusCode::OK);
        assert!(breached.body.contains("Waiting a day"), "{backend:?}");
        assert!(
            !breached.body.contains("Waiting seven hours")
                && !breached.body.contains("Just came in")
        );
        assert!(
            breached
                .body
                .contains("<option value=\"first_response_breached\" selected>")
        );
        let due_soon = app
            .get("/tickets?sla=first_response_due_soon", Some(&admin))
            .await
            .body;
        assert!(due_soon.contains("Waiting seven hours"));
        assert!(!due_soon.contains("Waiting a day") && !due_soon.contains("Just came in"));
        // An answered ticket is no longer overdue for its first response.
        app.post(
            &format!("/tickets/{overdue}/reply"),
            &admin,
            &[("text", "Sorry for the wait.")],
        )
        .await;
        let breached = app
            .get("/tickets?sla=first_response_breached", Some(&admin))
            .await
            .body;
        assert!(!breached.contains("Waiting a day"));
        // Agents see only their tickets in the filtered list too.
        app.route(soon, Some(app.technical)).await;
        let agent = app.agent().await;
        let theirs = app
            .get("/tickets?sla=first_response_due_soon", Some(&agent))
            .await
            .body;
        assert!(!theirs.contains("Waiting seven hours"));
        assert_eq!(
            app.get("/tickets?sla=whenever", Some(&admin)).await.status,
            StatusCode::BAD_REQUEST
        );
        let _ = fresh;

        // The targets themselves are shown on the departments page, in the page body.
        let departments = app.get("/admin/departments", Some(&admin)).await.body;
        assert!(departments.contains("<title>Departments · helpdesk</title>"));
        let sla = departments.find("id=\"sla-targets\"").expect("SLA targets");
        assert!(sla > departments.find("<h1>Departments</h1>").expect("heading"));
        assert!(departments.contains("Resolved within"));
    }
}

async fn customer_of(app: &WebApp, number: i64) -> i64 {
    helpdesk::store::customer_views::of_ticket(&app.db.store, number)
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

store_test! {
    #[tokio::test]
    async fn a_reply_on_a_channel_nothing_runs_is_refused_on_the_page_with_the_text_kept(db: TestStore) {
        // An instance without mail, and no other instance running.
        let config = support::web::config(&db);
        let app = WebApp::with_config(db, config).await;
        let number = app
            .ticket("off-1@example.org", "Invoice", "Wrong amount")
            .await;
        let admin = app.admin().await;
        let page = app
            .get(&format!("/tickets/{number}"), Some(&admin))
            .await
            .body;
        assert!(
            page.contains("id=\"channel-off\"") && page.contains("email.enabled"),
            "the page tells before anyone types: {page}"
        );

        let typed = "Dear Carla, the refund <is> on its way.";
        let refused = app
            .post(
                &format!("/tickets/{number}/reply"),
                &admin,
                &[("text", typed)],
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.body
        );
        assert!(
            refused.body.contains("id=\"reply-error\""),
            "{}",
            refused.body
        );
        assert!(refused.body.contains("email.enabled"), "{}", refused.body);
        assert!(
            refused
                .body
                .contains("Dear Carla, the refund &#60;is&#62; on its way.</textarea>"),
            "the typed text is kept: {}",
            refused.body
        );
        let detail = app.detail(number).await;
        assert_eq!(detail.messages.len(), 1, "nothing was stored");

        // A note is taken.
        let noted = app
            .post(
                &format!("/tickets/{number}/reply"),
                &admin,
                &[("text", "Customer called, see CRM"), ("note", "1")],
            )
            .await;
        assert_eq!(noted.status, StatusCode::SEE_OTHER, "{}", noted.body);

        // Another running instance runs mail: the reply goes through.
        support::other_instance(
            &app.db.store,
            &[helpdesk::helpdesk_channel::ChannelKind::Email],
            Utc::now(),
        )
        .await;
        let page = app
            .get(&format!("/tickets/{number}"), Some(&admin))
            .await
            .body;
        assert!(!page.contains("id=\"channel-off\""));
        let sent = app
            .post(
                &format!("/tickets/{number}/reply"),
                &admin,
                &[("text", typed)],
            )
            .await;
        assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    }
}

store_test! {
    #[tokio::test]
    async fn the_channels_page_names_the_instances_that_run_each_channel(db: TestStore) {
        let config = support::web::config(&db);
        let app = WebApp::with_config(db, config).await;
        let admin = app.admin().await;
        // A connection report left behind by an instance that has stopped.
        helpdesk::store::health::report(
            &app.db.store,
            &helpdesk::store::health::ChannelHealth {
                channel: "email".into(),
                name: "delivery".into(),
                connected: false,
                detail: None,
                last_success_at: None,
                last_error: Some("451 try again".into()),
                last_error_at: Some(Utc::now()),
                consecutive_failures: 2,
                backlog: 1,
                updated_at: Utc::now(),
            },
        )
        .await
        .expect("reported");
        let page = app.get("/admin/channels", Some(&admin)).await.body;
        let email = section(&page, "channel-email");
        assert!(email.contains(">not enabled<"), "{email}");
        assert!(!page.contains("enabled on another instance"), "{page}");
        assert!(page.contains("No server has reported"), "{page}");

        support::other_instance(
            &app.db.store,
            &[helpdesk::helpdesk_channel::ChannelKind::Email],
            Utc::now(),
        )
        .await;
        let page = app.get("/admin/channels", Some(&admin)).await.body;
        let email = section(&page, "channel-email");
        assert!(email.contains("enabled on another instance"), "{email}");
        assert!(email.contains("other-host (pid"), "{email}");
        assert!(section(&page, "channel-telegram").contains(">not enabled<"));
        assert!(section(&page, "instances").contains("other-host"));
    }
}

/// The `<section id="…">` of a page.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no section {id} in {page}"));
    let end = page[start..]
        .find("</section>")
        .map_or(page.len(), |end| start + end);
    &page[start..end]
}

store_test! {
    #[tokio::test]
    async fn merging_another_customers_ticket_asks_first_and_a_merged_ticket_takes_no_replies(app: WebApp) {
        let admin = app.admin().await;
        let max = app
            .mail_from("Max Muster <max@example.org>", "m-1@example.org", "Login")
            .await;
        let pia = app
            .mail_from(
                "Pia Example <pia@example.org>",
                "p-1@example.org",
                "Login too",
            )
            .await;
        let reply = app
            .post(
                &format!("/tickets/{pia}/reply"),
                &admin,
                &[("text", "Looking into it")],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);

        // Different customers: a confirmation page says whose messages move where.
        let asked = app
            .post(
                &format!("/tickets/{pia}/merge"),
                &admin,
                &[("into", &max.to_string()), ("reason", "same outage")],
            )
            .await;
        assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
        assert!(
            asked.body.contains(&format!(
                "The 2 messages of Pia Example (pia@example.org) on #{pia} move to #{max} of \
                 Max Muster (max@example.org)."
            )),
            "{}",
            asked.body
        );
        assert!(asked.body.contains("name=\"confirm\" value=\"yes\""));
        assert!(asked.body.contains("name=\"reason\" value=\"same outage\""));
        assert_eq!(
            app.detail(pia).await.summary.status,
            "open",
            "nothing merged yet"
        );

        let merged = app
            .post(
                &format!("/tickets/{pia}/merge"),
                &admin,
                &[
                    ("into", &max.to_string()),
                    ("reason", "same outage"),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(merged.status, StatusCode::SEE_OTHER, "{}", merged.body);
        assert_eq!(app.detail(max).await.messages.len(), 3);

        // The merged ticket points on and offers neither a reply nor a merge form.
        let page = app.get(&format!("/tickets/{pia}"), Some(&admin)).await.body;
        assert!(page.contains("id=\"merged-notice\""), "{page}");
        assert!(page.contains(&format!("<a href=\"/tickets/{max}\">#{max}</a>")));
        assert!(!page.contains("id=\"reply-form\"") && !page.contains("id=\"merge-form\""));
        let late = app
            .post(
                &format!("/tickets/{pia}/reply"),
                &admin,
                &[("text", "Hello?")],
            )
            .await;
        assert_eq!(
            late.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            late.body
        );
        assert!(
            section(&late.body, "reply-error").contains(&format!("merged into #{max}")),
            "{}",
            late.body
        );

        // The history reads as sentences with names.
        let history = section(&page, "history");
        assert!(
            history.contains(&format!("Merged into #{max}")),
            "{history}"
        );
        assert!(
            history.contains("Created by mail from Pia Example (pia@example.org)"),
            "{history}"
        );
        let page = app.get(&format!("/tickets/{max}"), Some(&admin)).await.body;
        assert!(
            section(&page, "history").contains(&format!("#{pia} merged into this ticket")),
            "{page}"
        );

        // The same customer's tickets merge without asking.
        let first = app.ticket("same-1@example.org", "Printer", "a").await;
        let second = app.ticket("same-2@example.org", "Printer again", "b").await;
        let merged = app
            .post(
                &format!("/tickets/{second}/merge"),
                &admin,
                &[("into", &first.to_string())],
            )
            .await;
        assert_eq!(merged.status, StatusCode::SEE_OTHER, "{}", merged.body);
    }
}

store_test! {
    #[tokio::test]
    async fn history_names_departments_agents_and_rules(app: WebApp) {
        let admin = app.admin().await;
        let number = app
            .ticket("h-1@example.org", "Invoice 7", "Charged twice")
            .await;
        app.route(number, Some(app.billing)).await;
        app.route(number, Some(app.technical)).await;
        let changed = app
            .post(
                &format!("/tickets/{number}/update"),
                &admin,
                &[
                    ("assignee", &app.agent_id.to_string()),
                    ("status", "open"),
                    ("reason", "needs the bank"),
                ],
            )
            .await;
        assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
        // A rule that names a department and an agent by id.
        let rule = helpdesk::store::rules::create(
            &app.db.store,
            helpdesk::store::rules::NewRule {
                name: "Invoices to Billing".into(),
                enabled: true,
                conditions: vec![helpdesk::domain::rules::Condition::SubjectContains {
                    any: vec!["invoice".into()],
                }],
                actions: vec![
                    helpdesk::domain::rules::Action::SetDepartment {
                        department: app.billing,
                    },
                    helpdesk::domain::rules::Action::AssignTo {
                        agent: app.agent_id,
                    },
                ],
                stop: true,
            },
            Utc::now(),
        )
        .await;
        assert!(rule.is_ok(), "{rule:?}");
        let routed = app.ticket("h-2@example.org", "Invoice 8", "Again").await;
        let id = views::ticket_facts(&app.db.store, routed)
            .await
            .expect("read")
            .expect("exists")
            .id;
        let settings = helpdesk::jobs::JobSettings::from_settings(
            &helpdesk::config::Settings::load_from(None, Vec::new()).expect("defaults"),
        );
        helpdesk::jobs::assign::assign_ticket(&app.db.store, id, &settings.routing(), Utc::now())
            .await
            .expect("assigned");

        let page = app
            .get(&format!("/tickets/{number}"), Some(&admin))
            .await
            .body;
        let history = section(&page, "history");
        for line in [
            "Created by mail from Carla Customer (carla@example.org)",
            "Department: none → Billing",
            "Department: Billing → Technical",
            "Assignee: unassigned → Abe Agent",
            "Status: new → open",
            "needs the bank",
        ] {
            assert!(history.contains(line), "{line} missing in {history}");
        }
        let page = app
            .get(&format!("/tickets/{routed}"), Some(&admin))
            .await
            .body;
        let history = section(&page, "history");
        assert!(
            history.contains(
                "Rule “Invoices to Billing” applied: department → Billing; assignee → Abe Agent"
            ),
            "{history}"
        );
        assert!(!history.contains("agent #"), "{history}");
    }
}

store_test! {
    #[tokio::test]
    async fn the_ticket_page_shows_sender_addresses_and_links_to_a_ticket_a_stranger_named(app: WebApp) {
        let admin = app.admin().await;
        let number = app
            .mail_from("Ada Lovelace <ada@example.org>", "sl1@x", "Printer")
            .await;
        // A stranger under Ada's name, naming her ticket by its tag: a ticket of its own.
        let apart = app
            .ticket_by(
                "Ada Lovelace <mallory@evil.example>",
                "sl2@x",
                &format!("Re: [#{number}] Printer"),
                "Send the refund to my other account.",
            )
            .await;

        let named = app.get(&format!("/tickets/{number}"), Some(&admin)).await;
        assert_eq!(named.status, StatusCode::OK);
        assert!(
            named.body.contains("<strong>Ada Lovelace</strong> <span class=\"address\">&lt;ada@example.org&gt;</span>"),
            "{}",
            named.body
        );
        assert!(!named.body.contains("Send the refund"), "nothing joined");
        assert!(
            named.body.contains(&format!(
                "Named by <a href=\"/tickets/{apart}\">#{apart}</a>"
            )),
            "{}",
            named.body
        );
        assert!(
            named
                .body
                .contains(&format!("#{apart} opened apart from this ticket"))
        );

        let new = app.get(&format!("/tickets/{apart}"), Some(&admin)).await;
        assert!(
            new.body.contains("<strong>Ada Lovelace</strong> <span class=\"address\">&lt;mallory@evil.example&gt;</span>"),
            "{}",
            new.body
        );
        assert!(
            new.body.contains(&format!(
                "Opened apart from <a href=\"/tickets/{number}\">#{number}</a>"
            )),
            "{}",
            new.body
        );
    }
}
