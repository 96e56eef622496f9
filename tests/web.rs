//! The web pages over HTTP on every backend: sign-in and sessions, the role matrix, CSRF
//! refusals, the ticket forms, the admin pages, downloads, and live events.

mod support;

use std::time::Duration;

use axum::http::{Method, StatusCode, header};
use chrono::Utc;
use helpdesk::store::views::{self, ListQuery, Visibility};
use http_body_util::BodyExt;
use support::stores;
use support::web::{PASSWORD, WebApp};
use tower::ServiceExt;

async fn apps(test: &str) -> Vec<WebApp> {
    let mut apps = Vec::new();
    for db in stores(test).await {
        apps.push(WebApp::new(db).await);
    }
    apps
}

#[tokio::test]
async fn sign_in_sets_a_safe_cookie_and_sign_out_ends_the_session() {
    for app in apps("web_sign_in").await {
        let backend = app.db.backend();
        let anonymous = app.get("/", None).await;
        assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
        assert_eq!(anonymous.location(), "/login?next=%2F");
        let form = app.get("/login", None).await;
        assert_eq!(form.status, StatusCode::OK);
        assert!(form.body.contains("name=\"email\"") && form.body.contains("name=\"password\""));

        let wrong = app
            .request(
                Method::POST,
                "/login",
                None,
                Some(&[
                    ("email", "admin@helpdesk.example"),
                    ("password", "not it at all"),
                ]),
            )
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{backend:?}");
        assert!(wrong.body.contains("Wrong email or password"));
        assert!(wrong.headers.get(header::SET_COOKIE).is_none());

        let signed_in = app
            .request(
                Method::POST,
                "/login",
                None,
                Some(&[
                    ("email", "Admin@Helpdesk.example"),
                    ("password", PASSWORD),
                    ("next", "/tickets"),
                ]),
            )
            .await;
        assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
        assert_eq!(signed_in.location(), "/tickets");
        let cookie = signed_in.headers[header::SET_COOKIE]
            .to_str()
            .expect("ascii");
        for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
        }

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
            .request(
                Method::POST,
                "/login",
                None,
                Some(&[
                    ("email", "admin@helpdesk.example"),
                    ("password", PASSWORD),
                    ("next", "//evil.example/"),
                ]),
            )
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

#[tokio::test]
async fn failed_sign_ins_are_rate_limited_and_cross_site_sign_ins_refused() {
    for app in apps("web_rate_limit").await {
        for _ in 0..5 {
            let wrong = app
                .request(
                    Method::POST,
                    "/login",
                    None,
                    Some(&[
                        ("email", "agent@helpdesk.example"),
                        ("password", "guessing"),
                    ]),
                )
                .await;
            assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        }
        let limited = app
            .request(
                Method::POST,
                "/login",
                None,
                Some(&[("email", "agent@helpdesk.example"), ("password", PASSWORD)]),
            )
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

/// Every page and action for anonymous visitors, agents and admins.
#[tokio::test]
async fn the_role_matrix_holds_for_every_page_and_action() {
    for app in apps("web_roles").await {
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
            "/admin/agents",
            "/admin/departments",
            "/admin/channels",
            "/admin/jobs",
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

        let rule_json = r#"[{"if": "subject_contains", "any": ["refund"]}]"#;
        let action_json = r#"[{"then": "set_priority", "priority": "high"}]"#;
        let admin_actions: Vec<(&str, Vec<(&str, &str)>)> = vec![
            (
                "/admin/rules",
                vec![
                    ("name", "Refunds"),
                    ("enabled", "1"),
                    ("conditions", rule_json),
                    ("actions", action_json),
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
            assert_eq!(
                done.status,
                StatusCode::SEE_OTHER,
                "admin {path}: {}",
                done.body
            );
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

#[tokio::test]
async fn replies_notes_changes_and_merges_are_recorded_with_who_and_why() {
    for app in apps("web_ticket_forms").await {
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

#[tokio::test]
async fn the_list_filters_searches_and_pages_by_keyset() {
    for app in apps("web_list").await {
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

#[tokio::test]
async fn attachments_download_as_files_and_mail_html_is_sanitized() {
    for app in apps("web_attachments").await {
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

#[tokio::test]
async fn the_rules_editor_explains_mistakes_and_keeps_order() {
    for app in apps("web_rules").await {
        let admin = app.admin().await;
        let bad_json = app
            .post(
                "/admin/rules",
                &admin,
                &[
                    ("name", "Broken"),
                    ("conditions", r#"[{"if": "subject_has", "any": ["x"]}]"#),
                    ("actions", "[]"),
                ],
            )
            .await;
        assert_eq!(bad_json.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(bad_json.body.contains("conditions"), "{}", bad_json.body);
        assert!(
            bad_json.body.contains("subject_has"),
            "the form keeps what was typed"
        );
        let no_actions = app
            .post(
                "/admin/rules",
                &admin,
                &[
                    ("name", "Idle"),
                    ("conditions", r#"[{"if": "channel", "any": ["email"]}]"#),
                    ("actions", "[]"),
                ],
            )
            .await;
        assert_eq!(no_actions.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            no_actions.body.contains("has no actions"),
            "{}",
            no_actions.body
        );
        let bad_regex = app
            .post(
                "/admin/rules",
                &admin,
                &[
                    ("name", "Regex"),
                    ("conditions", r#"[{"if": "text_matches", "regex": "(("}]"#),
                    ("actions", r#"[{"then": "add_tags", "tags": ["x"]}]"#),
                ],
            )
            .await;
        assert!(
            bad_regex.body.contains("invalid regular expression"),
            "{}",
            bad_regex.body
        );

        for name in ["First", "Second"] {
            let created = app
                .post(
                    "/admin/rules",
                    &admin,
                    &[
                        ("name", name),
                        ("enabled", "1"),
                        ("conditions", "[]"),
                        ("actions", r#"[{"then": "add_tags", "tags": ["t"]}]"#),
                    ],
                )
                .await;
            assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        }
        let rules = helpdesk::store::rules::list(&app.db.store)
            .await
            .expect("rules");
        let second = rules[1].id;
        app.post(
            &format!("/admin/rules/{second}/move"),
            &admin,
            &[("direction", "up")],
        )
        .await;
        let rules = helpdesk::store::rules::list(&app.db.store)
            .await
            .expect("rules");
        assert_eq!(rules[0].name, "Second");
        let edited = app
            .post(
                &format!("/admin/rules/{second}"),
                &admin,
                &[
                    ("name", "Second, edited"),
                    ("conditions", r#"[{"if": "priority", "any": ["urgent"]}]"#),
                    ("actions", r#"[{"then": "assign_to", "agent": 1}]"#),
                ],
            )
            .await;
        assert_eq!(edited.status, StatusCode::SEE_OTHER, "{}", edited.body);
        let rules = helpdesk::store::rules::list(&app.db.store)
            .await
            .expect("rules");
        assert_eq!(rules[0].name, "Second, edited");
        assert!(!rules[0].enabled, "an unchecked box disables the rule");
        let edit_page = app
            .get(&format!("/admin/rules/{second}"), Some(&admin))
            .await;
        assert!(edit_page.body.contains("Second, edited"));
        app.post(&format!("/admin/rules/{second}/delete"), &admin, &[])
            .await;
        assert_eq!(
            helpdesk::store::rules::list(&app.db.store)
                .await
                .expect("rules")
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn agents_departments_jobs_and_channels_pages_change_what_they_show() {
    for app in apps("web_admin").await {
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
                    ("active", "1"),
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
                &[("role", "agent"), ("active", "1")],
            )
            .await;
        assert_eq!(demote_self.status, StatusCode::UNPROCESSABLE_ENTITY);

        // A new agent with a password can sign in; a deactivated one is signed out.
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
            &format!("/admin/agents/{zoe_id}"),
            &admin,
            &[("role", "agent")],
        )
        .await;
        assert_eq!(app.get("/", Some(&zoe)).await.status, StatusCode::SEE_OTHER);

        let channels = app.get("/admin/channels", Some(&admin)).await.body;
        for name in ["email", "telegram", "discord"] {
            assert!(channels.contains(&format!("id=\"channel-{name}\"")));
        }
        assert!(channels.contains("not configured"));
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
        assert!(channels.contains("enabled on another instance"));
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

#[tokio::test]
async fn the_dashboard_counts_open_unassigned_overdue_and_today() {
    for app in apps("web_dashboard").await {
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

#[tokio::test]
async fn live_events_tell_about_changes_and_assignments() {
    for app in apps("web_live").await {
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
