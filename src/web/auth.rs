//! Who is signed in: the session cookie, the role extractors and CSRF checks on every form.

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{COOKIE, HOST, LOCATION, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::WebError;
use crate::domain::Role;
use crate::store::sessions::{self, SessionAgent};
use crate::store::views::Visibility;

pub const SESSION_COOKIE: &str = "helpdesk_session";
/// A session ends after this long without use.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);

/// The signed-in agent or admin.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub agent: SessionAgent,
    pub token: String,
    /// Their active tickets with customer messages they have not seen (the navigation's
    /// figure).
    pub unread: i64,
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        self.agent.role == Role::Admin
    }

    pub fn id(&self) -> i64 {
        self.agent.agent_id
    }

    pub fn csrf(&self) -> &str {
        &self.agent.csrf_token
    }

    pub fn visibility(&self) -> Visibility {
        if self.is_admin() {
            Visibility::All
        } else {
            Visibility::Agent(self.agent.agent_id)
        }
    }

    /// Admin pages answer 403 to agents: the page exists, they may not use it.
    pub fn require_admin(&self) -> Result<(), WebError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(WebError::Forbidden(
                "This page is for admins; ask an admin to change your role if you need it.".into(),
            ))
        }
    }
}

/// The value of one cookie in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The `Set-Cookie` value for a session token (or, with `None`, one that removes it).
pub fn session_cookie(token: Option<&str>, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let value = match token {
        Some(token) => format!(
            "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            SESSION_LIFETIME.num_seconds()
        ),
        None => format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The cookie that holds the sign-in form's token. The form carries the same value in its
/// `csrf` field, and a sign-in is accepted only when the two agree: another site can make a
/// browser post the form, but can neither read the cookie nor make the browser send it along
/// (`SameSite=Strict`), so it cannot sign a person in to an account of its choosing.
pub const SIGN_IN_COOKIE: &str = "helpdesk_signin";
/// How long a sign-in form stays usable; after that the form is shown again with a new token.
pub const SIGN_IN_FORM_LIFETIME: Duration = Duration::hours(1);

/// The `Set-Cookie` value for the sign-in form's token (or, with `None`, one that removes it).
pub fn sign_in_cookie(token: Option<&str>, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let (token, max_age) = match token {
        Some(token) => (token, SIGN_IN_FORM_LIFETIME.num_seconds()),
        None => ("", 0),
    };
    let value = format!(
        "{SIGN_IN_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The sign-in token the browser sent in its cookie, when it looks like one of ours.
pub fn sign_in_token(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SIGN_IN_COOKIE)
        .filter(|token| token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Sends people who are not signed in to the sign-in page, and back afterwards.
pub struct SignInFirst {
    next: String,
}

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        let location = format!("/login?next={}", urlencode(&self.next));
        (StatusCode::SEE_OTHER, [(LOCATION, location.as_str())]).into_response()
    }
}

pub fn urlencode(text: &str) -> String {
    form_urlencoded_component(text)
}

fn form_urlencoded_component(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|encoded| encoded.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let next = if parts.method == Method::GET {
            parts
                .uri
                .path_and_query()
                .map_or("/".to_owned(), |path| path.as_str().to_owned())
        } else {
            "/".to_owned()
        };
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE).map(str::to_owned) else {
            return Err(SignInFirst { next }.into_response());
        };
        let now = Utc::now();
        let agent = sessions::find(&state.store, &token, now)
            .await
            .map_err(|error| WebError::from(error).into_response())?;
        let Some(agent) = agent else {
            return Err(SignInFirst { next }.into_response());
        };
        // Sliding expiry, written at most once per half lifetime.
        if agent.expires_at - now < SESSION_LIFETIME / 2 {
            sessions::extend(&state.store, &token, now + SESSION_LIFETIME)
                .await
                .map_err(|error| WebError::from(error).into_response())?;
        }
        let unread = crate::store::views::unread_count(&state.store, agent.agent_id)
            .await
            .map_err(|error| WebError::from(error).into_response())?;
        Ok(Viewer {
            agent,
            token,
            unread,
        })
    }
}

/// Compares without an early exit, so timing does not tell how much of a token was right.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// A form posted by a signed-in person, with its CSRF token checked: every form of the pages
/// is read through this.
pub struct Posted<T> {
    pub viewer: Viewer,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let token: CsrfField = serde_urlencoded::from_bytes(&bytes).map_err(|error| {
            WebError::BadRequest(format!("unreadable form: {error}")).into_response()
        })?;
        if let Some(refused) = csrf_refusal(&viewer, &token.csrf) {
            return Err(refused);
        }
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|error| {
            WebError::BadRequest(format!("unreadable form: {error}")).into_response()
        })?;
        Ok(Posted { viewer, form })
    }
}

/// The one CSRF check of the pages: the form's `csrf` field must be the session's token;
/// otherwise the refusal to answer with.
fn csrf_refusal(viewer: &Viewer, sent: &str) -> Option<Response> {
    (!same_secret(sent, viewer.csrf())).then(|| {
        WebError::Forbidden(
            "The form's security token is missing or stale (CSRF check). Reload the page and \
             try again."
                .into(),
        )
        .into_response()
    })
}

/// A form that may carry files (`multipart/form-data`), its CSRF token checked as for
/// [`Posted`]; the same form sent urlencoded (no files) is read too. The files are only read
/// into memory here; keeping them is the handler's (`ops::keep_files`).
pub struct PostedFiles<T> {
    pub viewer: Viewer,
    pub form: T,
    pub files: Vec<helpdesk_channel::Attachment>,
    /// Why the files were refused (too large); the form's text fields are still in `form`.
    pub too_large: Option<String>,
}

