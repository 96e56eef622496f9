//! People's accounts on every backend: a fresh helpdesk gives mail to agents added without a
//! department (the real binary, `serve` running), passwords set from the command line, by an
//! admin and by the person at /account, and disabling someone, from the pages and the API.


use crate::support;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use chrono::Utc;
use helpdesk::domain::Role;
use helpdesk::jobs;
use helpdesk::store::{self, api_tokens};
use serde_json::{Value, json};
use crate::support::TestStore;
use crate::support::cli::{Serve, envs};
use crate::support::web::{Browser, PASSWORD, WebApp, agent_with_password, apps, call};

// ---- the real binary ----

/// The tickets a token sees, through the API's list (one page of up to 200).
async fn visible_tickets(base: &str, token: &str) -> Vec<Value> {
    let answer = reqwest::Client::new()
        .get(format!("{base}/api/v1/tickets?limit=200"))
        .bearer_auth(token)
        .send()
        .await
        .expect("API answers");
    assert_eq!(answer.status(), 200);
    let page: Value = answer.json().await.expect("json");
    page["items"].as_array().expect("items").clone()
}

store_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_agents_added_without_a_department_get_forty_mails_fairly_at_once(env: Env) {
        for (email, name) in [("ana@team.example", "Ana"), ("ben@team.example", "Ben")] {
            env.ok_with(
                &[
                    "user", "add", "--email", email, "--name", name, "--role", "agent",
                ],
                "a long secret\n",
            );
        }
        let users: Value =
            serde_json::from_str(&env.ok(&["user", "list", "--format", "json"])).expect("json");
        for user in users.as_array().expect("users") {
            assert_eq!(user["departments"], "General", "{user}");
        }
        let tokens: Vec<String> = ["ana@team.example", "ben@team.example"]
            .iter()
            .map(|email| {
                env.ok(&["token", "create", "--agent", email, "--name", "day one"])
                    .trim()
                    .to_owned()
            })
            .collect();

        let serve = Serve::start(&env).await;
        let mail = env.dir.path().join("mail");
        std::fs::create_dir_all(&mail).expect("mail dir");
        for n in 0..40 {
            let raw = support::mail(
                &[
                    &format!("From: Customer {n} <customer{n}@example.org>"),
                    &format!("Subject: Question {n}"),
                    &format!("Message-ID: <day-one-{n}@example.org>"),
                ],
                "Hello, can you help?",
            );
            std::fs::write(mail.join(format!("{n}.eml")), raw).expect("mail written");
        }
        let ingested = env.ok(&["ingest", mail.to_str().expect("path")]);
        assert!(
            ingested.starts_with("40 messages: 40 new tickets"),
            "{ingested}"
        );

        let deadline = Instant::now() + Duration::from_secs(15);
        let seen = loop {
            let seen = [
                visible_tickets(&serve.base, &tokens[0]).await,
                visible_tickets(&serve.base, &tokens[1]).await,
            ];
            let all_assigned = seen.iter().all(|tickets| {
                tickets.len() == 40 && tickets.iter().all(|t| t["assignee"].is_string())
            });
            if all_assigned {
                break seen;
            }
            assert!(
                Instant::now() < deadline,
                "not every ticket assigned and seen within 15 s: {:?}",
                seen.iter().map(Vec::len).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let count = |name: &str| seen[0].iter().filter(|t| t["assignee"] == name).count();
        assert_eq!(count("Ana") + count("Ben"), 40);
        assert!(
            count("Ana").abs_diff(count("Ben")) <= 2,
            "least open tickets shares them fairly: Ana {}, Ben {}",
            count("Ana"),
            count("Ben")
        );
        assert!(seen[0].iter().all(|t| t["department"] == "General"));
    }
}

store_test! {
    #[tokio::test]
    async fn user_password_disable_and_enable_from_the_command_line(env: Env) {
        env.ok_with(
            &[
                "user",
                "add",
                "--email",
                "cy@team.example",
                "--name",
                "Cy",
                "--role",
                "agent",
            ],
            "first secret\n",
        );
        let set = env.ok_with(&["user", "password", "cy@team.example"], "second secret\n");
        assert!(set.contains("new password set for Cy"), "{set}");
        let file = env.dir.path().join("password");
        std::fs::write(&file, "short\n").expect("write");
        let refused = env.run(&[
            "user",
            "password",
            "cy@team.example",
            "--password-file",
            file.to_str().expect("path"),
        ]);
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("at least 8 characters"));
        let unknown = env.run_with(
            &["user", "password", "nobody@team.example"],
            "a long secret\n",
        );
        assert!(String::from_utf8_lossy(&unknown.stderr).contains("no agent with email"));

        // Signing in over the real server: the new password works, the old one does not.
        let serve = Serve::start(&env).await;
        assert_eq!(serve.sign_in("cy@team.example", "first secret").await, 401);
        assert_eq!(serve.sign_in("cy@team.example", "second secret").await, 303);

        let token = env
            .ok(&[
                "token",
                "create",
                "--agent",
                "cy@team.example",
                "--name",
                "cli",
            ])
            .trim()
            .to_owned();
        let disabled = env.ok(&["user", "disable", "cy@team.example"]);
        assert!(disabled.contains("disabled cy@team.example"), "{disabled}");
        assert_eq!(serve.sign_in("cy@team.example", "second secret").await, 401);
        let refused = reqwest::Client::new()
            .get(format!("{}/api/v1/tickets", serve.base))
            .bearer_auth(&token)
            .send()
            .await
            .expect("answer");
        assert_eq!(refused.status(), 401);
        let list = env.ok(&["user", "list"]);
        assert!(list.contains("ACTIVE"), "{list}");

        env.ok(&["user", "enable", "cy@team.example"]);
        assert_eq!(serve.sign_in("cy@team.example", "second secret").await, 303);
    }
}

