//! Calendars and SLA policies over the JSON API and the admin page, and each target in the
//! ticket JSON.

use crate::support::web::{WebApp, call, multipart, post_body};
use axum::http::{Method, StatusCode};
use chrono::{Duration, Utc};
use helpdesk::domain::Role;
use helpdesk::domain::sla::Target;
use helpdesk::jobs::sla::{self, SlaCheck};
use helpdesk::store::api_tokens;
use serde_json::json;

async fn token(app: &WebApp, agent_id: i64, role: Role) -> String {
    api_tokens::create(&app.db.store, agent_id, "test", role, Utc::now())
        .await
        .expect("token")
        .token
}

const ICS: &str = include_str!("../fixtures/holidays-berlin.ics");

store_test! {
    #[tokio::test]
    async fn calendars_and_policies_round_trip_over_the_api(app: WebApp) {
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let agent = token(&app, app.agent_id, Role::Agent).await;
        let calendar = format!("/api/v1/departments/{}/calendar", app.billing);
        call(&app, Method::GET, &calendar, Some(&admin), None, &[])
            .await
            .problem(StatusCode::NOT_FOUND);
        let body = json!({
            "time_zone": "Europe/Berlin",
            "hours": {"mon": ["13:00-17:00", "09:00-12:00"], "fri": ["09:00-15:00"]},
            "holidays": [{"date": "2026-12-24", "name": "Christmas Eve"}]
        });
        call(&app, Method::PUT, &calendar, Some(&agent), Some(body.clone()), &[])
            .await
            .problem(StatusCode::FORBIDDEN);
        let saved = call(&app, Method::PUT, &calendar, Some(&admin), Some(body), &[]).await;
        assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
        assert_eq!(saved.body["hours"]["mon"], json!(["09:00-12:00", "13:00-17:00"]));
        assert_eq!(saved.body["holidays"][0]["date"], "2026-12-24");
        let bad = json!({"time_zone": "Mars/Olympus", "hours": {"mon": ["09:00-17:00"]}});
        call(&app, Method::PUT, &calendar, Some(&admin), Some(bad), &[])
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);
        let overlapping = json!({"time_zone": "UTC", "hours": {"mon": ["09:00-12:00", "11:00-13:00"]}});
        call(&app, Method::PUT, &calendar, Some(&admin), Some(overlapping), &[])
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);

        // An iCalendar file adds its all-day events; the hand-made holiday stays.
        let import = format!("/api/v1/departments/{}/holidays/import", app.billing);
        let bearer = format!("Bearer {admin}");
        let answer = post_body(
            &app,
            &import,
            &[("authorization", bearer.as_str())],
            ("text/calendar".to_owned(), ICS.as_bytes().to_vec()),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let imported: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
        assert_eq!(imported["skipped"], 1);
        assert_eq!(imported["read"], imported["added"]);
        let holidays = imported["calendar"]["holidays"].as_array().expect("holidays");
        assert!(holidays.iter().any(|h| h["date"] == "2026-12-24"));
        assert!(holidays.iter().any(|h| h["date"] == "2026-12-25" && h["name"] == "1. Weihnachtstag"));
        let agent_bearer = format!("Bearer {agent}");
        let refused = post_body(
            &app,
            &import,
            &[("authorization", agent_bearer.as_str())],
            ("text/calendar".to_owned(), ICS.as_bytes().to_vec()),
        )
        .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let not_ics = post_body(
            &app,
            &import,
            &[("authorization", bearer.as_str())],
            ("text/calendar".to_owned(), b"hello".to_vec()),
        )
        .await;
        assert_eq!(not_ics.status, StatusCode::UNPROCESSABLE_ENTITY);

        // The policy: the department's own targets over the defaults.
        let policy = format!("/api/v1/departments/{}/sla-policy", app.billing);
        let read = call(&app, Method::GET, &policy, Some(&agent), None, &[]).await;
        assert_eq!(read.status, StatusCode::OK, "{}", read.text);
        assert_eq!(read.body["effective"]["first_response"]["normal"], 480);
        assert_eq!(read.body["effective"]["next_response"]["urgent"], 60);
        let own = json!({"first_response": {"normal": 90}, "resolution": {"urgent": 120}});
        let saved = call(&app, Method::PUT, &policy, Some(&admin), Some(own), &[]).await;
        assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
        assert_eq!(saved.body["first_response"], json!({"normal": 90}));
        assert_eq!(saved.body["effective"]["first_response"]["normal"], 90);
        assert_eq!(saved.body["effective"]["first_response"]["high"], 120);
        assert_eq!(saved.body["effective"]["resolution"]["urgent"], 120);
        call(&app, Method::PUT, &policy, Some(&admin), Some(json!({"first_response": {"low": 0}})), &[])
            .await
            .problem(StatusCode::CONFLICT);
        call(&app, Method::GET, "/api/v1/departments/999999/sla-policy", Some(&admin), None, &[])
            .await
            .problem(StatusCode::NOT_FOUND);

        // Removing the calendar: around the clock again.
        let removed = call(&app, Method::DELETE, &calendar, Some(&admin), None, &[]).await;
        assert_eq!(removed.status, StatusCode::NO_CONTENT);
        call(&app, Method::GET, &calendar, Some(&admin), None, &[])
            .await
            .problem(StatusCode::NOT_FOUND);

        let openapi = call(&app, Method::GET, "/api/openapi.json", None, None, &[]).await;
        for path in [
            "/api/v1/departments/{id}/calendar",
            "/api/v1/departments/{id}/holidays/import",
            "/api/v1/departments/{id}/sla-policy",
        ] {
            assert!(openapi.body["paths"][path].is_object(), "{path} documented");
        }
        assert!(openapi.body["components"]["schemas"]["SlaTarget"].is_object());
    }
}

