//! Turning satisfaction surveys on or off for one department (a column of the departments
//! page).

use axum::extract::{Path, State};
use axum::response::Response;

use crate::store::surveys;
use crate::web::AppState;
use crate::web::auth::Posted;
use crate::web::error::{WebError, WebResult};
use crate::web::pages::see_other;

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct SurveySwitch {
    /// "on" or "off".
    surveys: String,
}

pub async fn set_department_surveys(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<SurveySwitch>,
) -> WebResult<Response> {
    posted.viewer.require_admin()?;
    let enabled = match posted.form.surveys.as_str() {
        "on" => true,
        "off" => false,
        other => {
            return Err(WebError::BadRequest(format!(
                "surveys must be on or off, not {other:?}"
            )));
        }
    };
    if !surveys::set_department_switch(&state.store, id, enabled).await? {
        return Err(WebError::NotFound(format!("there is no department {id}")));
    }
    Ok(see_other("/admin/departments"))
}