store_test! {
    #[tokio::test]
    async fn seed_routes_assigns_and_prints_how_to_sign_in(env: Env) {
        let out = env.ok(&["seed", "--tickets", "30"]);
        assert!(out.contains("/login"), "{out}");
        let demo_line = out
            .lines()
            .find(|line| line.contains("demo.agent1@helpdesk.example"))
            .unwrap_or_else(|| panic!("a sign-in line for the first demo agent: {out}"));
        let password = demo_line
            .split_whitespace()
            .nth(1)
            .expect("the password follows the address");
        let tickets: Value = serde_json::from_str(
            &env.ok(&["ticket", "list", "--limit", "100", "--format", "json"]),
        )
        .expect("json");
        let tickets = tickets.as_array().expect("tickets");
        assert!(!tickets.is_empty());
        // Every demo ticket went to a department and to someone who can sign in.
        let users: Value =
            serde_json::from_str(&env.ok(&["user", "list", "--format", "json"])).expect("json");
        let users = users.as_array().expect("users");
        assert!(users.iter().all(|u| u["has_password"] == true), "{users:?}");
        for ticket in tickets {
            assert!(ticket["department"].is_string(), "{ticket}");
            assert!(ticket["assignee"].is_string(), "{ticket}");
        }
        let priorities: std::collections::BTreeSet<&str> = tickets
            .iter()
            .filter_map(|t| t["priority"].as_str())
            .collect();
        assert!(priorities.len() >= 2, "{priorities:?}");

        let serve = Serve::start(&env).await;
        assert_eq!(
            serve
                .sign_in("demo.agent1@helpdesk.example", password)
                .await,
            303
        );
        // A second seed gives nobody a new password: none is printed.
        drop(serve);
        let again = env.ok(&["seed", "--tickets", "5"]);
        assert!(!again.contains("demo.agent1@helpdesk.example"), "{again}");
    }
}

// ---- the pages and the API, in process ----

async fn signed_in(app: &WebApp, browser: &Browser) -> bool {
    app.get("/account", Some(browser)).await.status == StatusCode::OK
}

