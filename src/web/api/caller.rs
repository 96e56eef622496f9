//! Who calls the API: the agent behind the bearer token, with the token's role.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::problem::ApiError;
use crate::domain::Role;
use crate::domain::TicketNumber;
use crate::store::api_tokens::{self, TokenOwner};
use crate::store::views::{self, TicketFacts, Visibility};
use crate::web::AppState;

#[derive(Debug, Clone)]
pub struct Caller {
    pub owner: TokenOwner,
}

impl Caller {
    pub fn id(&self) -> i64 {
        self.owner.agent_id
    }

    pub fn is_admin(&self) -> bool {
        self.owner.role == Role::Admin
    }

    pub fn visibility(&self) -> Visibility {
        if self.is_admin() {
            Visibility::All
        } else {
            Visibility::Agent(self.owner.agent_id)
        }
    }

    /// Admin endpoints answer 403 to agent tokens.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "this endpoint needs an admin token; this token has agent rights".into(),
            ))
        }
    }

    /// The ticket behind `number` if this caller may see it; 404 either way, so agents cannot
    /// probe which numbers exist outside their departments.
    pub async fn visible_ticket(
        &self,
        state: &AppState,
        number: TicketNumber,
    ) -> Result<TicketFacts, ApiError> {
        let not_found = || ApiError::NotFound(format!("there is no ticket #{number} you can see"));
        let facts = views::ticket_facts(&state.store, number)
            .await?
            .ok_or_else(not_found)?;
        if self.is_admin() || views::agent_may_see(&state.store, self.id(), &facts).await? {
            Ok(facts)
        } else {
            Err(not_found())
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            return Err(ApiError::Unauthorized {
                detail: "send a token as `Authorization: Bearer <token>`; admins make tokens \
                         with `helpdesk token create`"
                    .into(),
                invalid_token: false,
            });
        };
        let invalid = |detail: &str| ApiError::Unauthorized {
            detail: detail.to_owned(),
            invalid_token: true,
        };
        let value = header
            .to_str()
            .map_err(|_| invalid("the Authorization header is not readable text"))?;
        let Some((scheme, token)) = value.trim().split_once(' ') else {
            return Err(invalid("the Authorization header must be `Bearer <token>`"));
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(invalid("the Authorization header must be `Bearer <token>`"));
        }
        let owner = api_tokens::authenticate(&state.store, token.trim())
            .await?
            .ok_or_else(|| {
                invalid("the token is unknown or revoked, or its agent is deactivated")
            })?;
        Ok(Caller { owner })
    }
}
