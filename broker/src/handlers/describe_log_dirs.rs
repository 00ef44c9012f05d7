//! DescribeLogDirs (API 35, v0-v4): partitions and sizes per log dir.

// kafka-protocol messages are non_exhaustive: built from Default, then filled in.
#![allow(clippy::field_reassign_with_default)]

use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    DescribeLogDirsRequest, DescribeLogDirsResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

/// `(total, usable)` bytes of the file system holding `dir`, or -1s.
fn fs_space(dir: &std::path::Path) -> (i64, i64) {
    match nix::sys::statvfs::statvfs(dir) {
        Ok(s) => {
            let frag = s.fragment_size() as i64;
            (s.blocks() as i64 * frag, s.blocks_available() as i64 * frag)
        }
        Err(_) => (-1, -1),
    }
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: DescribeLogDirsRequest,
) -> Result<DescribeLogDirsResponse> {
    let version = header.request_api_version;
    if !enforce::cluster(ctx, conn, Operation::Describe) {
        let mut resp = DescribeLogDirsResponse::default();
        resp.error_code = denied_error(ResourceType::Cluster).code();
        return Ok(resp);
    }
    let rm = ctx.replicas()?;
    let wanted = |topic: &str, p: i32| match &req.topics {
        None => true,
        Some(ts) => ts
            .iter()
            .any(|t| t.topic.as_str() == topic && t.partitions.contains(&p)),
    };
    let mut resp = DescribeLogDirsResponse::default();
    for (dir, parts) in rm.log_dir_view() {
        let mut r = DescribeLogDirsResult::default();
        r.log_dir = StrBytes::from_string(dir.display().to_string());
        let Some(parts) = parts else {
            // An offline dir: KAFKA_STORAGE_ERROR, no partitions, sizes unknown (-1).
            r.error_code = crate::replica::partition::codes::KAFKA_STORAGE_ERROR;
            resp.results.push(r);
            continue;
        };
        if version >= 4 {
            let (total, usable) = fs_space(&dir);
            r.total_bytes = total;
            r.usable_bytes = usable;
        }
        for p in parts
            .into_iter()
            .filter(|p| wanted(&p.tp.topic, p.tp.partition))
        {
            if r.topics.last().map(|t| t.name.as_str()) != Some(p.tp.topic.as_str()) {
                let mut t = DescribeLogDirsTopic::default();
                t.name = TopicName(StrBytes::from_string(p.tp.topic.clone()));
                r.topics.push(t);
            }
            let mut dp = DescribeLogDirsPartition::default();
            dp.partition_index = p.tp.partition;
            dp.partition_size = p.size;
            dp.offset_lag = p.offset_lag;
            dp.is_future_key = p.is_future;
            if let Some(t) = r.topics.last_mut() {
                t.partitions.push(dp);
            }
        }
        resp.results.push(r);
    }
    Ok(resp)
}
