//! The in-memory ACL cache and the matcher (Kafka's `AclAuthorizer.aclCache`,
//! `matchingAcls` and `authorizeAction`).
//!
//! A cache is an immutable snapshot: writers build a new one and swap it in, readers take
//! the current `Arc` and match without locks or allocation. Besides the ordered map of all
//! resource patterns (for DescribeAcls / DeleteAcls and the versions of conditional
//! writes), each resource type has a hash index of its literal and prefixed names, so a
//! check costs two literal look-ups plus one per prefix length of the resource name.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use samsa_common::zk::acl::AclJson;

use super::acl::{
    AclBinding, AclBindingFilter, AclEntry, PatternType, Permission, ResourcePattern, WILDCARD,
    WILDCARD_PRINCIPAL,
};
use super::{Operation, ResourceType};

/// The ACLs of one resource pattern and its znode version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionedAcls {
    pub acls: BTreeSet<AclEntry>,
    /// Entries whose operation or permission this broker does not know (written by another
    /// tool); never match, kept so that a rewrite does not drop them.
    pub foreign: Vec<AclJson>,
    /// The znode's version; `None` when the node does not exist.
    pub version: Option<i32>,
}

impl VersionedAcls {
    pub fn is_empty(&self) -> bool {
        self.acls.is_empty() && self.foreign.is_empty()
    }

    /// The JSON entries to write.
    pub fn to_json(&self) -> Vec<AclJson> {
        self.acls
            .iter()
            .map(AclEntry::to_json)
            .chain(self.foreign.iter().cloned())
            .collect()
    }
}

type Index = HashMap<String, Arc<VersionedAcls>>;

/// One snapshot of every ACL.
#[derive(Clone, Debug, Default)]
pub struct AclCache {
    resources: BTreeMap<ResourcePattern, Arc<VersionedAcls>>,
    literal: [Index; 6],
    prefixed: [Index; 6],
}