store_test! {
    #[tokio::test]
    async fn people_change_their_own_password_at_account_and_other_sessions_end(app: WebApp) {
        let here = app.agent().await;
        let elsewhere = app.agent().await;
        let page = app.get("/account", Some(&here)).await;
        assert!(
            page.body.contains("agent@helpdesk.example"),
            "{}",
            page.body
        );
        assert!(page.body.contains("Billing"), "{}", page.body);
        assert!(
            page.body.contains("href=\"/account\""),
            "the nav links to the account page"
        );

        let wrong = app
            .post(
                "/account",
                &here,
                &[
                    ("current", "not my password"),
                    ("password", "brand new secret"),
                    ("again", "brand new secret"),
                ],
            )
            .await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            wrong.body.contains("current password is not right"),
            "{}",
            wrong.body
        );
        let differ = app
            .post(
                "/account",
                &here,
                &[
                    ("current", PASSWORD),
                    ("password", "brand new secret"),
                    ("again", "brand new secreT"),
                ],
            )
            .await;
        assert_eq!(differ.status, StatusCode::UNPROCESSABLE_ENTITY);
        let short = app
            .post(
                "/account",
                &here,
                &[
                    ("current", PASSWORD),
                    ("password", "short"),
                    ("again", "short"),
                ],
            )
            .await;
        assert!(
            short.body.contains("at least 8 characters"),
            "{}",
            short.body
        );
        assert!(
            signed_in(&app, &elsewhere).await,
            "refused changes end nothing"
        );

        let changed = app
            .post(
                "/account",
                &here,
                &[
                    ("current", PASSWORD),
                    ("password", "brand new secret"),
                    ("again", "brand new secret"),
                ],
            )
            .await;
        assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
        assert!(
            signed_in(&app, &here).await,
            "the session that changed it stays"
        );
        assert!(!signed_in(&app, &elsewhere).await, "other sessions end");
        let page = app.get(changed.location(), Some(&here)).await;
        assert!(
            page.body.contains("Your password is changed"),
            "{}",
            page.body
        );
        assert!(
            app.sign_in_with("agent@helpdesk.example", PASSWORD)
                .await
                .is_err()
        );
        assert!(
            app.sign_in_with("agent@helpdesk.example", "brand new secret")
                .await
                .is_ok()
        );
    }
}

store_test! {
    #[tokio::test]
    async fn wrong_current_passwords_count_like_failed_sign_ins(app: WebApp) {
        let agent = app.agent().await;
        for _ in 0..helpdesk::sign_in::MAX_FAILURES {
            let wrong = app
                .post(
                    "/account",
                    &agent,
                    &[
                        ("current", "guess"),
                        ("password", "whatever123"),
                        ("again", "whatever123"),
                    ],
                )
                .await;
            assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        }
        let limited = app
            .post(
                "/account",
                &agent,
                &[
                    ("current", PASSWORD),
                    ("password", "whatever123"),
                    ("again", "whatever123"),
                ],
            )
            .await;
        assert_eq!(
            limited.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            limited.body
        );
    }
}

