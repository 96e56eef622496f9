//! Reports: the summary endpoint's figures for a seeded history match the figures computed in
//! the test from the raw rows, for every grouping; agents get their own figures only; the CSV
//! has a header row and a row per group; the page draws its charts as SVG without script.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode, header};
use chrono::Utc;
use helpdesk::domain::Role;
use helpdesk::store::api_tokens;
use serde_json::Value;

use crate::support::web::{WebApp, call};

mod seed;

use seed::{Expected, OfficeHours, Seed, at, nearest_rank};

const PERIOD: &str = "from=2025-03-01&to=2025-03-31";

async fn token(app: &WebApp, agent_id: i64, role: Role) -> String {
    api_tokens::create(&app.db.store, agent_id, "reports", role, Utc::now())
        .await
        .expect("token")
        .token
}

async fn seeded(app: &WebApp) -> Seed {
    let seed = seed::generate(app.billing, app.technical, app.admin_id, app.agent_id);
    seed::write(&app.db.store, &seed).await;
    seed
}

fn share(part: i64, whole: i64) -> Value {
    if whole == 0 {
        Value::Null
    } else {
        serde_json::json!(part as f64 / whole as f64)
    }
}

fn opt(value: Option<i64>) -> Value {
    value.map_or(Value::Null, |v| serde_json::json!(v))
}

/// The figures the API should give for `e`, as JSON values by field.
fn as_json(e: &Expected) -> BTreeMap<&'static str, Value> {
    use serde_json::json;
    BTreeMap::from([
        ("new", json!(e.new)),
        ("reopened", json!(e.reopened)),
        ("resolved", json!(e.resolved)),
        ("backlog", json!(e.backlog)),
        ("first_responses", json!(e.first_response.len())),
        (
            "first_response_median_seconds",
            opt(nearest_rank(&e.first_response, 0.5)),
        ),
        (
            "first_response_p90_seconds",
            opt(nearest_rank(&e.first_response, 0.9)),
        ),
        (
            "resolution_median_seconds",
            opt(nearest_rank(&e.resolution, 0.5)),
        ),
        ("sla_ended", json!(e.sla_ended)),
        ("sla_met", json!(e.sla_met)),
        ("sla_met_share", share(e.sla_met, e.sla_ended)),
        ("ratings", json!(e.ratings)),
        ("ratings_positive", json!(e.positive)),
        ("satisfaction_score", share(e.positive, e.ratings)),
        ("rating_average", share(e.rating_sum, e.ratings)),
        ("surveys_sent", json!(e.sent)),
        ("surveys_answered", json!(e.answered)),
        ("response_rate", share(e.answered, e.sent)),
        (
            "time_basis",
            e.time_basis().map_or(Value::Null, |b| json!(b)),
        ),
    ])
}

/// Asserts that the API's groups carry exactly the expected figures (a group the API leaves
/// out must have none).
fn assert_matches(body: &Value, expected: &BTreeMap<String, Expected>, what: &str) {
    let groups = body["groups"].as_array().expect("groups");
    let by_key: BTreeMap<String, &Value> = groups
        .iter()
        .map(|g| (g["key"].as_str().expect("key").to_owned(), g))
        .collect();
    assert_eq!(by_key.len(), groups.len(), "{what}: keys repeat: {body}");
    let empty = Expected::default();
    let mut keys: Vec<&String> = expected.keys().chain(by_key.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let want = as_json(expected.get(key).unwrap_or(&empty));
        match by_key.get(key) {
            Some(group) => {
                for (field, value) in &want {
                    // Shares are compared to the last bits JSON keeps of a float.
                    let same = match (group[*field].as_f64(), value.as_f64()) {
                        (Some(got), Some(want)) if !value.is_i64() => (got - want).abs() < 1e-9,
                        _ => &group[*field] == value,
                    };
                    assert!(
                        same,
                        "{what}: group {key:?}, {field}: want {value}, got {group}"
                    );
                }
            }
            None => assert_eq!(
                want,
                as_json(&empty),
                "{what}: group {key:?} missing from {body}"
            ),
        }
    }
}

