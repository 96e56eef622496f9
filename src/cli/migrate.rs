//! `helpdesk migrate`.

use anyhow::Result;
use helpdesk::app;
use helpdesk::config::Settings;

pub async fn run(settings: &Settings) -> Result<()> {
    app::open_store(settings).await?;
    println!("database schema is up to date");
    Ok(())
}