impl<T: DeserializeOwned> FromRequest<AppState> for PostedFiles<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        if !super::upload::is_multipart(request.headers()) {
            let posted = Posted::<T>::from_request(request, state).await?;
            return Ok(PostedFiles {
                viewer: posted.viewer,
                form: posted.form,
                files: Vec::new(),
                too_large: None,
            });
        }
        let (mut parts, body) = request.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        let multipart =
            axum::extract::Multipart::from_request(Request::from_parts(parts, body), state)
                .await
                .map_err(IntoResponse::into_response)?;
        let upload = super::upload::read(multipart, &state.config.intake_limits)
            .await
            .map_err(|error| WebError::BadRequest(error.to_string()).into_response())?;
        if let Some(refused) = csrf_refusal(&viewer, upload.field("csrf").unwrap_or_default()) {
            return Err(refused);
        }
        let form = serde_urlencoded::from_str(&upload.urlencoded()).map_err(|error| {
            WebError::BadRequest(format!("unreadable form: {error}")).into_response()
        })?;
        Ok(PostedFiles {
            viewer,
            form,
            files: upload.files,
            too_large: upload.too_large,
        })
    }
}

/// Sign-in has no session yet to hold a token: besides the form's own token (see
/// [`SIGN_IN_COOKIE`]) a cross-site form is refused by its Origin header (browsers send it with
/// every POST; a request without one is left to the token).
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|value| value.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(HOST).and_then(|value| value.to_str().ok()) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, origin_host)| origin_host == host)
}

/// Whether `authority` (`host[:port]`) is this machine, where browsers treat plain HTTP as
/// secure and keep `Secure` cookies.
pub fn loopback_authority(authority: &str) -> bool {
    let host = if authority.starts_with('[') {
        authority.split(']').next().map(|host| &host[1..])
    } else {
        authority.split(':').next()
    }
    .unwrap_or_default();
    host.eq_ignore_ascii_case("localhost") || host.starts_with("127.") || host == "::1"
}

/// The page's origin when the browser would drop a `Secure` session cookie: it shows the form
/// over plain HTTP at a host name. Browsers send `Origin` with every form post; without it
/// nothing can be told, and sign-in goes ahead.
pub fn insecure_origin(headers: &HeaderMap, secure_cookies: bool) -> Option<&str> {
    if !secure_cookies {
        return None;
    }
    let origin = headers.get(ORIGIN)?.to_str().ok()?;
    let authority = origin.strip_prefix("http://")?;
    (!loopback_authority(authority)).then_some(origin)
}

pub fn set_cookie(value: HeaderValue) -> [(axum::http::HeaderName, HeaderValue); 1] {
    [(SET_COOKIE, value)]
}

/// The client's IP as the sign-in limit counts it: the connection's address, or with
/// `trust_forwarded_for` the last `X-Forwarded-For` entry (the one the trusted proxy added;
/// earlier entries come from the client and prove nothing). An IPv6 client counts by its /64,
/// the block one subscriber usually holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let forwarded = if state.config.trust_forwarded_for {
            forwarded_client(&parts.headers)
        } else {
            None
        };
        let connection = || {
            parts
                .extensions
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|ConnectInfo(address)| address.ip())
        };
        Ok(ClientIp(match forwarded.or_else(connection) {
            Some(ip) => counted_as(ip),
            // Only in-process callers (tests) have no connection.
            None => "unknown".to_owned(),
        }))
    }
}

fn forwarded_client(headers: &HeaderMap) -> Option<std::net::IpAddr> {
    let last = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .next_back()?;
    last.trim().parse().ok()
}

fn counted_as(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let segments = v6.segments();
                let block = std::net::Ipv6Addr::new(
                    segments[0],
                    segments[1],
                    segments[2],
                    segments[3],
                    0,
                    0,
                    0,
                    0,
                );
                format!("{block}/64")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_count_by_address_and_ipv6_by_block() {
        assert_eq!(
            counted_as("203.0.113.9".parse().expect("ip")),
            "203.0.113.9"
        );
        assert_eq!(
            counted_as("2001:db8:1:2:aaaa::1".parse().expect("ip")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            counted_as("::ffff:198.51.100.4".parse().expect("ip")),
            "198.51.100.4"
        );
        let mut headers = HeaderMap::new();
        headers.append(
            "x-forwarded-for",
            HeaderValue::from_static("1.1.1.1, 10.0.0.7"),
        );
        headers.append("x-forwarded-for", HeaderValue::from_static("192.0.2.5"));
        assert_eq!(
            forwarded_client(&headers),
            Some("192.0.2.5".parse().expect("ip"))
        );
        headers.append("x-forwarded-for", HeaderValue::from_static("not an ip"));
        assert_eq!(forwarded_client(&headers), None);
    }

    #[test]
    fn only_a_plain_http_origin_at_a_host_name_loses_a_secure_cookie() {
        let origin = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(ORIGIN, HeaderValue::from_static(value));
            headers
        };
        for kept in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
            "https://help.example.org",
        ] {
            assert_eq!(insecure_origin(&origin(kept), true), None, "{kept}");
        }
        let lost = origin("http://helpdesk.lan:8080");
        assert_eq!(
            insecure_origin(&lost, true),
            Some("http://helpdesk.lan:8080")
        );
        // Cookies without Secure are kept anywhere; no Origin tells nothing.
        assert_eq!(insecure_origin(&lost, false), None);
        assert_eq!(insecure_origin(&HeaderMap::new(), true), None);
    }
}
