//! Cost of one authorization with 1,000 ACLs loaded (harness = false):
//!
//! `cargo bench -p samsa-broker --bench acl_bench`
//!
//! The cache holds 1,000 resource patterns, half literal topics and half prefixed topics
//! (`app-<i>-`), each with one ALLOW and one DENY for other principals, plus a literal `*`
//! ACL. Times `Authorizer::authorize` (what a handler pays per resource) for an allowed
//! literal topic, a name that walks the prefixed index, a denied topic, and the same with no
//! authorizer. Prints ns per call, median of 5.

use std::net::IpAddr;
use std::time::Instant;

use samsa_broker::security::authorizer::acl::{
    AclBinding, AclEntry, PatternType, Permission, ResourcePattern,
};
use samsa_broker::security::authorizer::cache::{AclCache, VersionedAcls};
use samsa_broker::security::authorizer::{Authorizer, Operation, ResourceType};
use samsa_common::config::AclAuthorizerConfig;

const N: u64 = 2_000_000;

fn entry(principal: &str, op: Operation, permission: Permission) -> AclEntry {
    AclEntry {
        principal: principal.into(),
        host: "*".into(),
        operation: op,
        permission,
    }
}

fn loaded() -> Authorizer {
    let a = Authorizer::from_config(Some(&AclAuthorizerConfig {
        class_name: "kafka.security.authorizer.AclAuthorizer".into(),
        super_users: vec!["User:admin".into()],
        allow_everyone_if_no_acl_found: false,
    }));
    let mut cache = AclCache::default();
    let mut bindings: Vec<AclBinding> = Vec::new();
    for i in 0..1000 {
        let (name, pt) = if i % 2 == 0 {
            (format!("topic-{i}"), PatternType::Literal)
        } else {
            (format!("app-{i}-"), PatternType::Prefixed)
        };
        let p = ResourcePattern::new(ResourceType::Topic, name, pt);
        bindings.push(AclBinding {
            pattern: p.clone(),
            entry: entry(&format!("User:u{i}"), Operation::Write, Permission::Allow),
        });
        bindings.push(AclBinding {
            pattern: p,
            entry: entry(&format!("User:d{i}"), Operation::Read, Permission::Deny),
        });
    }
    bindings.push(AclBinding {
        pattern: ResourcePattern::new(ResourceType::Topic, "*", PatternType::Literal),
        entry: entry("User:monitor", Operation::Describe, Permission::Allow),
    });
    let mut by: std::collections::BTreeMap<ResourcePattern, VersionedAcls> = Default::default();
    for b in bindings {
        by.entry(b.pattern).or_default().acls.insert(b.entry);
    }
    for (p, v) in by {
        cache.set(p, v);
    }
    a.install(cache);
    a
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time(a: &Authorizer, who: &str, name: &str, op: Operation, want: bool) -> f64 {
    let host: IpAddr = "10.1.2.3".parse().expect("ip");
    assert_eq!(
        a.authorize(who, host, op, ResourceType::Topic, name),
        want,
        "{who} {name}"
    );
    median(
        (0..5)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..N {
                    std::hint::black_box(a.authorize(
                        std::hint::black_box(who),
                        host,
                        op,
                        ResourceType::Topic,
                        std::hint::black_box(name),
                    ));
                }
                start.elapsed().as_nanos() as f64 / N as f64
            })
            .collect(),
    )
}

fn main() {
    let a = loaded();
    println!(
        "allowed, literal topic:        {:6.1} ns",
        time(&a, "User:u500", "topic-500", Operation::Write, true)
    );
    println!(
        "allowed, prefixed (24 chars):  {:6.1} ns",
        time(
            &a,
            "User:u501",
            "app-501-orders-eu-west-1",
            Operation::Write,
            true
        )
    );
    println!(
        "denied (DENY READ):            {:6.1} ns",
        time(&a, "User:d500", "topic-500", Operation::Read, false)
    );
    println!(
        "no ACL for the topic:          {:6.1} ns",
        time(
            &a,
            "User:u500",
            "unlisted-topic-name",
            Operation::Write,
            false
        )
    );
    println!(
        "super user:                    {:6.1} ns",
        time(&a, "User:admin", "topic-500", Operation::Write, true)
    );
    let off = Authorizer::disabled();
    println!(
        "no authorizer:                 {:6.1} ns",
        time(&off, "User:x", "topic-500", Operation::Write, true)
    );
}
