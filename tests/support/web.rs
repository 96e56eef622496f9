//! Drives the web pages over HTTP in process: the router answers requests through
//! `tower::ServiceExt::oneshot`, with cookies and CSRF tokens handled like a browser would.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use chrono::Utc;
use helpdesk::domain::{AssignmentStrategy, Role};
use helpdesk::intake::Outcome;
use helpdesk::store::agents::NewAgent;
use helpdesk::store::{self, Store};
use helpdesk::web::{self, AppState, WebConfig};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::TestStore;

pub const PASSWORD: &str = "correct horse battery";

/// The hash of [`PASSWORD`], made once: hashing is slow on purpose.
pub fn password_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| helpdesk::auth::hash_password(PASSWORD).expect("hash"))
}

pub fn config(db: &TestStore) -> WebConfig {
    let settings = helpdesk::config::Settings::load_from(None, Vec::new()).expect("defaults");
    WebConfig::from_settings(&settings, db.blobs())
}

/// A router over a test store, with an admin, an agent of one department, and tickets.
pub struct WebApp {
    pub db: TestStore,
    pub state: AppState,
    pub router: Router,
    pub admin_id: i64,
    pub agent_id: i64,
    pub billing: i64,
    pub technical: i64,
}

#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    /// The whole `Set-Cookie` value this answer gives for cookie `name`, if any.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with(&format!("{name}=")))
    }
}

/// The sign-in form as a browser holds it: the token's cookie and the same token in the form.
#[derive(Debug, Clone)]
pub struct SignInForm {
    /// `helpdesk_signin=…`, for the `Cookie` header.
    pub cookie: String,
    pub token: String,
}

impl SignInForm {
    /// Opens `/login` as a browser does before signing in.
    pub async fn open(router: &Router) -> SignInForm {
        let request = Request::get("/login")
            .header(header::HOST, "127.0.0.1:8080")
            .body(Body::empty())
            .expect("request");
        let page = answer(router, request).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let cookie = page
            .set_cookie("helpdesk_signin")
            .and_then(|value| value.split(';').next())
            .expect("the sign-in form sets its token's cookie")
            .to_owned();
        SignInForm {
            token: csrf_of(&page.body).expect("the sign-in form carries its token"),
            cookie,
        }
    }

