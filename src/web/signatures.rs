//! Signatures for replies by mail from the pages: a person's own at `/account`, anyone's on the
//! agents page (admins).

use axum::extract::{Path, State};
use axum::response::Response;

use super::AppState;
use super::auth::Posted;
use super::error::{WebError, WebResult};
use super::pages::see_other;

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct SignatureForm {
    signature: String,
}

/// Sets the signed-in person's signature; empty clears it.
pub async fn change_own(
    State(state): State<AppState>,
    posted: Posted<SignatureForm>,
) -> WebResult<Response> {
    crate::store::mailboxes::set_agent_signature(
        &state.store,
        posted.viewer.id(),
        &posted.form.signature,
    )
    .await?;
    Ok(see_other("/account?signature_saved=true#signature"))
}

/// Sets an agent's signature (admins).
pub async fn change_agent(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<SignatureForm>,
) -> WebResult<Response> {
    posted.viewer.require_admin()?;
    let found =
        crate::store::mailboxes::set_agent_signature(&state.store, id, &posted.form.signature)
            .await?;
    if !found {
        return Err(WebError::NotFound(format!("there is no agent #{id}")));
    }
    Ok(see_other(&format!("/admin/agents#signature-{id}")))
}
