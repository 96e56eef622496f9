//! The stylesheet, script and icon: linked by versioned URLs that browsers keep for a year,
//! served gzip-compressed to whoever accepts it; the live event stream stays uncompressed.

use std::io::Read;

use super::*;
use axum::body::Body;
use axum::http::Request;

const LONG: &str = "public, max-age=31536000, immutable";
const SHORT: &str = "public, max-age=300";

struct Fetched {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

async fn fetch(app: &WebApp, path: &str, gzip: bool) -> Fetched {
    let mut request = Request::get(path).header(header::HOST, "127.0.0.1:8080");
    if gzip {
        request = request.header(header::ACCEPT_ENCODING, "gzip");
    }
    let response = app
        .router
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("answer");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Fetched {
        status,
        headers,
        body,
    }
}

fn header_of(fetched: &Fetched, name: header::HeaderName) -> &str {
    fetched
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

/// The URL in `attribute="…"` of the page's first tag that has `marker` in it.
fn linked(page: &str, marker: &str, attribute: &str) -> String {
    let tag = page
        .split('<')
        .find(|tag| tag.contains(marker))
        .unwrap_or_else(|| panic!("no tag with {marker} in {page}"));
    let start = tag
        .find(&format!("{attribute}=\""))
        .unwrap_or_else(|| panic!("no {attribute} in {tag}"))
        + attribute.len()
        + 2;
    let end = tag[start..].find('"').expect("closing quote") + start;
    tag[start..end].to_owned()
}

store_test! {
    #[tokio::test]
    async fn static_files_are_versioned_long_lived_and_gzipped(app: WebApp) {
        let admin = app.admin().await;
        let page = app.get("/tickets", Some(&admin)).await;
        assert_eq!(page.status, StatusCode::OK);
        let stylesheet = linked(&page.body, "rel=\"stylesheet\"", "href");
        assert!(stylesheet.starts_with("/static/app.css?v="), "{stylesheet}");
        let script = linked(&page.body, "script src=", "src");
        assert!(script.starts_with("/static/app.js?v="), "{script}");

        // The versioned URL: compressed for a client that takes gzip, kept for a year.
        let plain = fetch(&app, &stylesheet, false).await;
        assert_eq!(plain.status, StatusCode::OK);
        assert_eq!(header_of(&plain, header::CACHE_CONTROL), LONG);
        assert_eq!(header_of(&plain, header::CONTENT_ENCODING), "");
        assert!(String::from_utf8_lossy(&plain.body).contains(":focus-visible"));
        let gzipped = fetch(&app, &stylesheet, true).await;
        assert_eq!(gzipped.status, StatusCode::OK);
        assert_eq!(header_of(&gzipped, header::CONTENT_ENCODING), "gzip");
        assert_eq!(header_of(&gzipped, header::CACHE_CONTROL), LONG);
        assert!(header_of(&gzipped, header::CONTENT_TYPE).starts_with("text/css"));
        assert!(gzipped.body.len() * 2 < plain.body.len(), "{} bytes gzipped", gzipped.body.len());
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(gzipped.body.as_slice())
            .read_to_end(&mut unpacked)
            .expect("gzip");
        assert_eq!(unpacked, plain.body);
        let js = fetch(&app, &script, true).await;
        assert_eq!(header_of(&js, header::CONTENT_ENCODING), "gzip");
        assert_eq!(header_of(&js, header::CACHE_CONTROL), LONG);

        // Without the current version (no version, or an old one) the same file, briefly kept.
        for path in ["/static/app.css", "/static/app.css?v=0123456789abcdef"] {
            let other = fetch(&app, path, false).await;
            assert_eq!(other.status, StatusCode::OK, "{path}");
            assert_eq!(header_of(&other, header::CACHE_CONTROL), SHORT, "{path}");
            assert_eq!(other.body, plain.body, "{path}");
        }
        assert_eq!(fetch(&app, "/static/nothing.css", false).await.status, StatusCode::NOT_FOUND);

        // Pages themselves are compressed too.
        let request = Request::get("/tickets")
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::COOKIE, &admin.cookie)
            .header(header::ACCEPT_ENCODING, "gzip")
            .body(Body::empty())
            .expect("request");
        let compressed_page = app.router.clone().oneshot(request).await.expect("page");
        assert_eq!(compressed_page.headers()[header::CONTENT_ENCODING], "gzip");

        // The live event stream is never compressed: a compressor would hold events back.
        let request = Request::get("/events")
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::COOKIE, &admin.cookie)
            .header(header::ACCEPT_ENCODING, "gzip")
            .body(Body::empty())
            .expect("request");
        let events = app.router.clone().oneshot(request).await.expect("events");
        assert_eq!(events.status(), StatusCode::OK);
        assert!(events.headers()[header::CONTENT_TYPE]
            .to_str()
            .is_ok_and(|kind| kind.starts_with("text/event-stream")));
        assert!(events.headers().get(header::CONTENT_ENCODING).is_none());
        drop(events);
    }
}

store_test! {
    #[tokio::test]
    async fn the_icon_is_linked_from_every_page_and_answers_at_favicon_ico(app: WebApp) {
        let login = app.get("/login", None).await;
        let icon = linked(&login.body, "rel=\"icon\"", "href");
        assert!(icon.starts_with("/static/favicon.svg?v="), "{icon}");
        let error = app.get("/no/such/page", None).await;
        assert_eq!(error.status, StatusCode::NOT_FOUND);
        assert_eq!(linked(&error.body, "rel=\"icon\"", "href"), icon);

        let linked_icon = fetch(&app, &icon, false).await;
        assert_eq!(linked_icon.status, StatusCode::OK);
        assert_eq!(header_of(&linked_icon, header::CONTENT_TYPE), "image/svg+xml");
        assert_eq!(header_of(&linked_icon, header::CACHE_CONTROL), LONG);
        assert!(String::from_utf8_lossy(&linked_icon.body).starts_with("<svg"));

        // Tools that do not read the page ask for /favicon.ico.
        let ico = fetch(&app, "/favicon.ico", false).await;
        assert_eq!(ico.status, StatusCode::OK);
        assert_eq!(header_of(&ico, header::CONTENT_TYPE), "image/svg+xml");
        assert_eq!(ico.body, linked_icon.body);
    }
}
