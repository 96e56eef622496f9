//! Asking a customer for their rating once their ticket is resolved: queued by the status
//! change, it stores the survey and queues its message's delivery ([`offer`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Job, JobContext, JobError, deliver};
use crate::domain::TicketId;
use crate::store::jobs::About;
use crate::store::{Store, StoreError, Tx};
use crate::surveys::{self, Offered, SurveyConfig};

/// Send ticket `ticket_id`'s satisfaction survey, if it may have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendSurvey {
    pub ticket_id: TicketId,
}

impl Job for SendSurvey {
    const QUEUE: &'static str = "helpdesk.survey";

    async fn run(self, context: &JobContext) -> Result<(), JobError> {
        let offered = offer(
            &context.store,
            &context.settings.surveys,
            self.ticket_id,
            Utc::now(),
        )
        .await?;
        tracing::debug!(ticket_id = %self.ticket_id, ?offered, "satisfaction survey");
        Ok(())
    }

    fn about(&self) -> Option<About> {
        Some(About::Ticket(self.ticket_id))
    }
}

/// Queues the survey of a ticket resolved (or closed) at `now`, inside the change's
/// transaction. Each resolution queues one; the survey itself is sent at most once.
pub async fn enqueue(
    tx: &mut Tx,
    ticket_id: TicketId,
    now: DateTime<Utc>,
) -> crate::store::Result<()> {
    SendSurvey { ticket_id }
        .enqueue(
            tx,
            &format!("survey:{ticket_id}:{}", now.timestamp_micros()),
            now,
        )
        .await
}

/// Asks the customer of ticket `ticket_id` for a rating, if they may be asked: the survey, its
/// message and the message's delivery job in one transaction.
pub async fn offer(
    store: &Store,
    config: &SurveyConfig,
    ticket_id: TicketId,
    now: DateTime<Utc>,
) -> Result<Offered, StoreError> {
    let key = surveys::link_key(store, now).await?;
    let mut tx = store.begin_write().await?;
    let offered = surveys::offer_in(&mut tx, config, &key, ticket_id, now).await?;
    match offered {
        Offered::Queued { message_id } => {
            deliver::enqueue(&mut tx, message_id, 1, now).await?;
            tx.commit().await?;
        }
        Offered::Skipped(_) => tx.rollback().await?,
    }
    Ok(offered)
}
