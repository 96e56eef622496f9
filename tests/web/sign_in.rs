//! Signing in and out: the session cookie, rate limits per address and per client, the
//! form's token, and sign-ins racing on two instances.

use super::*;

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
