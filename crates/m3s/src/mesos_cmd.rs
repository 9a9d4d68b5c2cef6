//! `m3s mesos ...`: read a master's state through the operator API, or
//! subscribe as a framework and print its events (declining every offer, so
//! it takes nothing from the cluster).

use clap::Subcommand;
use mesos::operator::OperatorClient;
use mesos::scheduler::{Scheduler, SchedulerConfig, SchedulerEvent};
use mesos::v1::Filters;
use mesos::v1::scheduler::{CallKind, Decline, Event};

use crate::config::{FrameworkArgs, MesosArgs};

#[derive(Debug, Subcommand)]
pub enum MesosCommand {
    /// Print the master's GET_HEALTH, GET_VERSION, GET_STATE, ... answer as JSON.
    Get {
        /// What to get.
        #[arg(value_enum)]
        what: What,
    },
    /// Follow the operator event stream (one JSON event per line).
    Watch,
    /// Subscribe as a framework and print every scheduler event as a JSON line,
    /// declining offers for an hour so as to hold no resources.
    Events {
        #[command(flatten)]
        framework: FrameworkArgs,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum What {
    Health,
    Version,
    State,
    Agents,
    Frameworks,
    Tasks,
    Metrics,
}

pub async fn run(args: MesosArgs, command: MesosCommand) -> anyhow::Result<()> {
    let transport = args.transport()?;
    match command {
        MesosCommand::Get { what } => {
            let client = OperatorClient::new(&args.master, args.ssl, transport)?;
            let value = match what {
                What::Health => serde_json::to_value(client.get_health().await?)?,
                What::Version => serde_json::to_value(client.get_version().await?)?,
                What::State => serde_json::to_value(client.get_state().await?)?,
                What::Agents => serde_json::to_value(client.get_agents().await?)?,
                What::Frameworks => serde_json::to_value(client.get_frameworks().await?)?,
                What::Tasks => serde_json::to_value(client.get_tasks().await?)?,
                What::Metrics => serde_json::to_value(client.get_metrics(None).await?)?,
            };
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        MesosCommand::Watch => {
            let client = OperatorClient::new(&args.master, args.ssl, transport)?;
            let mut stream = client.subscribe().await?;
            while let Some(event) = stream.next().await {
                println!("{}", serde_json::to_string(&event?)?);
            }
        }
        MesosCommand::Events { framework } => {
            let info = framework.framework_info(args.principal.as_deref());
            let mut config = SchedulerConfig::new(args.master.clone(), info);
            config.tls = args.ssl;
            config.transport = transport;
            let mut scheduler = Scheduler::start(config)?;
            while let Some(event) = scheduler.next().await {
                let event = event?;
                let line = match &event {
                    SchedulerEvent::Subscribed { framework_id, master, resubscribed, .. } => serde_json::json!({
                        "subscribed": {"framework_id": framework_id.value, "master": master, "resubscribed": resubscribed}
                    }),
                    SchedulerEvent::Disconnected { reason } => serde_json::json!({"disconnected": reason}),
                    SchedulerEvent::Event(e) => serde_json::to_value(e)?,
                };
                println!("{line}");
                match event {
                    SchedulerEvent::Event(Event::Offers(offers)) => {
                        let offer_ids = offers.offers.into_iter().map(|o| o.id).collect();
                        let decline = Decline { offer_ids, filters: Some(Filters { refuse_seconds: 3600.0 }) };
                        scheduler.handle().call(CallKind::Decline(decline)).await?;
                    }
                    SchedulerEvent::Event(Event::Update(update)) if update.status.uuid.is_some() => {
                        scheduler.handle().acknowledge(&update.status)?;
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}
