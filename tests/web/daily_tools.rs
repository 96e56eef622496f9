//! The agents' daily tools on the pages: unread customer messages per agent (the list's marker,
//! the navigation's figure, the filter), whom a ticket waits for, the list's total and pages
//! both ways with closed tickets hidden by default, times in a chosen zone, and the tags page.

use super::*;
use chrono::{DateTime, TimeZone};
use helpdesk::domain::Status;
use helpdesk::domain::tags::TagChange;
use helpdesk::ops::{ChangedBy, TicketChange};

/// The `<tr>` of ticket `number` in a list page.
fn row(page: &str, number: i64) -> &str {
    let link = format!("href=\"/tickets/{number}\">#{number}</a>");
    let at = page
        .find(&link)
        .unwrap_or_else(|| panic!("no row for #{number} in {page}"));
    let start = page[..at].rfind("<tr").expect("row start");
    let end = page[at..].find("</tr>").map_or(page.len(), |end| at + end);
    &page[start..end]
}

/// The customer writes again on ticket `number`, answering their mail `thread`.
async fn customer_writes(app: &WebApp, number: i64, thread: &str, id: &str) {
    let raw = support::mail(
        &[
            "From: Carla Customer <carla@example.org>",
            &format!("Subject: Re: [#{number}] Still broken"),
            &format!("Message-ID: <{id}>"),
            &format!("In-Reply-To: <{thread}>"),
        ],
        "It is still broken.",
    );
    app.db.intake.accept_email(raw).await.expect("taken in");
    assert!(
        app.detail(number).await.messages.len() > 1,
        "the reply joined #{number}"
    );
}

async fn change(app: &WebApp, number: i64, change: TicketChange) {
    helpdesk::ops::apply(
        &app.db.store,
        number.into(),
        ChangedBy {
            agent_id: app.admin_id,
            now: Utc::now(),
        },
        &change,
    )
    .await
    .expect("changed");
}

const UNREAD: &str = "● new<span class=\"visually-hidden\"> unread</span>";

store_test! {
    #[tokio::test]
    async fn unread_messages_are_per_agent_and_waiting_flips_on_a_reply(app: WebApp) {
        let backend = app.db.backend();
        let number = app.ticket("unread-1@example.org", "Printer broken", "It is broken.").await;
        app.route(number, Some(app.billing)).await;
        change(&app, number, TicketChange {
            assignee: Some(Some(app.admin_id)),
            ..Default::default()
        })
        .await;
        let admin = app.admin().await;
        let agent = app.agent().await;

        // A new customer message: unread for both, counted in the admin's navigation (the
        // ticket is theirs), waiting for us.
        let list = app.get("/tickets", Some(&admin)).await.body;
        assert!(row(&list, number).contains(UNREAD), "{backend:?}: {list}");
        assert!(row(&list, number).contains("<td class=\"waiting wide-only\">us</td>"));
        assert!(list.contains("Tickets<span id=\"nav-unread\"> (1 unread)</span>"), "{list}");
        let page = app.get(&format!("/tickets/{number}"), Some(&admin)).await.body;
        assert!(page.contains("Waiting for us"), "{page}");

        // The admin opened it: read for them, still unread for the agent.
        let list = app.get("/tickets", Some(&admin)).await.body;
        assert!(!row(&list, number).contains(UNREAD), "{backend:?}: {list}");
        assert!(list.contains("<span id=\"nav-unread\"></span>"), "{list}");
        let only = app.get("/tickets?unread=1", Some(&admin)).await.body;
        assert!(!only.contains("Printer broken"), "{only}");
        let theirs = app.get("/tickets?unread=1", Some(&agent)).await.body;
        assert!(row(&theirs, number).contains(UNREAD), "{theirs}");

        // The customer writes again: unread again for the admin.
        customer_writes(&app, number, "unread-1@example.org", "unread-2@example.org").await;
        let list = app.get("/tickets?unread=1", Some(&admin)).await.body;
        assert!(row(&list, number).contains(UNREAD), "{backend:?}: {list}");
        assert!(list.contains("(1 unread)"));

        // An agent's reply: now the customer is the one to act.
        helpdesk::ops::send_reply(
            &app.db.store,
            &helpdesk::store::outbound::NewReply {
                number: number.into(),
                agent_id: app.admin_id,
                text: "Please restart it.",
                kind: helpdesk::domain::MessageKind::Public,
                external_id: Some("<unread-reply@helpdesk.example>"),
                now: Utc::now(),
                channels_here: &[helpdesk::helpdesk_channel::ChannelKind::Email],
            },
        )
        .await
        .expect("reply queued");
        let list = app.get("/tickets", Some(&agent)).await.body;
        assert!(row(&list, number).contains("<td class=\"waiting wide-only\">customer</td>"), "{list}");
        let page = app.get(&format!("/tickets/{number}"), Some(&agent)).await.body;
        assert!(page.contains("Waiting for the customer"), "{page}");
        // An internal note changes nothing of that.
        helpdesk::ops::send_reply(
            &app.db.store,
            &helpdesk::store::outbound::NewReply {
                number: number.into(),
                agent_id: app.admin_id,
                text: "Checked the logs.",
                kind: helpdesk::domain::MessageKind::Internal,
                external_id: None,
                now: Utc::now(),
                channels_here: &[helpdesk::helpdesk_channel::ChannelKind::Email],
            },
        )
        .await
        .expect("note");
        let list = app.get("/tickets", Some(&agent)).await.body;
        assert!(row(&list, number).contains("<td class=\"waiting wide-only\">customer</td>"));
        assert!(!row(&list, number).contains(UNREAD), "opened after the last customer message");
    }
}

