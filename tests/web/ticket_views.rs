//! What the ticket pages show: the list's filters, search and pages, attachments as downloads
//! with sanitized mail HTML, and the senders' addresses.

use super::*;

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
                seen.extend(page.tickets.iter().map(|t| t.number.get()));
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
            rank: None,
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
        let detail = app.detail(number.get()).await;
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

store_test! {
    #[tokio::test]
    async fn the_ticket_page_shows_sender_addresses_and_links_to_a_ticket_a_stranger_named(
        app: WebApp,
    ) {
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
