//! Broker → controller RPCs forwarded by the broker's handlers: AlterPartition (spec §3.10)
//! and ControlledShutdown (spec §3.6). Both run inside the controller event loop.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_partition_response::{
    PartitionData as ApPartitionResp, TopicData as ApTopicResp,
};
use kafka_protocol::messages::controlled_shutdown_response::RemainingPartition;
use kafka_protocol::messages::{
    AlterPartitionRequest, AlterPartitionResponse, ControlledShutdownRequest,
    ControlledShutdownResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use samsa_common::types::{BrokerId, TopicPartition};
use tracing::info;

use crate::context::LeaderAndIsr;
use crate::error::{Error, Result};
use crate::event_loop::Controller;
use crate::leader_selection::ElectionStrategy;
use crate::replica_state::ReplicaState;

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const BROKER_NOT_AVAILABLE: i16 = 8;
const STALE_CONTROLLER_EPOCH: i16 = 11;
const NOT_CONTROLLER: i16 = 41;
const INVALID_REQUEST: i16 = 42;
const OPERATION_NOT_ATTEMPTED: i16 = 55;
const FENCED_LEADER_EPOCH: i16 = 74;
const STALE_BROKER_EPOCH: i16 = 77;
const INVALID_UPDATE_VERSION: i16 = 95;
const UNKNOWN_TOPIC_ID: i16 = 100;
const INELIGIBLE_REPLICA: i16 = 107;
const UNKNOWN_SERVER_ERROR: i16 = -1;

impl Controller {
    /// AlterPartition: the leader asks to change the ISR (and/or leader recovery state).
    pub(crate) async fn on_alter_partition(
        &mut self,
        req: AlterPartitionRequest,
        version: i16,
    ) -> (AlterPartitionResponse, Result<()>) {
        let mut resp = AlterPartitionResponse::default();
        if !self.active {
            resp.error_code = NOT_CONTROLLER;
            return (resp, Ok(()));
        }
        let broker: BrokerId = req.broker_id.0;
        if self.ctx.broker_epoch(broker) != Some(req.broker_epoch) {
            resp.error_code = STALE_BROKER_EPOCH;
            return (resp, Ok(()));
        }
        let topic_by_id: BTreeMap<uuid::Uuid, String> = self
            .ctx
            .topic_ids
            .iter()
            .map(|(t, id)| (*id, t.clone()))
            .collect();
        let mut updated = Vec::new();
        let mut result = Ok(());
        for t in req.topics {
            let mut topic_resp = ApTopicResp::default();
            topic_resp.topic_id = t.topic_id;
            topic_resp.topic_name = t.topic_name.clone();
            let name = if version >= 2 {
                topic_by_id.get(&t.topic_id).cloned()
            } else {
                Some(t.topic_name.0.to_string())
            };
            for p in t.partitions {
                let mut pr = ApPartitionResp::default();
                pr.partition_index = p.partition_index;
                let Some(name) = name.clone() else {
                    pr.error_code = UNKNOWN_TOPIC_ID;
                    topic_resp.partitions.push(pr);
                    continue;
                };
                let tp = TopicPartition::new(name, p.partition_index);
                let new_isr: Vec<BrokerId> = if version >= 3 {
                    p.new_isr_with_epochs
                        .iter()
                        .map(|b| b.broker_id.0)
                        .collect()
                } else {
                    p.new_isr.iter().map(|b| b.0).collect()
                };
                let isr_epochs: Vec<(BrokerId, i64)> = if version >= 3 {
                    p.new_isr_with_epochs
                        .iter()
                        .map(|b| (b.broker_id.0, b.broker_epoch))
                        .collect()
                } else {
                    Vec::new()
                };
                if result.is_err() {
                    pr.error_code = UNKNOWN_SERVER_ERROR;
                    topic_resp.partitions.push(pr);
                    continue;
                }
                match self
                    .alter_one(&tp, broker, &p_fields(&p), new_isr, &isr_epochs, version)
                    .await
                {
                    Ok(Ok(l)) => {
                        pr.error_code = NONE;
                        pr.leader_id = l.leader.into();
                        pr.leader_epoch = l.leader_epoch;
                        pr.isr = l.isr.iter().map(|b| (*b).into()).collect();
                        pr.leader_recovery_state = l.leader_recovery_state;
                        pr.partition_epoch = l.partition_epoch;
                        updated.push(tp);
                    }
                    Ok(Err(code)) => pr.error_code = code,
                    Err(e) => {
                        pr.error_code = if e.is_controller_moved() {
                            NOT_CONTROLLER
                        } else {
                            UNKNOWN_SERVER_ERROR
                        };
                        result = Err(e);
                    }
                }
                topic_resp.partitions.push(pr);
            }
            resp.topics.push(topic_resp);
        }
        if !updated.is_empty() {
            let all = self.ctx.live_or_shutting_down_ids();
            self.batch.add_update_metadata(&self.ctx, &all, &updated);
            self.send_batch();
            if result.is_ok() {
                for tp in &updated {
                    if let Err(e) = self.maybe_complete_reassignment(tp).await {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        (resp, result)
    }

    /// One partition of an AlterPartition request. `Ok(Err(code))` = per-partition error.
    async fn alter_one(
        &mut self,
        tp: &TopicPartition,
        broker: BrokerId,
        p: &ReqFields,
        new_isr: Vec<BrokerId>,
        isr_epochs: &[(BrokerId, i64)],
        version: i16,
    ) -> Result<std::result::Result<LeaderAndIsr, i16>> {
        let Some(current) = self.ctx.leadership.get(tp).cloned() else {
            return Ok(Err(UNKNOWN_TOPIC_OR_PARTITION));
        };
        let cur = &current.leader_and_isr;
        if p.partition_epoch > cur.partition_epoch || p.leader_epoch > cur.leader_epoch {
            return Ok(Err(NOT_CONTROLLER));
        }
        if p.leader_epoch < cur.leader_epoch {
            return Ok(Err(FENCED_LEADER_EPOCH));
        }
        let same = broker == cur.leader
            && new_isr == cur.isr
            && p.leader_recovery_state == cur.leader_recovery_state;
        if same && p.partition_epoch <= cur.partition_epoch {
            return Ok(Ok(cur.clone()));
        }
        if p.partition_epoch < cur.partition_epoch {
            return Ok(Err(INVALID_UPDATE_VERSION));
        }
        // RECOVERING needs a single-member ISR, and RECOVERED never goes back to RECOVERING.
        if p.leader_recovery_state == 1 && (new_isr.len() > 1 || cur.leader_recovery_state == 0) {
            return Ok(Err(INVALID_REQUEST));
        }
        let ineligible = new_isr.iter().any(|r| {
            !self.ctx.is_replica_online(*r, tp)
                || isr_epochs
                    .iter()
                    .any(|(b, e)| b == r && *e != -1 && self.ctx.broker_epoch(*b) != Some(*e))
        });
        if ineligible {
            return Ok(Err(if version >= 2 {
                INELIGIBLE_REPLICA
            } else {
                OPERATION_NOT_ATTEMPTED
            }));
        }
        let next = LeaderAndIsr {
            leader: broker,
            leader_epoch: cur.leader_epoch,
            isr: new_isr,
            leader_recovery_state: p.leader_recovery_state,
            partition_epoch: cur.partition_epoch,
        };
        let expected = cur.partition_epoch;
        let mut data = current.clone();
        data.leader_and_isr = next.clone();
        data.controller_epoch = self.ctx.epoch;
        match self
            .fenced_set(
                &samsa_common::zk::znodes::TopicPartitionStateZNode::path(tp),
                data.to_znode().encode(),
                Some(expected),
            )
            .await
        {
            Ok(stat) => {
                data.leader_and_isr.partition_epoch = stat.version;
                info!(partition = %tp, isr = ?data.leader_and_isr.isr, partition_epoch = stat.version, "ISR updated");
                self.ctx.leadership.insert(tp.clone(), data.clone());
                Ok(Ok(data.leader_and_isr))
            }
            Err(Error::Zk(e)) if e.is_bad_version() => {
                self.refresh_leadership(tp).await?;
                Ok(Err(INVALID_UPDATE_VERSION))
            }
            Err(e) => Err(e),
        }
    }

    /// ControlledShutdown: move leadership off the broker, take it out of ISRs, and reply
    /// with the partitions it still leads.
    pub(crate) async fn on_controlled_shutdown(
        &mut self,
        req: ControlledShutdownRequest,
        version: i16,
    ) -> (ControlledShutdownResponse, Result<()>) {
        let mut resp = ControlledShutdownResponse::default();
        if !self.active {
            resp.error_code = STALE_CONTROLLER_EPOCH;
            return (resp, Ok(()));
        }
        let id: BrokerId = req.broker_id.0;
        let Some(cached) = self.ctx.broker_epoch(id) else {
            resp.error_code = BROKER_NOT_AVAILABLE;
            return (resp, Ok(()));
        };
        if version >= 2 && req.broker_epoch != -1 && req.broker_epoch < cached {
            resp.error_code = STALE_BROKER_EPOCH;
            return (resp, Ok(()));
        }
        info!(broker = id, "controlled shutdown requested");
        self.ctx.shutting_down.insert(id);
        let result = self.do_controlled_shutdown(id).await;
        self.send_batch();
        match &result {
            Ok(()) => {
                let remaining: Vec<TopicPartition> = self
                    .ctx
                    .partitions_led_by(id)
                    .into_iter()
                    .filter(|tp| {
                        self.ctx.replicas(tp).len() > 1
                            && !self.ctx.is_topic_queued_for_deletion(&tp.topic)
                    })
                    .collect();
                resp.remaining_partitions = remaining
                    .into_iter()
                    .map(|tp| {
                        let mut r = RemainingPartition::default();
                        r.topic_name = TopicName(StrBytes::from_string(tp.topic));
                        r.partition_index = tp.partition;
                        r
                    })
                    .collect();
            }
            Err(e) => {
                resp.error_code = if e.is_controller_moved() {
                    STALE_CONTROLLER_EPOCH
                } else {
                    UNKNOWN_SERVER_ERROR
                };
            }
        }
        (resp, result)
    }

    async fn do_controlled_shutdown(&mut self, id: BrokerId) -> Result<()> {
        let parts: Vec<TopicPartition> = self
            .ctx
            .partitions_on_broker(id)
            .into_iter()
            .filter(|tp| {
                self.ctx.replicas(tp).len() > 1
                    && self.ctx.leadership.contains_key(tp)
                    && !self.ctx.is_topic_queued_for_deletion(&tp.topic)
            })
            .collect();
        let (led, followed): (Vec<_>, Vec<_>) = parts.into_iter().partition(|tp| {
            self.ctx
                .leadership
                .get(tp)
                .is_some_and(|l| l.leader_and_isr.leader == id)
        });
        self.partitions_to_online(&led, ElectionStrategy::ControlledShutdown)
            .await?;
        self.send_batch();
        let followers: Vec<(TopicPartition, BrokerId)> =
            followed.into_iter().map(|tp| (tp, id)).collect();
        self.replicas_to_state(&followers, ReplicaState::Offline)
            .await?;
        Ok(())
    }
}

/// The AlterPartition fields the checks need (independent of request version).
struct ReqFields {
    leader_epoch: i32,
    partition_epoch: i32,
    leader_recovery_state: i8,
}

fn p_fields(p: &kafka_protocol::messages::alter_partition_request::PartitionData) -> ReqFields {
    ReqFields {
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        leader_recovery_state: p.leader_recovery_state,
    }
}