store_test! {
    #[tokio::test]
    async fn the_list_counts_pages_both_ways_and_hides_closed_tickets_by_default(app: WebApp) {
        let backend = app.db.backend();
        let mut numbers = Vec::new();
        for i in 0..55 {
            let subject = format!("Case {i:02}");
            numbers.push(app.ticket(&format!("page-{i}@example.org"), &subject, "x").await);
        }
        for number in &numbers[..2] {
            change(&app, *number, TicketChange {
                status: Some(Status::Closed),
                ..Default::default()
            })
            .await;
        }
        let admin = app.admin().await;
        let first = app.get("/tickets", Some(&admin)).await.body;
        assert!(first.contains(">53 tickets"), "{backend:?}: {first}");
        assert!(!first.contains("Case 00") && !first.contains("Case 01"), "closed hidden");
        assert!(!first.contains("rel=\"prev\""));
        let rows = |page: &str| {
            numbers
                .iter()
                .filter(|n| page.contains(&format!("href=\"/tickets/{n}\">#{n}</a>")))
                .copied()
                .collect::<Vec<_>>()
        };
        assert_eq!(rows(&first).len(), 50);
        let link = |page: &str, rel: &str| {
            let marker = format!("\" rel=\"{rel}\"");
            let end = page.find(&marker).unwrap_or_else(|| panic!("no {rel} link in {page}"));
            let start = page[..end].rfind("href=\"").expect("href") + "href=\"".len();
            page[start..end].replace("&amp;", "&")
        };
        let second = app.get(&link(&first, "next"), Some(&admin)).await.body;
        assert_eq!(rows(&second).len(), 3, "{second}");
        assert!(second.contains(">53 tickets"));
        assert!(!second.contains("rel=\"next\""));
        let back = app.get(&link(&second, "prev"), Some(&admin)).await.body;
        assert_eq!(rows(&back), rows(&first), "{backend:?}: the previous page is the first");
        assert!(!back.contains("rel=\"prev\""), "nothing before the first page");

        let everything = app.get("/tickets?status=any", Some(&admin)).await.body;
        assert!(everything.contains(">55 tickets"), "{everything}");
        assert!(everything.contains("Case 00") && everything.contains("Case 01"));
        let closed = app.get("/tickets?status=closed", Some(&admin)).await.body;
        assert!(closed.contains(">2 tickets"), "{closed}");
        assert!(first.contains("any status incl. closed"));
    }
}