store_test! {
    #[tokio::test]
    async fn admins_reset_passwords_and_disable_people_on_the_agents_page(app: WebApp) {
        let s = &app.db.store;
        let admin = app.admin().await;
        let agent = app.agent().await;
        // Only admins.
        let path = format!("/admin/agents/{}/password", app.agent_id);
        let form = [("password", "reset by admin"), ("again", "reset by admin")];
        assert_eq!(
            app.post(&path, &agent, &form).await.status,
            StatusCode::FORBIDDEN
        );
        let differ = app
            .post(
                &path,
                &admin,
                &[("password", "reset by admin"), ("again", "other")],
            )
            .await;
        assert_eq!(differ.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(signed_in(&app, &agent).await);

        let reset = app.post(&path, &admin, &form).await;
        assert_eq!(reset.status, StatusCode::SEE_OTHER, "{}", reset.body);
        assert!(!signed_in(&app, &agent).await, "a reset ends every session");
        assert!(signed_in(&app, &admin).await);
        let page = app.get(reset.location(), Some(&admin)).await;
        assert!(
            page.body.contains("Abe Agent has a new password"),
            "{}",
            page.body
        );
        assert!(
            app.sign_in_with("agent@helpdesk.example", PASSWORD)
                .await
                .is_err()
        );
        let agent = app
            .sign_in_with("agent@helpdesk.example", "reset by admin")
            .await
            .unwrap_or_else(|refused| panic!("the new password works: {refused:?}"));

        // A colleague in Billing, and two open tickets of Abe's there.
        agent_with_password(
            s,
            "cleo@helpdesk.example",
            "Cleo",
            Role::Agent,
            &[app.billing],
        )
        .await;
        let mut numbers = Vec::new();
        for n in 0..2 {
            let number = app
                .ticket(&format!("dis{n}@x"), &format!("Case {n}"), "x")
                .await;
            app.route(number, Some(app.billing)).await;
            store::manage::set_assignee(
                s,
                number,
                Some(app.agent_id),
                &store::manage::Change {
                    agent_id: app.admin_id,
                    reason: None,
                    now: Utc::now(),
                },
            )
            .await
            .expect("assigned");
            numbers.push(number);
        }
        let token = api_tokens::create(s, app.agent_id, "abe's script", Role::Agent, Utc::now())
            .await
            .expect("token")
            .token;

        let active = format!("/admin/agents/{}/active", app.agent_id);
        assert_eq!(
            app.post(&active, &agent, &[("active", "off")]).await.status,
            StatusCode::FORBIDDEN
        );
        let myself = format!("/admin/agents/{}/active", app.admin_id);
        assert_eq!(
            app.post(&myself, &admin, &[("active", "off")]).await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let off = app.post(&active, &admin, &[("active", "off")]).await;
        assert_eq!(off.status, StatusCode::SEE_OTHER, "{}", off.body);
        let page = app.get(off.location(), Some(&admin)).await;
        assert!(page.body.contains("Abe Agent is disabled"), "{}", page.body);
        assert!(page.body.contains("2 open"), "{}", page.body);
        assert!(page.body.contains(">Enable<"), "{}", page.body);

        assert!(!signed_in(&app, &agent).await, "signed out at once");
        assert!(
            app.sign_in_with("agent@helpdesk.example", "reset by admin")
                .await
                .is_err()
        );
        let refused = api(&app, Method::GET, "/api/v1/tickets", &token, None).await;
        assert_eq!(refused.0, StatusCode::UNAUTHORIZED);
        // Assignment by hand to a disabled person is refused too.
        let given = store::manage::set_assignee(
            s,
            numbers[0],
            Some(app.agent_id),
            &store::manage::Change {
                agent_id: app.admin_id,
                reason: None,
                now: Utc::now(),
            },
        )
        .await;
        assert!(given.is_err(), "{given:?}");

        run_jobs_until(&app.db, || async {
            let mut all = true;
            for number in &numbers {
                all &= app.detail(*number).await.summary.assignee.as_deref() == Some("Cleo");
            }
            all
        })
        .await;
        let history = app.detail(numbers[0]).await.history;
        assert!(
            history.iter().any(|e| e.kind == "assignee"
                && e.old_value.as_deref() == Some("Abe Agent")
                && e.reason
                    .as_deref()
                    .is_some_and(|r| r.contains("was disabled"))),
            "{history:?}"
        );

        let on = app.post(&active, &admin, &[("active", "on")]).await;
        assert_eq!(on.status, StatusCode::SEE_OTHER);
        assert!(
            app.sign_in_with("agent@helpdesk.example", "reset by admin")
                .await
                .is_ok()
        );
        assert_eq!(
            app.detail(numbers[0]).await.summary.assignee.as_deref(),
            Some("Cleo"),
            "enabling does not take tickets back"
        );
    }
}

/// Runs the job workers until `done` holds (at most 20 s).
async fn run_jobs_until<F: Future<Output = bool>>(db: &TestStore, done: impl Fn() -> F) {
    let settings = jobs::JobSettings::from_settings(
        &helpdesk::config::Settings::load_from(None, Vec::new()).expect("defaults"),
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn(jobs::run(
        db.store.clone(),
        settings,
        jobs::deliver::Deliverers::default(),
        db.intake.committed(),
        stopped,
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(
            Instant::now() < deadline,
            "the job queue did not get there in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).expect("stop");
    workers.await.expect("task").expect("workers stop cleanly");
}

async fn api(
    app: &WebApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let reply = call(app, method, path, Some(token), body, &[]).await;
    (reply.status, reply.body)
}

store_test! {
    #[tokio::test]
    async fn the_api_adds_people_sets_passwords_and_disables_them(app: WebApp) {
        let s = &app.db.store;
        let admin = api_tokens::create(s, app.admin_id, "admin", Role::Admin, Utc::now())
            .await
            .expect("token")
            .token;
        let agent = api_tokens::create(s, app.agent_id, "agent", Role::Agent, Utc::now())
            .await
            .expect("token")
            .token;

        // New people without departments go to the default department.
        let (status, dee) = api(
            &app,
            Method::POST,
            "/api/v1/agents",
            &admin,
            Some(json!({"email": "dee@helpdesk.example", "name": "Dee", "role": "agent", "password": "dee's secret"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{dee}");
        assert_eq!(dee["departments"], "General");
        let dee_id = dee["id"].as_i64().expect("id");
        let (status, _) = api(
            &app,
            Method::POST,
            "/api/v1/agents",
            &agent,
            Some(json!({"email": "x@helpdesk.example", "name": "X", "role": "agent"})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, short) = api(
            &app,
            Method::POST,
            "/api/v1/agents",
            &admin,
            Some(json!({"email": "y@helpdesk.example", "name": "Y", "role": "agent", "password": "short"})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{short}");

        // An admin sets a password; the person changes it again with the current one.
        let path = format!("/api/v1/agents/{dee_id}/password");
        let (status, _) = api(
            &app,
            Method::PUT,
            &path,
            &agent,
            Some(json!({"password": "by the admin"})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = api(
            &app,
            Method::PUT,
            &path,
            &admin,
            Some(json!({"password": "by the admin"})),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(
            app.sign_in_with("dee@helpdesk.example", "dee's secret")
                .await
                .is_err()
        );
        let browser = app
            .sign_in_with("dee@helpdesk.example", "by the admin")
            .await
            .unwrap_or_else(|refused| panic!("signed in: {refused:?}"));
        let dee_token = api_tokens::create(s, dee_id, "dee", Role::Agent, Utc::now())
            .await
            .expect("token")
            .token;
        let own = "/api/v1/account/password";
        let (status, wrong) = api(
            &app,
            Method::PUT,
            own,
            &dee_token,
            Some(json!({"current_password": "nope", "password": "dee's own again"})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{wrong}");
        assert!(signed_in(&app, &browser).await);
        let (status, _) = api(
            &app,
            Method::PUT,
            own,
            &dee_token,
            Some(json!({"current_password": "by the admin", "password": "dee's own again"})),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(!signed_in(&app, &browser).await, "web sessions end");
        assert!(
            app.sign_in_with("dee@helpdesk.example", "dee's own again")
                .await
                .is_ok()
        );

        // Disabling: the token stops working; tickets go to the department's other agent.
        let general = store::agents::department_by_name(s, "General")
            .await
            .expect("read")
            .expect("exists")
            .id;
        agent_with_password(s, "eli@helpdesk.example", "Eli", Role::Agent, &[general]).await;
        let number = app.ticket("api-dis@x", "Help", "x").await;
        store::manage::set_assignee(
            s,
            number,
            Some(dee_id),
            &store::manage::Change {
                agent_id: app.admin_id,
                reason: None,
                now: Utc::now(),
            },
        )
        .await
        .expect("assigned");
        app.route(number, Some(general)).await;
        let active = format!("/api/v1/agents/{dee_id}/active");
        let (status, _) = api(
            &app,
            Method::PUT,
            &active,
            &agent,
            Some(json!({"active": false})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = api(
            &app,
            Method::PUT,
            &format!("/api/v1/agents/{}/active", app.admin_id),
            &admin,
            Some(json!({"active": false})),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, change) = api(
            &app,
            Method::PUT,
            &active,
            &admin,
            Some(json!({"active": false})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{change}");
        assert_eq!(change["agent"]["active"], false);
        assert_eq!(change["reassigned_tickets"], 1);
        let (status, _) = api(&app, Method::GET, "/api/v1/tickets", &dee_token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        run_jobs_until(&app.db, || async {
            app.detail(number).await.summary.assignee.as_deref() == Some("Eli")
        })
        .await;
        let (status, change) = api(
            &app,
            Method::PUT,
            &active,
            &admin,
            Some(json!({"active": true})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(change["reassigned_tickets"], 0);
        let (status, _) = api(&app, Method::GET, "/api/v1/tickets", &dee_token, None).await;
        assert_eq!(status, StatusCode::OK);

        let (_, openapi) = api(&app, Method::GET, "/api/openapi.json", &admin, None).await;
        for path in [
            "/api/v1/agents/{id}/password",
            "/api/v1/agents/{id}/active",
            "/api/v1/account/password",
        ] {
            assert!(openapi["paths"][path].is_object(), "{path} is described");
        }
        assert!(openapi["paths"]["/api/v1/agents"]["post"].is_object());
    }
}

store_test! {
    #[tokio::test]
    async fn people_added_on_the_agents_page_without_a_department_join_the_default_one(app: WebApp) {
        let admin = app.admin().await;
        let page = app.get("/admin/agents", Some(&admin)).await;
        assert!(page.body.contains("None ticked: General"), "{}", page.body);
        let created = app
            .post(
                "/admin/agents",
                &admin,
                &[
                    ("email", "fay@helpdesk.example"),
                    ("name", "Fay"),
                    ("role", "agent"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        let fay = store::agents::list_agents(&app.db.store)
            .await
            .expect("read")
            .into_iter()
            .find(|a| a.email == "fay@helpdesk.example")
            .expect("added");
        assert_eq!(fay.departments, "General");
    }
}
