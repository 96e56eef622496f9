//! The dashboard's counts and SLA figures, and the web benchmark over every page.

use super::*;

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
        // Four kinds of list and ticket page, then each kind of search apart.
        assert_eq!(report.pages.len(), 14);
        for page in &report.pages {
            assert!(page.requests > 0, "{page:?}");
            assert!(
                page.p50_ms <= page.p99_ms && page.p99_ms <= page.max_ms,
                "{page:?}"
            );
        }
    }
}

/// `helpdesk bench live` against a real `serve`: every browser gets every change, and the
/// server's memory is read from its own process.
#[tokio::test]
async fn the_live_benchmark_delivers_every_change_to_every_browser() {
    let mut urls = vec![None];
    if let Some(server) = support::postgres_url() {
        urls.push(Some(server));
    }
    for database_url in urls {
        let report = helpdesk::web::bench_live::run(&helpdesk::web::bench_live::LiveBench {
            viewers: 20,
            changes: 3,
            interval: std::time::Duration::from_millis(100),
            tickets: 200,
            database_url: database_url.clone(),
            program: env!("CARGO_BIN_EXE_helpdesk").into(),
        })
        .await
        .unwrap_or_else(|error| panic!("{database_url:?}: {error}"));
        assert_eq!((report.deliveries, report.missed), (60, 0), "{report:?}");
        assert!(report.p50_ms <= report.p99_ms && report.p99_ms <= report.max_ms);
        assert!(report.rss_streams_mb > 1.0 && report.rss_peak_mb >= report.rss_streams_mb);
        assert_eq!(report.pages.len(), 2);
    }
}