/// Sets when ticket `number` last changed, straight in the database.
async fn updated_at(app: &WebApp, number: i64, at: DateTime<Utc>) {
    let sql = "UPDATE tickets SET updated_at = $1 WHERE number = $2";
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
    .expect("updated");
}

store_test! {
    #[tokio::test]
    async fn times_show_in_the_chosen_zone_with_utc_on_hover(app: WebApp) {
        let backend = app.db.backend();
        let summer = app.ticket("tz-1@example.org", "Summer", "x").await;
        let winter = app.ticket("tz-2@example.org", "Winter", "x").await;
        updated_at(&app, summer, Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).single().expect("a time")).await;
        updated_at(&app, winter, Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).single().expect("a time")).await;
        let admin = app.admin().await;

        // No zone chosen: UTC, marked for the browser's script to convert.
        let list = app.get("/tickets", Some(&admin)).await.body;
        assert!(
            row(&list, summer).contains(
                "title=\"2026-07-01 12:00:00 UTC\" data-local>2026-07-01 12:00</time>"
            ),
            "{backend:?}: {list}"
        );

        let refused = app.post("/account/time-zone", &admin, &[("time_zone", "Mars/Base")]).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(refused.body.contains("not an IANA time zone"), "{}", refused.body);
        let saved = app
            .post("/account/time-zone", &admin, &[("time_zone", "Europe/Berlin")])
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let account = app.get("/account?zone_saved=true", Some(&admin)).await.body;
        assert!(account.contains("<option value=\"Europe/Berlin\" selected>"), "{account}");

        // Berlin is two hours ahead in summer (CEST), one in winter (CET).
        let list = app.get("/tickets", Some(&admin)).await.body;
        assert!(
            row(&list, summer)
                .contains("title=\"2026-07-01 12:00:00 UTC\">2026-07-01 14:00</time>"),
            "{backend:?}: {list}"
        );
        assert!(
            row(&list, winter)
                .contains("title=\"2026-12-01 12:00:00 UTC\">2026-12-01 13:00</time>"),
            "{list}"
        );
        // Someone else still reads in their browser's zone.
        let agent = app.agent().await;
        app.route(summer, Some(app.billing)).await;
        updated_at(&app, summer, Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).single().expect("a time")).await;
        let theirs = app.get("/tickets", Some(&agent)).await.body;
        assert!(row(&theirs, summer).contains("data-local>2026-07-01 12:00</time>"));

        // Back to the browser's zone.
        let cleared = app.post("/account/time-zone", &admin, &[("time_zone", "")]).await;
        assert_eq!(cleared.status, StatusCode::SEE_OTHER);
        let list = app.get("/tickets", Some(&admin)).await.body;
        assert!(row(&list, winter).contains("data-local>2026-12-01 12:00</time>"));
    }
}

