//! `helpdesk serve`: one process runs the web server, the enabled channels and the job workers
//! until Ctrl-C or SIGTERM. Errors here only end the process and are reported there, so they are
//! `anyhow` like the command line's.

use anyhow::{Context, Result};
use chrono::Utc;

use crate::channels;
use crate::config::Settings;
use crate::{jobs, store, web};

/// Runs everything until a shutdown signal; queued jobs stay in the database for the next start.
pub async fn run(settings: Settings) -> Result<()> {
    let store = super::open_store(&settings)
        .await
        .context("cannot open the database")?;
    tracing::info!(
        database = %store::redact_password(&settings.database.url),
        "database ready"
    );
    let (stop_jobs, jobs_stop) = tokio::sync::watch::channel(false);
    let mut intake =
        super::intake(&settings, store.clone()).context("the attachment store ([attachments])")?;
    tracing::info!(store = intake.blobs().name(), "attachment store ready");
    if settings.email.enabled {
        let auto_replies = crate::intake::autoreply::AutoReplies::from_settings(&settings)
            .context("email.never_answer")?;
        intake = intake.with_auto_replies(auto_replies);
    }
    let mailboxes = if settings.email.enabled {
        settings.email.mailboxes()
    } else {
        Vec::new()
    };
    channels::mailboxes::check_departments(&store, &mailboxes)
        .await
        .context("the mailboxes in [email]")?;
    // Other instances and the pages read from here which channels run where; its id is the
    // one its leases, figures and traces carry.
    let instance = store::instances::Instance {
        id: crate::telemetry::instance_id().to_owned(),
        ..store::instances::Instance::this_process(&super::channels_enabled(&settings), Utc::now())
    };
    store::instances::register(&store, &instance)
        .await
        .context("cannot register this instance in the database")?;
    // Each consumer runs on the one instance holding its lease (always this one on SQLite).
    let leased = |name: String, start: Consumer| {
        tokio::spawn(super::leases::run_leased(
            store.clone(),
            instance.id.clone(),
            name,
            start,
            jobs_stop.clone(),
        ))
    };
    // One task per mailbox: a mailbox whose server is down stops no other.
    let mut consumers: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    for mailbox in &mailboxes {
        tracing::info!(
            mailbox = mailbox.name,
            address = mailbox.address,
            host = mailbox.imap.host,
            folder = mailbox.imap.mailbox,
            "IMAP intake (leased)"
        );
        let (mailbox_, intake) = (mailbox.clone(), intake.clone());
        consumers.push(leased(
            format!("email:{}", mailbox.name),
            Box::new(move |shutdown| channels::mailboxes::start(&mailbox_, &intake, shutdown).1),
        ));
    }
    // Channels that deliver replies join here as they are enabled.
    let deliverers = jobs::deliver::Deliverers::default().with_attachments(intake.blobs().clone());
    let mut deliverers = channels::mailboxes::with_senders(deliverers, &mailboxes)
        .context("the SMTP settings of the mailboxes ([email.smtp], email.mailboxes.smtp)")?;
    let telegram = if settings.telegram.enabled {
        let telegram =
            channels::telegram::client(&settings).context("the settings in [telegram]")?;
        deliverers = deliverers.with(
            helpdesk_channel::ChannelKind::Telegram,
            std::sync::Arc::new(telegram.clone()),
        );
        Some(telegram)
    } else {
        None
    };
    let discord = if settings.discord.enabled {
        let discord = channels::discord::client(&settings).context("the settings in [discord]")?;
        deliverers = deliverers.with(
            helpdesk_channel::ChannelKind::Discord,
            std::sync::Arc::new(channels::discord::DiscordDelivery::new(
                discord.clone(),
                store.clone(),
            )),
        );
        Some(discord)
    } else {
        None
    };
    let desk = channels::ChatDesk::new(intake.clone(), deliverers.clone(), &settings.email.address);
    if let Some(telegram) = telegram {
        let (desk, store) = (desk.clone(), store.clone());
        let start: Consumer = match settings.telegram.mode {
            crate::config::TelegramMode::Polling => {
                tracing::info!(
                    api = settings.telegram.api_url,
                    "Telegram long polling (leased)"
                );
                Box::new(move |shutdown| {
                    channels::telegram::start(
                        telegram.clone(),
                        desk.clone(),
                        store.clone(),
                        shutdown,
                    )
                })
            }
            crate::config::TelegramMode::Webhook => {
                let listen = settings.telegram.webhook_listen;
                // Bound by the holder only; tried here so a wrong address stops the start.
                drop(
                    std::net::TcpListener::bind(listen)
                        .with_context(|| format!("Telegram webhook listener on {listen}"))?,
                );
                tracing::info!(
                    %listen,
                    url = settings.telegram.webhook_url,
                    "Telegram webhook (leased)"
                );
                Box::new(move |shutdown| match bind(listen) {
                    Ok(listener) => channels::telegram::start_webhook(
                        telegram.clone(),
                        desk.clone(),
                        store.clone(),
                        listener,
                        shutdown,
                    ),
                    Err(error) => {
                        tracing::error!(%error, %listen, "Telegram webhook listener");
                        tokio::spawn(async {})
                    }
                })
            }
        };
        consumers.push(leased("telegram".to_owned(), start));
    }
    if let Some(discord) = discord {
        tracing::info!(
            agents_channel = settings.discord.agents_channel_id,
            "Discord gateway (leased)"
        );
        let (desk, store) = (desk.clone(), store.clone());
        consumers.push(leased(
            "discord".to_owned(),
            Box::new(move |shutdown| {
                channels::discord::start(discord.clone(), desk.clone(), store.clone(), shutdown)
            }),
        ));
    }
    let heartbeat = tokio::spawn(beat(store.clone(), instance.clone(), jobs_stop.clone()));
    let job_settings = jobs::JobSettings::from_settings(&settings);
    let workers = tokio::spawn(jobs::run(
        store.clone(),
        job_settings,
        deliverers,
        intake.committed(),
        jobs_stop,
    ));
    let state = web::AppState::new(
        store.clone(),
        web::WebConfig::from_settings(&settings, intake.blobs().clone()),
    );
    let served = web::serve(state, settings.web.listen, shutdown_signal())
        .await
        .with_context(|| format!("web server on {}", settings.web.listen));
    // Running jobs finish; queued ones stay in the database for the next start.
    stop_jobs.send(true).ok();
    match workers.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "job workers stopped with an error"),
        Err(error) => tracing::error!(%error, "job workers panicked"),
    }
    for consumer in consumers {
        if let Err(error) = consumer.await {
            tracing::error!(%error, "a channel consumer panicked");
        }
    }
    if let Err(error) = heartbeat.await {
        tracing::error!(%error, "instance heartbeat panicked");
    }
    if let Err(error) = store::instances::remove(&store, &instance.id).await {
        tracing::warn!(%error, "cannot remove this instance's row; it expires by itself");
    }
    served?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// What starts a leased consumer (see `super::leases`).
type Consumer = Box<dyn FnMut(super::leases::Shutdown) -> tokio::task::JoinHandle<()> + Send>;

/// A listener on `listen` for the tokio runtime.
fn bind(listen: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

/// Moves this instance's heartbeat on every few seconds until `stop` turns true.
async fn beat(
    store: store::Store,
    instance: store::instances::Instance,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(store::instances::HEARTBEAT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            _ = every.tick() => {}
        }
        if let Err(error) = store::instances::heartbeat(&store, &instance, Utc::now()).await {
            tracing::warn!(%error, "instance heartbeat");
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
