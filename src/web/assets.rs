//! The stylesheet, the small live-update script and the icon, built into the binary: no CDN, no
//! files to deploy.
//!
//! Pages link each file as `/static/<name>?v=<version>`, the version being a hash of its
//! content: such a URL always means the same bytes, so browsers keep it for a year without
//! asking again, and a new build links new URLs. A request without the current version (an old
//! page, a hand-typed address) gets a few minutes.

use std::sync::LazyLock;

use axum::extract::{Path, Query};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::WebError;

/// What a versioned URL may be kept for.
pub const LONG_LIFETIME: &str = "public, max-age=31536000, immutable";
/// What any other request for a file may be kept for.
const SHORT_LIFETIME: &str = "public, max-age=300";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const FAVICON: Asset = Asset {
    name: "favicon.svg",
    content_type: "image/svg+xml",
    body: include_bytes!("../../static/favicon.svg"),
};

const ASSETS: [Asset; 4] = [
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../static/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/app.js"),
    },
    FAVICON,
    Asset {
        name: "reports.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../static/reports.css"),
    },
];

/// Each file's version, in the order of `ASSETS`, hashed once.
static VERSIONS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| hex::encode(&Sha256::digest(asset.body)[..8]))
        .collect()
});

fn find(name: &str) -> Option<(&'static Asset, &'static str)> {
    ASSETS
        .iter()
        .zip(VERSIONS.iter())
        .find(|(asset, _)| asset.name == name)
        .map(|(asset, version)| (asset, version.as_str()))
}

/// The versioned URL of a file under `static/`, for the templates:
/// `{{ crate::web::assets::url("app.css") }}`.
pub fn url(name: &str) -> String {
    match find(name) {
        Some((asset, version)) => format!("/static/{}?v={version}", asset.name),
        // A template naming a file that is not built in is a bug; the link then 404s visibly.
        None => format!("/static/{name}"),
    }
}

#[derive(serde::Deserialize)]
pub struct Version {
    v: Option<String>,
}

/// `GET /static/{name}`.
pub async fn file(
    Path(name): Path<String>,
    Query(version): Query<Version>,
) -> Result<Response, WebError> {
    let (asset, current) =
        find(&name).ok_or_else(|| WebError::NotFound("There is no such file.".into()))?;
    let lifetime = if version.v.as_deref() == Some(current) {
        LONG_LIFETIME
    } else {
        SHORT_LIFETIME
    };
    Ok(respond(asset, lifetime))
}

/// `GET /favicon.ico`, asked for by browsers and tools that do not read the page's icon link.
pub async fn favicon() -> Response {
    respond(&FAVICON, SHORT_LIFETIME)
}

fn respond(asset: &'static Asset, lifetime: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, asset.content_type),
            (CACHE_CONTROL, lifetime),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_has_a_versioned_url_and_versions_differ_by_content() {
        let css = url("app.css");
        let js = url("app.js");
        assert!(css.starts_with("/static/app.css?v="), "{css}");
        assert_eq!(css.len(), "/static/app.css?v=".len() + 16);
        assert_ne!(css["/static/app.css".len()..], js["/static/app.js".len()..]);
        assert!(url("favicon.svg").starts_with("/static/favicon.svg?v="));
    }
}