store_test! {
    #[tokio::test]
    async fn the_ticket_json_and_page_show_each_target(app: WebApp) {
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let number = app.ticket("sla-json@x", "Printer", "It jams").await;
        let ticket_id = app.detail(number).await.summary.id;
        let targets = app.state.config.sla;
        let created = app.detail(number).await.summary.created_at;
        let check = SlaCheck { ticket_id, target: Target::FirstResponse };
        sla::check(&app.db.store, &targets, check, created + Duration::minutes(400))
            .await
            .expect("check");
        let shown = call(&app, Method::GET, &format!("/api/v1/tickets/{number}"), Some(&admin), None, &[]).await;
        assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
        let sla = shown.body["sla"].as_array().expect("sla targets");
        let first = sla.iter().find(|t| t["target"] == "first_response").expect("first response");
        assert_eq!(first["state"], "warned", "{first}");
        assert!(first["due_at"].is_string() && first["met_at"].is_null());
        let resolution = sla.iter().find(|t| t["target"] == "resolution").expect("resolution");
        assert_eq!(resolution["state"], "running");
        assert!(shown.body["sla_due_at"].is_string());
        assert!(shown.body["sla_breached_at"].is_null());

        // Breached: the JSON, the page and the list say so.
        sla::check(&app.db.store, &targets, check, created + Duration::minutes(480))
            .await
            .expect("check");
        let shown = call(&app, Method::GET, &format!("/api/v1/tickets/{number}"), Some(&admin), None, &[]).await;
        assert!(shown.body["sla_breached_at"].is_string(), "{}", shown.text);
        assert_eq!(shown.body["sla"][0]["state"], "breached");
        let browser = app.admin().await;
        let page = app.get(&format!("/tickets/{number}"), Some(&browser)).await;
        assert!(page.body.contains("id=\"sla\""), "the ticket page has its SLA section");
        assert!(page.body.contains("first response: <span class=\"badge sla-state\">breached</span>"));
        let list = app.get("/tickets", Some(&browser)).await;
        assert!(list.body.contains("SLA breached"));
    }
}

store_test! {
    #[tokio::test]
    async fn admins_set_hours_holidays_and_targets_on_the_department_page(app: WebApp) {
        let browser = app.admin().await;
        let path = format!("/admin/departments/{}/sla", app.technical);
        let page = app.get(&path, Some(&browser)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("targets count around the clock"));
        let agent = app.agent().await;
        assert_eq!(app.get(&path, Some(&agent)).await.status, StatusCode::FORBIDDEN);
        let departments = app.get("/admin/departments", Some(&browser)).await;
        assert!(departments.body.contains(&path));

        let base = format!("/admin/departments/{}", app.technical);
        let saved = app
            .post(
                &format!("{base}/calendar"),
                &browser,
                &[("time_zone", "Europe/Berlin"), ("hours", "mon 08:00-16:00\nwed 08:00-12:00")],
            )
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER);
        let refused = app
            .post(&format!("{base}/calendar"), &browser, &[("time_zone", "Europe/Berlin"), ("hours", "mon 16:00-08:00")])
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        let added = app
            .post(&format!("{base}/holidays"), &browser, &[("date", "2027-01-06"), ("name", "Epiphany")])
            .await;
        assert_eq!(added.status, StatusCode::SEE_OTHER);

        // The iCalendar file as the form uploads it.
        let answer = post_body(
            &app,
            &format!("{base}/holidays/import"),
            &[("cookie", browser.cookie.as_str())],
            multipart(
                &[("csrf", browser.csrf.as_str())],
                &[("feiertage.ics", "text/calendar", ICS.as_bytes())],
            ),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert!(answer.body.contains("of them new"), "{}", answer.body);

        let policy = app
            .post(&format!("{base}/sla-policy"), &browser, &[("first_response_urgent", "15"), ("resolution_low", "")])
            .await;
        assert_eq!(policy.status, StatusCode::SEE_OTHER);
        let page = app.get(&path, Some(&browser)).await;
        assert!(page.body.contains("mon 08:00-16:00\nwed 08:00-12:00"));
        assert!(page.body.contains("Epiphany") && page.body.contains("1. Weihnachtstag"));
        assert!(page.body.contains("name=\"first_response_urgent\" value=\"15\""));
        let stored = helpdesk::store::calendars::policy(&app.db.store, app.technical)
            .await
            .expect("policy");
        assert_eq!(stored.len(), 1);
    }
}