store_test! {
    #[tokio::test]
    async fn the_tags_page_counts_tickets_and_the_filter_suggests_tags(app: WebApp) {
        let backend = app.db.backend();
        let tag = |add: &[&str]| TicketChange {
            tags: Some(TagChange::Edit {
                add: add.iter().map(|t| t.to_string()).collect(),
                remove: Vec::new(),
            }),
            ..Default::default()
        };
        let one = app.ticket("tag-1@example.org", "One", "x").await;
        let two = app.ticket("tag-2@example.org", "Two", "x").await;
        let three = app.ticket("tag-3@example.org", "Three", "x").await;
        change(&app, one, tag(&["vip", "billing"])).await;
        change(&app, two, tag(&["vip"])).await;
        change(&app, three, tag(&["vip"])).await;
        change(&app, three, TicketChange {
            status: Some(Status::Closed),
            ..Default::default()
        })
        .await;
        let admin = app.admin().await;
        let page = app.get("/tags", Some(&admin)).await.body;
        let vip = &page[page.find(">vip</a>").expect("vip row")..];
        let vip = &vip[..vip.find("</tr>").expect("row end")];
        assert!(
            vip.contains("<td class=\"num\">3</td>") && vip.contains(">2</a>"),
            "{backend:?}: {page}"
        );
        assert!(page.find(">vip</a>") < page.find(">billing</a>"), "most used first");
        assert!(page.contains("href=\"/tickets?tag=vip\""), "active ones link the list");

        let list = app.get("/tickets", Some(&admin)).await.body;
        assert!(list.contains("list=\"known-tags\""));
        assert!(list.contains("<option value=\"vip\">vip (3)</option>"), "{list}");
        let vips = app.get("/tickets?tag=vip", Some(&admin)).await.body;
        assert!(vips.contains(">2 tickets"), "{vips}");

        // An agent counts only the tickets they may see.
        app.route(one, Some(app.billing)).await;
        let agent = app.agent().await;
        let theirs = app.get("/tags", Some(&agent)).await.body;
        assert!(theirs.contains(">vip</a>") && theirs.contains("<td class=\"num\">1</td>"));
    }
}

store_test! {
    #[tokio::test]
    async fn the_list_marks_tickets_overdue_or_due_soon(app: WebApp) {
        let backend = app.db.backend();
        let overdue = app.ticket("due-1@example.org", "Waiting a day", "x").await;
        let soon = app.ticket("due-2@example.org", "Waiting seven hours", "x").await;
        let fresh = app.ticket("due-3@example.org", "Just came in", "x").await;
        // Normal priority: a first response within 8 h. The overdue one was never checked, so
        // the list works its due time out from the [sla] defaults; the other's SLA check keeps
        // its due time on the ticket.
        let now = Utc::now();
        let overdue_id = app.detail(overdue).await.summary.id;
        crate::sla::clock::created_at(&app.db, overdue_id.get(), now - chrono::Duration::hours(24)).await;
        let soon_id = app.detail(soon).await.summary.id;
        let created = now - chrono::Duration::minutes(7 * 60 + 30);
        crate::sla::clock::created_at(&app.db, soon_id.get(), created).await;
        let check = helpdesk::jobs::sla::SlaCheck {
            ticket_id: soon_id,
            target: helpdesk::domain::sla::Target::FirstResponse,
        };
        let checked =
            helpdesk::jobs::sla::check(&app.db.store, &app.state.config.sla, check, now).await;
        assert!(matches!(checked, Ok(helpdesk::jobs::sla::SlaOutcome::CheckAgainAt(_))), "{checked:?}");

        let admin = app.admin().await;
        let list = app.get("/tickets", Some(&admin)).await.body;
        let due = |number: i64| {
            let row = row(&list, number);
            let start = row.find("<td class=\"due").unwrap_or_else(|| panic!("no due cell in {row}"));
            let cell = &row[start..];
            cell[..cell.find("</td>").expect("cell end")].to_owned()
        };
        let cell = due(overdue);
        assert!(cell.contains("first response") && cell.contains("<span class=\"badge overdue\">overdue</span>"), "{backend:?}: {cell}");
        assert!(!cell.contains("due-soon"), "{cell}");
        let cell = due(soon);
        assert!(cell.contains("first response") && cell.contains("<span class=\"badge due-soon\">due soon</span>"), "{backend:?}: {cell}");
        assert!(!cell.contains("overdue"), "{cell}");
        let cell = due(fresh);
        assert!(cell.contains("first response"), "{cell}");
        assert!(!cell.contains("overdue") && !cell.contains("due-soon"), "{backend:?}: {cell}");
    }
}
