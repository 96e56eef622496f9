//! The admin pages, one file each: departments, agents, channel health and the job queue (the
//! rules have their own module, `rule_editor`).
//! Every handler starts with the role check, so agents get 403 whatever they request.

mod agents;
mod channels;
mod department_sla;
mod department_surveys;
mod departments;
mod jobs;

pub use agents::{
    account_error, agents, create_agent, set_agent_active, set_agent_password, update_agent,
    update_chat_ids,
};
pub use channels::channels;
pub(crate) use channels::mailbox_rows;
pub use department_sla::{
    department_sla, import_holidays, save_calendar, save_holiday, save_policy,
};
pub use department_surveys::set_department_surveys;
pub use departments::{create_department, departments, update_department};
pub use jobs::{jobs, retry_job};

#[derive(serde::Deserialize)]
pub struct Empty {}
