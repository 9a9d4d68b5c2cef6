//! `mesos/v1/scheduler/scheduler.proto`: the calls a framework posts to
//! `/api/v1/scheduler` and the events the master streams back.

use serde::{Deserialize, Serialize};

use super::{
    AgentId, Bytes, ExecutorId, Filters, FrameworkId, FrameworkInfo, InverseOffer, KillPolicy, MasterInfo, Offer,
    OfferId, Operation, OperationId, OperationStatus, ResourceRequest, TaskId, TaskStatus,
};
use crate::json::tagged_message;

// ---------------------------------------------------------------- call bodies

/// `Call.Subscribe`. Without `framework_info.id` this registers a new framework;
/// with it (and the same top-level `framework_id`) it resubscribes after failover.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Subscribe {
    pub framework_info: FrameworkInfo,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suppressed_roles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer_constraints: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Accept {
    pub offer_ids: Vec<OfferId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<Operation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Decline {
    pub offer_ids: Vec<OfferId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

/// ACCEPT_INVERSE_OFFERS and DECLINE_INVERSE_OFFERS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InverseOffers {
    pub inverse_offer_ids: Vec<OfferId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

/// REVIVE: clears filters and unsuppresses; no roles means every role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Revive {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// SUPPRESS: no more offers until REVIVE; no roles means every role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Suppress {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Kill {
    pub task_id: TaskId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Shutdown {
    pub executor_id: ExecutorId,
    pub agent_id: AgentId,
}

/// Acknowledges one status update; `uuid` is the update's 16-byte uuid.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Acknowledge {
    pub agent_id: AgentId,
    pub task_id: TaskId,
    pub uuid: Bytes,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AcknowledgeOperationStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_provider_id: Option<super::ResourceProviderId>,
    pub uuid: Bytes,
    pub operation_id: OperationId,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReconcileTask {
    pub task_id: TaskId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
}

/// RECONCILE: an empty list asks for every task the master knows (implicit).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reconcile {
    pub tasks: Vec<ReconcileTask>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReconcileOperation {
    pub operation_id: OperationId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_provider_id: Option<super::ResourceProviderId>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReconcileOperations {
    pub operations: Vec<ReconcileOperation>,
}

/// A framework message to an executor; `data` is base64 on the wire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Message {
    pub agent_id: AgentId,
    pub executor_id: ExecutorId,
    pub data: Bytes,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Request {
    pub requests: Vec<ResourceRequest>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdateFramework {
    pub framework_info: FrameworkInfo,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suppressed_roles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer_constraints: Option<serde_json::Value>,
}

tagged_message! {
    /// A scheduler call: `{"type": T, "framework_id": {..}, "<t>": {..}}`.
    /// `framework_id` is required on every call but SUBSCRIBE, where it is set
    /// only to resubscribe.
    pub struct Call / CallKind {
        common { framework_id: Option<FrameworkId> }
        Subscribe = "SUBSCRIBE" { subscribe: Subscribe },
        Teardown = "TEARDOWN",
        Accept = "ACCEPT" { accept: Accept },
        Decline = "DECLINE" { decline: Decline },
        AcceptInverseOffers = "ACCEPT_INVERSE_OFFERS" { accept_inverse_offers: InverseOffers },
        DeclineInverseOffers = "DECLINE_INVERSE_OFFERS" { decline_inverse_offers: InverseOffers },
        Revive = "REVIVE" { revive: Revive = default },
        Kill = "KILL" { kill: Kill },
        Shutdown = "SHUTDOWN" { shutdown: Shutdown },
        Acknowledge = "ACKNOWLEDGE" { acknowledge: Acknowledge },
        AcknowledgeOperationStatus = "ACKNOWLEDGE_OPERATION_STATUS" { acknowledge_operation_status: AcknowledgeOperationStatus },
        Reconcile = "RECONCILE" { reconcile: Reconcile },
        ReconcileOperations = "RECONCILE_OPERATIONS" { reconcile_operations: ReconcileOperations },
        Message = "MESSAGE" { message: Message },
        Request = "REQUEST" { request: Request },
        Suppress = "SUPPRESS" { suppress: Suppress = default },
        UpdateFramework = "UPDATE_FRAMEWORK" { update_framework: UpdateFramework },
    }
}

impl Call {
    /// A call on behalf of a subscribed framework.
    pub fn new(framework_id: FrameworkId, kind: CallKind) -> Self {
        Call { framework_id: Some(framework_id), kind }
    }

    /// SUBSCRIBE; resubscribes when `framework_info.id` is set.
    pub fn subscribe(subscribe: Subscribe) -> Self {
        Call { framework_id: subscribe.framework_info.id.clone(), kind: CallKind::Subscribe(subscribe) }
    }
}

// ---------------------------------------------------------------- event bodies

/// First event of a subscription.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Subscribed {
    pub framework_id: FrameworkId,
    /// Seconds between HEARTBEAT events (15 on Mesos 1.11). Absent on very old
    /// masters, in which case the client falls back to 15.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "crate::json::opt_f64_lenient")]
    pub heartbeat_interval_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_info: Option<MasterInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Offers {
    pub offers: Vec<Offer>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InverseOffersEvent {
    pub inverse_offers: Vec<InverseOffer>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rescind {
    pub offer_id: OfferId,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RescindInverseOffer {
    pub inverse_offer_id: OfferId,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Update {
    pub status: TaskStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdateOperationStatus {
    pub status: OperationStatus,
}

/// An agent or executor failed. `status` is the executor's exit status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Failure {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<ExecutorId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
}

/// The master refused the subscription or dropped the framework; the stream
/// closes after it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Error {
    pub message: String,
}

tagged_message! {
    /// A scheduler event: `{"type": T, "<t>": {..}}`.
    pub enum Event {
        Subscribed = "SUBSCRIBED" { subscribed: Subscribed },
        Offers = "OFFERS" { offers: Offers },
        InverseOffers = "INVERSE_OFFERS" { inverse_offers: InverseOffersEvent },
        Rescind = "RESCIND" { rescind: Rescind },
        RescindInverseOffer = "RESCIND_INVERSE_OFFER" { rescind_inverse_offer: RescindInverseOffer },
        Update = "UPDATE" { update: Update },
        UpdateOperationStatus = "UPDATE_OPERATION_STATUS" { update_operation_status: UpdateOperationStatus },
        Message = "MESSAGE" { message: Message },
        Failure = "FAILURE" { failure: Failure },
        Error = "ERROR" { error: Error },
        Heartbeat = "HEARTBEAT",
    }
}
