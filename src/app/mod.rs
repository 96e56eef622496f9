//! Wiring shared by the commands: the store and intake built from settings, the log set-up,
//! and `serve`, which starts every part of the app in one process.

pub mod leases;
pub mod logging;
pub mod serve;

use crate::config::Settings;
use crate::intake::{Intake, Limits};
use crate::store::blobs::{BlobError, BlobStore};
use crate::store::{Store, StoreError};

/// Opens the configured database and brings its schema up to date.
pub async fn open_store(settings: &Settings) -> Result<Store, StoreError> {
    let store = Store::connect(&settings.database.url, settings.database.max_connections).await?;
    store.migrate().await?;
    Ok(store)
}

/// Intake on the configured attachment store (`[attachments]`).
pub fn intake(settings: &Settings, store: Store) -> Result<Intake, BlobError> {
    Ok(Intake::new(
        store,
        BlobStore::from_settings(settings)?,
        Limits {
            max_attachment_bytes: settings.intake.max_attachment_bytes,
            max_message_bytes: settings.intake.max_message_bytes,
        },
    )
    .with_unknown_sender_tag(settings.intake.unknown_sender_tag))
}

/// The channels the settings enable, in a fixed order.
pub fn channels_enabled(settings: &Settings) -> Vec<helpdesk_channel::ChannelKind> {
    use helpdesk_channel::ChannelKind;
    [
        (ChannelKind::Email, settings.email.enabled),
        (ChannelKind::Telegram, settings.telegram.enabled),
        (ChannelKind::Discord, settings.discord.enabled),
    ]
    .into_iter()
    .filter_map(|(channel, enabled)| enabled.then_some(channel))
    .collect()
}