store_test! {
    #[tokio::test]
    async fn the_summary_matches_figures_computed_from_the_raw_history(app: WebApp) {
        let seed = seeded(&app).await;
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let (from, to) = (at("2025-03-01T00:00:00Z"), at("2025-04-01T00:00:00Z"));
        let mut checked_figures = 0;
        for group_by in ["day", "week", "month", "department", "agent", "channel"] {
            let reply = call(
                &app,
                Method::GET,
                &format!("/api/v1/reports/summary?{PERIOD}&group_by={group_by}"),
                Some(&admin),
                None,
                &[],
            )
            .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            let body = &reply.body;
            assert_eq!(body["time_basis"], "wall_clock");
            assert_eq!(body["group_by"], group_by);
            assert_eq!(body["scope"], "team");
            let expected = seed::expected(&seed, from, to, group_by, None, None);
            assert_matches(body, &expected, group_by);
            checked_figures += expected.values().map(|e| e.new + e.resolved).sum::<i64>();

            // The whole period: the groups' counts add up; the backlog is the one at the end.
            let total = &body["total"];
            for field in ["new", "reopened", "resolved", "sla_ended", "ratings", "surveys_sent"] {
                let sum: i64 = body["groups"]
                    .as_array()
                    .expect("groups")
                    .iter()
                    .map(|g| g[field].as_i64().expect("count"))
                    .sum();
                assert_eq!(total[field].as_i64(), Some(sum), "{group_by}: total {field}");
            }
            let at_end = seed
                .tickets
                .iter()
                .filter(|t| t.created < to && seed::ACTIVE.contains(&t.status_at(to)))
                .count() as i64;
            assert_eq!(total["backlog"].as_i64(), Some(at_end), "{group_by}: backlog");
        }
        // The seed gives the report something to count.
        assert!(checked_figures > 20, "only {checked_figures} tickets counted");

        // Days: one row per day of March, in order.
        let days = call(
            &app,
            Method::GET,
            &format!("/api/v1/reports/summary?{PERIOD}&group_by=day"),
            Some(&admin),
            None,
            &[],
        )
        .await;
        let keys: Vec<&str> = days.body["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|g| g["key"].as_str().expect("key"))
            .collect();
        assert_eq!(keys.len(), 31);
        assert_eq!(keys.first(), Some(&"2025-03-01"));
        assert_eq!(keys.last(), Some(&"2025-03-31"));

        // Departments are named; tickets without one come last.
        let departments = call(
            &app,
            Method::GET,
            &format!("/api/v1/reports/summary?{PERIOD}&group_by=department"),
            Some(&admin),
            None,
            &[],
        )
        .await;
        let labels: Vec<&str> = departments.body["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|g| g["label"].as_str().expect("label"))
            .collect();
        assert_eq!(labels, ["Billing", "Technical", "(no department)"], "{}", departments.text);
    }
}

store_test! {
    #[tokio::test]
    async fn agents_get_their_own_figures_only(app: WebApp) {
        let seed = seeded(&app).await;
        let agent = token(&app, app.agent_id, Role::Agent).await;
        let (from, to) = (at("2025-03-01T00:00:00Z"), at("2025-04-01T00:00:00Z"));
        for group_by in ["agent", "department", "week"] {
            let reply = call(
                &app,
                Method::GET,
                &format!("/api/v1/reports/summary?{PERIOD}&group_by={group_by}"),
                Some(&agent),
                None,
                &[],
            )
            .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            assert_eq!(reply.body["scope"], "agent");
            let expected = seed::expected(&seed, from, to, group_by, Some(app.agent_id), None);
            assert_matches(&reply.body, &expected, group_by);
            if group_by == "agent" {
                for group in reply.body["groups"].as_array().expect("groups") {
                    assert_eq!(group["key"], app.agent_id.to_string(), "{}", reply.text);
                }
            }
        }
        // What the whole team did is more than what the agent did.
        let team = seed::expected(&seed, from, to, "agent", None, None);
        let own = seed::expected(&seed, from, to, "agent", Some(app.agent_id), None);
        let count = |groups: &BTreeMap<String, Expected>| groups.values().map(|e| e.new).sum::<i64>();
        assert!(count(&team) > count(&own) && count(&own) > 0);

        // The page says whose figures they are.
        let browser = app.agent().await;
        let page = app
            .get(&format!("/reports?{PERIOD}&group_by=agent"), Some(&browser))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("Your own figures"), "{}", page.body);
        assert!(!page.body.contains("Ada Admin</th>"), "{}", page.body);
    }
}

store_test! {
    #[tokio::test]
    async fn csv_downloads_have_a_header_and_a_row_per_group(app: WebApp) {
        seeded(&app).await;
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let browser = app.admin().await;
        for group_by in ["day", "week", "department", "agent", "channel"] {
            let api = call(
                &app,
                Method::GET,
                &format!("/api/v1/reports/summary?{PERIOD}&group_by={group_by}"),
                Some(&admin),
                None,
                &[],
            )
            .await;
            let groups = api.body["groups"].as_array().expect("groups");
            let answer = app
                .get(&format!("/reports.csv?{PERIOD}&group_by={group_by}"), Some(&browser))
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            let content_type = answer
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            assert!(content_type.starts_with("text/csv"), "{content_type}");
            let disposition = answer
                .headers
                .get(header::CONTENT_DISPOSITION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            assert!(disposition.starts_with("attachment"), "{disposition}");
            let mut reader = csv::Reader::from_reader(answer.body.as_bytes());
            let header: Vec<String> = reader
                .headers()
                .expect("header")
                .iter()
                .map(str::to_owned)
                .collect();
            assert_eq!(header[0], "group");
            assert!(header.contains(&"first_response_p90_seconds".to_owned()));
            assert!(header.contains(&"time_basis".to_owned()));
            let rows: Vec<csv::StringRecord> =
                reader.records().collect::<Result<_, _>>().expect("rows");
            assert_eq!(rows.len(), groups.len(), "{group_by}: {}", answer.body);
            for (row, group) in rows.iter().zip(groups) {
                assert_eq!(row.len(), header.len());
                assert_eq!(&row[0], group["label"].as_str().expect("label"));
                assert_eq!(row[2].parse::<i64>().ok(), group["new"].as_i64());
                assert_eq!(row[5].parse::<i64>().ok(), group["backlog"].as_i64());
            }
        }
        // A name with a comma and quotes stays one field.
        let sql = "UPDATE departments SET name = 'Billing, \"EU\"' WHERE name = 'Billing'";
        match &app.db.store {
            helpdesk::store::Store::Sqlite { writer, .. } => {
                sqlx::query(sql).execute(writer).await.expect("rename");
            }
            helpdesk::store::Store::Postgres { pool } => {
                sqlx::query(sql).execute(pool).await.expect("rename");
            }
        }
        let answer = app
            .get(&format!("/reports.csv?{PERIOD}&group_by=department"), Some(&browser))
            .await;
        assert!(answer.body.contains("\"Billing, \"\"EU\"\"\","), "{}", answer.body);
        let mut reader = csv::Reader::from_reader(answer.body.as_bytes());
        let first = reader.records().next().expect("a row").expect("row");
        assert_eq!(&first[0], "Billing, \"EU\"");
    }
}

store_test! {
    #[tokio::test]
    async fn the_page_draws_svg_charts_with_the_table_and_no_script(app: WebApp) {
        seeded(&app).await;
        let browser = app.admin().await;
        let home = app.get("/", Some(&browser)).await;
        assert!(home.body.contains(r#"href="/reports""#), "no navigation link");
        let page = app
            .get(&format!("/reports?{PERIOD}&group_by=week"), Some(&browser))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let body = &page.body;
        assert_eq!(body.matches("<svg").count(), 3, "{body}");
        assert!(body.contains(r#"role="img""#));
        assert!(body.contains(r#"aria-labelledby="chart-flow-title chart-flow-desc""#));
        assert!(body.contains("<title id=\"chart-flow-title\">New, resolved and reopened tickets per week</title>"));
        assert!(body.contains("<desc id=\"chart-backlog-desc\">"));
        // Bars carry their figures as text too, and the table has the weeks.
        assert!(body.contains("Week of 2025-03-03: New "), "{body}");
        assert!(body.contains(r#"<table class="report""#));
        assert!(body.contains("<th scope=\"row\">Week of 2025-03-24</th>"));
        assert!(body.contains("/reports.csv?group_by=week&#38;from=2025-03-01"), "{body}");
        assert!(body.contains("wall-clock time"));
        assert!(body.contains("/static/reports.css?v="));
        // Nothing on the page needs a script: only the site's one script tag from the layout.
        assert_eq!(body.matches("<script").count(), 1, "{body}");
        let css = app.get("/static/reports.css", None).await;
        assert_eq!(css.status, StatusCode::OK);
        assert!(css.body.contains(".chart"));

        // Presets work; a period or grouping that is not one is refused.
        for preset in ["last_7_days", "last_30_days", "this_month", "last_month", "this_quarter", "this_year"] {
            let answer = app.get(&format!("/reports?period={preset}&group_by=day"), Some(&browser)).await;
            assert_eq!(answer.status, StatusCode::OK, "{preset}: {}", answer.body);
        }
        let refused = app.get("/reports?group_by=year", Some(&browser)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        let admin = token(&app, app.admin_id, Role::Admin).await;
        call(&app, Method::GET, "/api/v1/reports/summary?from=2025-03-10&to=2025-03-01", Some(&admin), None, &[])
            .await
            .problem(StatusCode::BAD_REQUEST);
        call(&app, Method::GET, "/api/v1/reports/summary?group_by=quarter", Some(&admin), None, &[])
            .await
            .problem(StatusCode::BAD_REQUEST);
        let anonymous = call(&app, Method::GET, "/api/v1/reports/summary", None, None, &[]).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
        let openapi = call(&app, Method::GET, "/api/openapi.json", None, None, &[]).await;
        assert!(openapi.body["paths"]["/api/v1/reports/summary"]["get"].is_object(), "{}", openapi.text);
    }
}

store_test! {
    #[tokio::test]
    async fn times_count_business_hours_where_the_department_has_a_calendar(app: WebApp) {
        // Billing works Monday to Friday 09:00-17:00 in Berlin and is closed on 10 March.
        let hours = helpdesk::domain::calendar::WeeklyHours::parse_text(
            "mon 09:00-17:00\ntue 09:00-17:00\nwed 09:00-17:00\nthu 09:00-17:00\nfri 09:00-17:00",
        )
        .expect("hours");
        let closed = "2025-03-10".parse().expect("date");
        let holiday = helpdesk::domain::ics::Holiday { date: closed, name: "Closed".into() };
        helpdesk::store::calendars::set_calendar(
            &app.db.store,
            app.billing,
            "Europe/Berlin",
            &hours,
            Some(&[holiday]),
            Utc::now(),
        )
        .await
        .expect("calendar");
        let office = OfficeHours { department: app.billing, holidays: vec![closed] };
        let seed = seeded(&app).await;
        let admin = token(&app, app.admin_id, Role::Admin).await;
        let (from, to) = (at("2025-03-01T00:00:00Z"), at("2025-04-01T00:00:00Z"));
        for group_by in ["day", "week", "department", "agent", "channel"] {
            let reply = call(
                &app,
                Method::GET,
                &format!("/api/v1/reports/summary?{PERIOD}&group_by={group_by}"),
                Some(&admin),
                None,
                &[],
            )
            .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            let expected = seed::expected(&seed, from, to, group_by, None, Some(&office));
            assert_matches(&reply.body, &expected, group_by);
            assert_eq!(reply.body["time_basis"], "mixed", "{group_by}");
            assert_eq!(
                reply.body["business_hours"],
                serde_json::json!([{
                    "department_id": app.billing,
                    "department": "Billing",
                    "time_zone": "Europe/Berlin",
                }])
            );
        }
        // By department: Billing's times are business hours, the others' wall-clock, and the
        // business figures differ from what the wall clock would say.
        let departments = call(
            &app,
            Method::GET,
            &format!("/api/v1/reports/summary?{PERIOD}&group_by=department"),
            Some(&admin),
            None,
            &[],
        )
        .await;
        let billing = app.billing.to_string();
        let technical = app.technical.to_string();
        for group in departments.body["groups"].as_array().expect("groups") {
            let want = if group["key"] == billing.as_str() { "business" } else { "wall_clock" };
            assert_eq!(group["time_basis"], want, "{group}");
        }
        let wall = seed::expected(&seed, from, to, "department", None, None);
        let business = seed::expected(&seed, from, to, "department", None, Some(&office));
        assert!(!business[&billing].resolution.is_empty() && !business[&billing].first_response.is_empty());
        assert_ne!(business[&billing].resolution, wall[&billing].resolution);
        assert_eq!(business[&technical].resolution, wall[&technical].resolution);

        // The CSV and the page say it too.
        let browser = app.admin().await;
        let csv = app
            .get(&format!("/reports.csv?{PERIOD}&group_by=department"), Some(&browser))
            .await;
        let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
        let column = reader
            .headers()
            .expect("header")
            .iter()
            .position(|h| h == "time_basis")
            .expect("time_basis column");
        let bases: Vec<(String, String)> = reader
            .records()
            .map(|row| {
                let row = row.expect("row");
                (row[1].to_owned(), row[column].to_owned())
            })
            .collect();
        assert!(bases.contains(&(billing.clone(), "business".to_owned())), "{}", csv.body);
        assert!(bases.contains(&(technical.clone(), "wall_clock".to_owned())), "{}", csv.body);
        let page = app
            .get(&format!("/reports?{PERIOD}&group_by=department"), Some(&browser))
            .await;
        assert!(
            page.body.contains("business hours for Billing (Europe/Berlin), wall-clock time for other tickets"),
            "{}",
            page.body
        );
        assert!(page.body.contains("<td>business hours</td>"), "{}", page.body);
        // The OpenAPI describes the labels.
        let openapi = call(&app, Method::GET, "/api/openapi.json", None, None, &[]).await;
        let schemas = &openapi.body["components"]["schemas"];
        assert!(schemas["ReportFigures"]["properties"]["time_basis"].is_object(), "{}", openapi.text);
        assert!(schemas["ReportSummary"]["properties"]["business_hours"].is_object(), "{}", openapi.text);
        assert!(schemas["ReportBusinessHours"]["properties"]["time_zone"].is_object(), "{}", openapi.text);
    }
}