impl AclCache {
    /// Number of resource patterns with ACLs.
    pub fn len(&self) -> usize {
        self.resources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    pub fn get(&self, p: &ResourcePattern) -> Option<&Arc<VersionedAcls>> {
        self.resources.get(p)
    }

    /// Every resource pattern held.
    pub fn patterns(&self) -> impl Iterator<Item = &ResourcePattern> {
        self.resources.keys()
    }

    /// Replaces (or, when empty, removes) one pattern's ACLs in place; writers call this on
    /// their private copy before swapping it in.
    pub fn set(&mut self, p: ResourcePattern, acls: VersionedAcls) {
        let index = match p.pattern_type {
            PatternType::Literal => &mut self.literal[p.resource_type.index()],
            PatternType::Prefixed => &mut self.prefixed[p.resource_type.index()],
        };
        if acls.is_empty() {
            index.remove(&p.name);
            self.resources.remove(&p);
        } else {
            let acls = Arc::new(acls);
            index.insert(p.name.clone(), acls.clone());
            self.resources.insert(p, acls);
        }
    }

    /// Bindings matching `filter` (`AclAuthorizer.acls`), in pattern order.
    pub fn acls(&self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        let mut out = Vec::new();
        for (p, v) in &self.resources {
            if !filter.matches_pattern(p) {
                continue;
            }
            for e in &v.acls {
                if filter.matches_entry(e) {
                    out.push(AclBinding {
                        pattern: p.clone(),
                        entry: e.clone(),
                    });
                }
            }
        }
        out
    }

    /// Kafka's decision for a non-super user: the ACLs that apply are those of the literal
    /// name, the literal `*` and every prefixed pattern that is a prefix of the name. None
    /// at all → `allow_everyone`; otherwise a matching DENY (same operation or ALL) refuses,
    /// else a matching ALLOW (with implied operations) grants. An ACL matches when its
    /// principal is the caller's or `User:*` and its host the caller's or `*`.
    pub fn authorize(
        &self,
        principal: &str,
        host: &str,
        op: Operation,
        rt: ResourceType,
        name: &str,
        allow_everyone: bool,
    ) -> bool {
        let i = rt.index();
        let literal = &self.literal[i];
        let prefixed = &self.prefixed[i];
        let mut found = false;
        let mut allowed = false;
        let mut visit = |v: &VersionedAcls| -> bool {
            found |= !v.is_empty();
            for a in &v.acls {
                if !(a.principal == principal || a.principal == WILDCARD_PRINCIPAL)
                    || !(a.host == WILDCARD || a.host == host)
                {
                    continue;
                }
                match a.permission {
                    Permission::Deny if a.operation == op || a.operation == Operation::All => {
                        return true;
                    }
                    Permission::Allow if a.operation.allow_grants(op) => allowed = true,
                    _ => {}
                }
            }
            false
        };
        if !literal.is_empty() {
            for key in [WILDCARD, name] {
                if let Some(v) = literal.get(key) {
                    if visit(v) {
                        return false;
                    }
                }
            }
        }
        if !prefixed.is_empty() {
            for (end, _) in name.char_indices().skip(1).chain([(name.len(), ' ')]) {
                if let Some(v) = prefixed.get(&name[..end]) {
                    if visit(v) {
                        return false;
                    }
                }
            }
        }
        if !found {
            return allow_everyone;
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::super::acl::Permission::{Allow, Deny};
    use super::*;
    use Operation::*;
    use PatternType::{Literal, Prefixed};
    use ResourceType::*;

    fn entry(principal: &str, host: &str, op: Operation, perm: Permission) -> AclEntry {
        AclEntry {
            principal: principal.into(),
            host: host.into(),
            operation: op,
            permission: perm,
        }
    }

    fn cache(acls: &[(ResourceType, &str, PatternType, AclEntry)]) -> AclCache {
        let mut by: BTreeMap<ResourcePattern, VersionedAcls> = BTreeMap::new();
        for (rt, name, pt, e) in acls {
            by.entry(ResourcePattern::new(*rt, *name, *pt))
                .or_default()
                .acls
                .insert(e.clone());
        }
        let mut c = AclCache::default();
        for (p, v) in by {
            c.set(p, v);
        }
        c
    }

    const ALICE: &str = "User:alice";
    const BOB: &str = "User:bob";
    const H1: &str = "192.168.0.1";
    const H2: &str = "192.168.0.2";

    fn check(
        c: &AclCache,
        who: &str,
        host: &str,
        op: Operation,
        rt: ResourceType,
        name: &str,
    ) -> bool {
        c.authorize(who, host, op, rt, name, false)
    }

    /// Cases from Kafka's `AclAuthorizerTest` (testAuthorizeWithEmptyResourceName,
    /// testDenyTakesPrecedence, testAllowAllAccess, testSuperUserHasAccess is in mod.rs,
    /// testWildCardAcls, testPrefixAcls, testTopicAcl ...), restated as a table.
    #[test]
    fn kafka_topic_acl_table() {
        let c = cache(&[
            (Topic, "t", Literal, entry(ALICE, H1, Read, Allow)),
            (Topic, "t", Literal, entry(ALICE, H1, Write, Allow)),
            (Topic, "t", Literal, entry(ALICE, H2, Read, Deny)),
            (Topic, "t", Literal, entry(BOB, "*", Describe, Allow)),
            (Topic, "t", Literal, entry("User:*", "*", Write, Deny)),
            (Topic, "t", Literal, entry("User:*", H2, Describe, Allow)),
        ]);
        let cases = [
            (ALICE, H1, Read, true),
            (ALICE, H1, Describe, true), // implied by READ
            (ALICE, H1, Write, false),   // DENY User:* wins
            (ALICE, H2, Read, false),    // DENY from H2
            (ALICE, H2, Describe, true), // User:* from H2
            (BOB, H1, Describe, true),
            (BOB, H1, Read, false),
            (BOB, H2, Write, false),
            ("User:carol", H1, Describe, false),
            ("User:carol", H2, Describe, true),
            (ALICE, "10.0.0.1", Read, false),
        ];
        for (who, host, op, want) in cases {
            assert_eq!(
                check(&c, who, host, op, Topic, "t"),
                want,
                "{who} {host} {op:?}"
            );
        }
        // Other resources have no ACLs: denied unless allow.everyone.if.no.acl.found.
        assert!(!check(&c, ALICE, H1, Read, Topic, "other"));
        assert!(c.authorize(ALICE, H1, Read, Topic, "other", true));
        // ...but a resource with ACLs that do not match is denied even then.
        assert!(!c.authorize("User:carol", H1, Read, Topic, "t", true));
        // Same name, other resource type: independent.
        assert!(!check(&c, ALICE, H1, Read, Group, "t"));
    }

    #[test]
    fn deny_wins_and_all_operation() {
        let c = cache(&[
            (Topic, "t", Literal, entry(ALICE, "*", All, Allow)),
            (Topic, "t", Literal, entry(ALICE, "*", Alter, Deny)),
        ]);
        assert!(check(&c, ALICE, H1, Read, Topic, "t"));
        assert!(check(&c, ALICE, H1, Describe, Topic, "t"));
        assert!(!check(&c, ALICE, H1, Alter, Topic, "t"));
        let c = cache(&[
            (Topic, "t", Literal, entry(ALICE, "*", Read, Allow)),
            (Topic, "t", Literal, entry(ALICE, "*", All, Deny)),
        ]);
        assert!(!check(&c, ALICE, H1, Read, Topic, "t"));
        // DENY of READ does not deny DESCRIBE (no implication for denials).
        let c = cache(&[
            (Topic, "t", Literal, entry(ALICE, "*", Write, Allow)),
            (Topic, "t", Literal, entry(ALICE, "*", Read, Deny)),
        ]);
        assert!(check(&c, ALICE, H1, Describe, Topic, "t"));
        // ALTER_CONFIGS implies DESCRIBE_CONFIGS, ALTER does not.
        let c = cache(&[(
            Cluster,
            "kafka-cluster",
            Literal,
            entry(ALICE, "*", AlterConfigs, Allow),
        )]);
        assert!(check(
            &c,
            ALICE,
            H1,
            DescribeConfigs,
            Cluster,
            "kafka-cluster"
        ));
        assert!(!check(&c, ALICE, H1, Describe, Cluster, "kafka-cluster"));
    }

    #[test]
    fn wildcard_and_prefixed_resources() {
        let c = cache(&[
            (Topic, "*", Literal, entry(ALICE, "*", Read, Allow)),
            (Topic, "pay", Prefixed, entry(BOB, "*", Write, Allow)),
            (
                Topic,
                "payments.secret",
                Prefixed,
                entry(BOB, "*", Write, Deny),
            ),
            (Topic, "pay", Literal, entry("User:carol", "*", Read, Allow)),
        ]);
        assert!(check(&c, ALICE, H1, Read, Topic, "anything"));
        assert!(check(&c, ALICE, H1, Read, Topic, "payments"));
        assert!(check(&c, BOB, H1, Write, Topic, "payments"));
        assert!(check(&c, BOB, H1, Write, Topic, "pay"));
        assert!(!check(&c, BOB, H1, Write, Topic, "pa"));
        assert!(!check(&c, BOB, H1, Write, Topic, "payments.secret.x"));
        assert!(!check(&c, BOB, H1, Write, Topic, "other"));
        assert!(check(&c, "User:carol", H1, Read, Topic, "pay"));
        assert!(!check(&c, "User:carol", H1, Read, Topic, "payments"));
        // A prefixed pattern never matches a shorter name, and "*" is not a prefix wildcard.
        let c = cache(&[(Topic, "*", Prefixed, entry(ALICE, "*", Read, Allow))]);
        assert!(!check(&c, ALICE, H1, Read, Topic, "t"));
        assert!(check(&c, ALICE, H1, Read, Topic, "*x"));
        // Multi-byte names: prefixes are taken at character boundaries.
        let c = cache(&[(Group, "grüße", Prefixed, entry(ALICE, "*", Read, Allow))]);
        assert!(check(&c, ALICE, H1, Read, Group, "grüße-1"));
        assert!(!check(&c, ALICE, H1, Read, Group, "grü"));
    }

    #[test]
    fn wildcard_principal_and_host() {
        let c = cache(&[(
            Group,
            "g",
            Literal,
            entry(WILDCARD_PRINCIPAL, "*", Read, Allow),
        )]);
        assert!(check(&c, ALICE, H1, Read, Group, "g"));
        assert!(check(&c, "User:ANONYMOUS", H2, Read, Group, "g"));
        assert!(!check(&c, ALICE, H1, Delete, Group, "g"));
        // Principal types are part of the name: Group:alice is not User:alice.
        let c = cache(&[(Group, "g", Literal, entry("Group:alice", "*", Read, Allow))]);
        assert!(!check(&c, ALICE, H1, Read, Group, "g"));
    }

    #[test]
    fn set_replaces_and_removes() {
        let mut c = cache(&[(Topic, "t", Literal, entry(ALICE, "*", Read, Allow))]);
        let p = ResourcePattern::new(Topic, "t", Literal);
        assert_eq!(c.len(), 1);
        c.set(p.clone(), VersionedAcls::default());
        assert!(c.is_empty());
        assert!(!check(&c, ALICE, H1, Read, Topic, "t"));
        assert!(c.authorize(ALICE, H1, Read, Topic, "t", true));
    }

    #[test]
    fn describe_filters() {
        let c = cache(&[
            (Topic, "t", Literal, entry(ALICE, "*", Read, Allow)),
            (Topic, "t", Prefixed, entry(BOB, "*", Write, Allow)),
            (Group, "g", Literal, entry(ALICE, "*", Read, Allow)),
        ]);
        let f = |rt: i8, name: Option<&str>, pt: i8, principal: Option<&str>| {
            c.acls(&AclBindingFilter::from_wire(
                rt, name, pt, principal, None, 1, 1,
            ))
            .len()
        };
        assert_eq!(f(1, None, 1, None), 3);
        assert_eq!(f(1, None, 1, Some(ALICE)), 2);
        assert_eq!(f(2, Some("t"), 1, None), 2);
        assert_eq!(f(2, Some("t"), 3, None), 1);
        assert_eq!(f(2, Some("tx"), 2, None), 1);
        assert_eq!(f(2, None, 4, None), 1);
    }
}
