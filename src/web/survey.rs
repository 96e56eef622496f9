//! The customer's side of a mail survey, without signing in: a link records a rating and shows
//! a thank-you page with a comment form. The signed token in the path is what authorizes both
//! (no session, so no CSRF token: a forged request would need the token itself); a forged
//! token is refused with 403, an expired survey with 410.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;

use crate::domain::TicketNumber;
use crate::store::surveys::{self, Survey};
use crate::surveys::{self as survey_flow, MAX_COMMENT_CHARS, RATINGS, Recorded};
use crate::web::AppState;
use crate::web::error::WebResult;

struct SurveyForm {
    token: String,
    number: TicketNumber,
    rating: Option<i64>,
    comment: Option<String>,
    choices: &'static [(i64, &'static str)],
    until: String,
    max_comment: usize,
}

#[derive(Template)]
#[template(path = "web/survey.html")]
struct SurveyPage {
    title: String,
    message: Option<String>,
    error: Option<String>,
    form: Option<SurveyForm>,
}

fn page(status: StatusCode, page: SurveyPage) -> WebResult<Response> {
    let mut response = (status, Html(page.render()?)).into_response();
    // The page names a rating and a comment: not for shared caches or the back button.
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn refusal(status: StatusCode, title: &str, error: &str) -> WebResult<Response> {
    page(
        status,
        SurveyPage {
            title: title.to_owned(),
            message: None,
            error: Some(error.to_owned()),
            form: None,
        },
    )
}

fn form_of(token: &str, survey: &Survey) -> SurveyForm {
    SurveyForm {
        token: token.to_owned(),
        number: survey.number,
        rating: survey.rating,
        comment: survey.comment.clone(),
        choices: &RATINGS,
        until: survey.expires_at.format("%Y-%m-%d").to_string(),
        max_comment: MAX_COMMENT_CHARS,
    }
}

/// The survey a token names and that can still be answered, or the page that says why not.
async fn open_survey(state: &AppState, token: &str) -> WebResult<Result<Survey, Response>> {
    let Some(ticket_id) = survey_flow::ticket_of_token(&state.store, token).await? else {
        return Ok(Err(refusal(
            StatusCode::FORBIDDEN,
            "This link is not valid",
            "The link is damaged or was not made by us. Use the link from our mail exactly as \
             it came.",
        )?));
    };
    let Some(survey) = surveys::of_ticket(&state.store, ticket_id).await? else {
        return Ok(Err(refusal(
            StatusCode::NOT_FOUND,
            "No survey",
            "There is no survey for this ticket.",
        )?));
    };
    if !survey_flow::open(&survey, Utc::now()) {
        return Ok(Err(refusal(
            StatusCode::GONE,
            "This survey has expired",
            &format!(
                "Ratings for ticket #{} were taken until {}. Thank you all the same.",
                survey.number,
                survey.expires_at.format("%Y-%m-%d")
            ),
        )?));
    }
    Ok(Ok(survey))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct RatingQuery {
    rating: Option<String>,
}

/// `GET /survey/{token}[?rating=1-5]`: records the rating if one is given (a second one
/// replaces it), then shows the survey with the comment form.
pub async fn show(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(query): Query<RatingQuery>,
) -> WebResult<Response> {
    let survey = match open_survey(&state, &token).await? {
        Ok(survey) => survey,
        Err(refused) => return Ok(refused),
    };
    let Some(given) = query.rating.as_deref().filter(|given| !given.is_empty()) else {
        return page(
            StatusCode::OK,
            SurveyPage {
                title: "How did we do?".to_owned(),
                message: None,
                error: None,
                form: Some(form_of(&token, &survey)),
            },
        );
    };
    let Some(rating) = given.parse::<i64>().ok().filter(|r| (1..=5).contains(r)) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "Not a rating",
            "A rating is a number from 1 to 5.",
        );
    };
    let message =
        match survey_flow::record_rating(&state.store, survey.ticket_id, rating, Utc::now()).await?
        {
            Recorded::Rated {
                previous: Some(previous),
            } if previous != rating => {
                format!("Your rating is now {rating} of 5 (it was {previous}).")
            }
            Recorded::Rated { .. } => format!("Your rating {rating} of 5 is recorded."),
            // Expired or removed since it was read a moment ago.
            Recorded::Expired | Recorded::NoSurvey => {
                return refusal(
                    StatusCode::GONE,
                    "This survey has expired",
                    "Ratings are no longer taken for this ticket.",
                );
            }
        };
    let survey = surveys::of_ticket(&state.store, survey.ticket_id)
        .await?
        .unwrap_or(survey);
    page(
        StatusCode::OK,
        SurveyPage {
            title: "Thank you!".to_owned(),
            message: Some(message),
            error: None,
            form: Some(form_of(&token, &survey)),
        },
    )
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct CommentForm {
    comment: String,
}

/// `POST /survey/{token}`: keeps the customer's comment on their rating.
pub async fn comment(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Form(form): Form<CommentForm>,
) -> WebResult<Response> {
    let survey = match open_survey(&state, &token).await? {
        Ok(survey) => survey,
        Err(refused) => return Ok(refused),
    };
    if survey.rating.is_none() {
        return refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Rate first",
            "Choose a rating from 1 to 5 first; then tell us more if you like.",
        );
    }
    survey_flow::record_comment(&state.store, survey.ticket_id, &form.comment, Utc::now()).await?;
    let survey = surveys::of_ticket(&state.store, survey.ticket_id)
        .await?
        .unwrap_or(survey);
    page(
        StatusCode::OK,
        SurveyPage {
            title: "Thank you!".to_owned(),
            message: Some(if survey.comment.is_some() {
                "Your comment is recorded.".to_owned()
            } else {
                "Your comment is removed.".to_owned()
            }),
            error: None,
            form: Some(form_of(&token, &survey)),
        },
    )
}