    /// Sends the form with `fields` and its token through `router`: from the connection address
    /// `client` when given (else none, as in process), with `headers` added.
    pub async fn post(
        &self,
        router: &Router,
        fields: &[(&str, &str)],
        client: Option<std::net::SocketAddr>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut form = vec![("csrf", self.token.as_str())];
        form.extend_from_slice(fields);
        let mut request = Request::post("/login")
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::COOKIE, &self.cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(client) = client {
            request = request.extension(axum::extract::ConnectInfo(client));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = Body::from(serde_urlencoded::to_string(&form).expect("form"));
        answer(router, request.body(body).expect("request")).await
    }
}

/// Answers one request in process: status, headers and the body as text.
async fn answer(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.expect("answer");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A signed-in browser: its session cookie and the CSRF token its pages carry.
#[derive(Debug, Clone)]
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

pub async fn agent_with_password(
    store: &Store,
    email: &str,
    name: &str,
    role: Role,
    departments: &[i64],
) -> i64 {
    store::agents::create_agent(
        store,
        &NewAgent {
            email,
            name,
            role,
            password_hash: Some(password_hash()),
            department_ids: departments,
            identities: &[],
            max_open_tickets: None,
        },
        Utc::now(),
    )
    .await
    .expect("agent")
}

impl WebApp {
    /// The app of an instance that runs the mail channel its tickets arrive on (replies to
    /// them can go out).
    pub async fn new(db: TestStore) -> WebApp {
        let mut config = config(&db);
        config.email_enabled = true;
        WebApp::with_config(db, config).await
    }

    pub async fn with_config(db: TestStore, config: WebConfig) -> WebApp {
        let s = &db.store;
        let billing = store::agents::create_department(
            s,
            "Billing",
            AssignmentStrategy::RoundRobin,
            Utc::now(),
        )
        .await
        .expect("department")
        .id;
        let technical = store::agents::create_department(
            s,
            "Technical",
            AssignmentStrategy::LeastOpen,
            Utc::now(),
        )
        .await
        .expect("department")
        .id;
        let admin_id =
            agent_with_password(s, "admin@helpdesk.example", "Ada Admin", Role::Admin, &[]).await;
        let agent_id = agent_with_password(
            s,
            "agent@helpdesk.example",
            "Abe Agent",
            Role::Agent,
            &[billing],
        )
        .await;
        let state = AppState::new(db.store.clone(), config);
        let router = web::router(state.clone());
        WebApp {
            db,
            state,
            router,
            admin_id,
            agent_id,
            billing,
            technical,
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        form: Option<&[(&str, &str)]>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        request = request.header(header::HOST, "127.0.0.1:8080");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let body = match form {
            Some(form) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(serde_urlencoded::to_string(form).expect("form"))
            }
            None => Body::empty(),
        };
        answer(&self.router, request.body(body).expect("request")).await
    }

    pub async fn get(&self, path: &str, browser: Option<&Browser>) -> Answer {
        self.request(Method::GET, path, browser.map(|b| b.cookie.as_str()), None)
            .await
    }

    /// Posts a form with the browser's CSRF token added.
    pub async fn post(&self, path: &str, browser: &Browser, form: &[(&str, &str)]) -> Answer {
        let mut fields = vec![("csrf", browser.csrf.as_str())];
        fields.extend_from_slice(form);
        self.request(Method::POST, path, Some(&browser.cookie), Some(&fields))
            .await
    }

    /// Opens the sign-in form and sends it with `fields` (email, password, next).
    pub async fn post_sign_in(&self, fields: &[(&str, &str)]) -> Answer {
        SignInForm::open(&self.router)
            .await
            .post(&self.router, fields, None, &[])
            .await
    }

    /// Signs in through the form with `password`: the browser, or the answer that refused it.
    pub async fn sign_in_with(&self, email: &str, password: &str) -> Result<Browser, Answer> {
        let answer = self
            .post_sign_in(&[("email", email), ("password", password)])
            .await;
        if answer.status != StatusCode::SEE_OTHER {
            return Err(answer);
        }
        let cookie = answer
            .set_cookie("helpdesk_session")
            .and_then(|value| value.split(';').next())
            .expect("session cookie")
            .to_owned();
        let page = self
            .get(
                "/",
                Some(&Browser {
                    cookie: cookie.clone(),
                    csrf: String::new(),
                }),
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        Ok(Browser {
            csrf: csrf_of(&page.body).expect("the page carries a CSRF token"),
            cookie,
        })
    }

    pub async fn sign_in(&self, email: &str) -> Browser {
        match self.sign_in_with(email, PASSWORD).await {
            Ok(browser) => browser,
            Err(refused) => panic!("{email} not signed in: {refused:?}"),
        }
    }

    pub async fn admin(&self) -> Browser {
        self.sign_in("admin@helpdesk.example").await
    }

    pub async fn agent(&self) -> Browser {
        self.sign_in("agent@helpdesk.example").await
    }

    /// A new ticket from a customer mail; returns its number.
    pub async fn ticket(&self, id: &str, subject: &str, body: &str) -> i64 {
        self.ticket_by("Carla Customer <carla@example.org>", id, subject, body)
            .await
    }

    /// A ticket from a mail by `from` ("Name <address>"); returns its number.
    pub async fn mail_from(&self, from: &str, id: &str, subject: &str) -> i64 {
        self.ticket_by(from, id, subject, "Please have a look.")
            .await
    }

    /// A mail from `from` that opens a ticket (it must not join one); the new ticket's number.
    pub async fn ticket_by(&self, from: &str, id: &str, subject: &str, body: &str) -> i64 {
        let raw = super::mail(
            &[
                &format!("From: {from}"),
                &format!("Subject: {subject}"),
                &format!("Message-ID: <{id}>"),
            ],
            body,
        );
        match self.db.intake.accept_email(raw).await.expect("taken in") {
            Outcome::Created { number, .. } => number.get(),
            other => panic!("{other:?}"),
        }
    }

    pub async fn detail(&self, number: i64) -> helpdesk::store::tickets::TicketDetail {
        store::tickets::detail(&self.db.store, number.into())
            .await
            .expect("read")
            .expect("exists")
    }

    /// Puts a ticket in a department, as an admin would.
    pub async fn route(&self, number: i64, department: Option<i64>) {
        helpdesk::ops::apply(
            &self.db.store,
            number.into(),
            helpdesk::ops::ChangedBy {
                agent_id: self.admin_id,
                now: Utc::now(),
            },
            &helpdesk::ops::TicketChange {
                department: Some(department),
                reason: Some("test setup".to_owned()),
                ..Default::default()
            },
        )
        .await
        .expect("routed");
    }
}

/// The value of the first `name="csrf"` field of a page.
pub fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let rest = &html[at..];
    Some(rest[..rest.find('"')?].to_owned())
}

impl super::Fixture for WebApp {
    async fn sqlite() -> Self {
        WebApp::new(super::sqlite().await).await
    }

    async fn postgres(server: &str, name: &str) -> Self {
        WebApp::new(<TestStore as super::Fixture>::postgres(server, name).await).await
    }
}

/// An API answer: status, headers, the body as JSON (`Null` when it is not) and as text.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    /// Asserts a problem+json answer with this status.
    pub fn problem(&self, status: StatusCode) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "{}",
            self.text
        );
        assert_eq!(self.body["status"], json!(status.as_u16()), "{}", self.text);
        assert!(
            self.body["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("urn:helpdesk:problem:")),
            "{}",
            self.text
        );
        assert!(self.body["title"].is_string() && self.body["detail"].is_string());
    }
}

/// A JSON API request, with a bearer token when given, answered in process.
pub async fn call(
    app: &WebApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    extra: &[(&str, &str)],
) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "127.0.0.1:8080");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let body = match body {
        Some(value) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(value.to_string())
        }
        None => Body::empty(),
    };
    let answer = answer(&app.router, request.body(body).expect("request")).await;
    Reply {
        status: answer.status,
        headers: answer.headers,
        body: serde_json::from_str(&answer.body).unwrap_or(Value::Null),
        text: answer.body,
    }
}

/// A `multipart/form-data` body as a browser sends one: the text `fields` in order, then each
/// file (name, type, content) as a part of field `files`. The Content-Type and the body.
pub fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----helpdesk-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (filename, content_type, content) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; \
                 filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Posts a body of `content_type` to `path` with the `headers` given (a cookie, a bearer
/// token), answered in process.
pub async fn post_body(
    app: &WebApp,
    path: &str,
    headers: &[(&str, &str)],
    (content_type, body): (String, Vec<u8>),
) -> Answer {
    let mut request = Request::post(path)
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::CONTENT_TYPE, content_type);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    answer(
        &app.router,
        request.body(Body::from(body)).expect("request"),
    )
    .await
}
