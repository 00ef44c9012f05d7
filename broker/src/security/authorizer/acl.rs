//! ACL bindings and binding filters with the semantics of Kafka's `AclBinding`,
//! `ResourcePatternFilter` and `AccessControlEntryFilter`, plus the names and wire codes of
//! the enums (`SecurityUtils`' PascalCase names in znodes, enum names in notifications).

use super::{Operation, ResourceType};

impl ResourceType {
    pub const ALL: [ResourceType; 6] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
        ResourceType::DelegationToken,
        ResourceType::User,
    ];

    /// Index into per-type tables.
    pub(crate) fn index(self) -> usize {
        self.code() as usize - 2
    }

    /// A concrete type from its wire code (2..=7).
    pub fn from_code(code: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// Name used in znode paths (`SecurityUtils.resourceTypeName`): `Topic`, `TransactionalId`.
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Topic => "Topic",
            ResourceType::Group => "Group",
            ResourceType::Cluster => "Cluster",
            ResourceType::TransactionalId => "TransactionalId",
            ResourceType::DelegationToken => "DelegationToken",
            ResourceType::User => "User",
        }
    }

    /// Java enum name, used in change notifications: `TOPIC`, `TRANSACTIONAL_ID`.
    pub fn enum_name(self) -> &'static str {
        match self {
            ResourceType::Topic => "TOPIC",
            ResourceType::Group => "GROUP",
            ResourceType::Cluster => "CLUSTER",
            ResourceType::TransactionalId => "TRANSACTIONAL_ID",
            ResourceType::DelegationToken => "DELEGATION_TOKEN",
            ResourceType::User => "USER",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    pub fn from_enum_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.enum_name() == name)
    }
}

impl Operation {
    pub const ALL_OPS: [Operation; 13] = [
        Operation::All,
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::Describe,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
        Operation::CreateTokens,
        Operation::DescribeTokens,
    ];

    /// A concrete operation from its wire code (2..=14).
    pub fn from_code(code: i8) -> Option<Self> {
        Self::ALL_OPS.into_iter().find(|o| o.code() == code)
    }

    /// PascalCase name stored in ACL znodes (`DescribeConfigs`).
    pub fn name(self) -> &'static str {
        match self {
            Operation::All => "All",
            Operation::Read => "Read",
            Operation::Write => "Write",
            Operation::Create => "Create",
            Operation::Delete => "Delete",
            Operation::Alter => "Alter",
            Operation::Describe => "Describe",
            Operation::ClusterAction => "ClusterAction",
            Operation::DescribeConfigs => "DescribeConfigs",
            Operation::AlterConfigs => "AlterConfigs",
            Operation::IdempotentWrite => "IdempotentWrite",
            Operation::CreateTokens => "CreateTokens",
            Operation::DescribeTokens => "DescribeTokens",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL_OPS.into_iter().find(|o| o.name() == name)
    }

    /// Does an ALLOW ACL for `self` grant `requested`? ALL grants everything; READ, WRITE,
    /// DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS.
    pub fn allow_grants(self, requested: Operation) -> bool {
        self == requested
            || self == Operation::All
            || match requested {
                Operation::Describe => matches!(
                    self,
                    Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
                ),
                Operation::DescribeConfigs => self == Operation::AlterConfigs,
                _ => false,
            }
    }
}

/// Concrete resource pattern types (the stores).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PatternType {
    Literal,
    Prefixed,
}

impl PatternType {
    pub fn code(self) -> i8 {
        match self {
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }

    pub fn store(self) -> samsa_common::zk::acl::AclStore {
        match self {
            PatternType::Literal => samsa_common::zk::acl::AclStore::Literal,
            PatternType::Prefixed => samsa_common::zk::acl::AclStore::Prefixed,
        }
    }
}

/// ALLOW or DENY.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    Deny,
    Allow,
}

impl Permission {
    pub fn code(self) -> i8 {
        match self {
            Permission::Deny => 2,
            Permission::Allow => 3,
        }
    }

    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            2 => Some(Permission::Deny),
            3 => Some(Permission::Allow),
            _ => None,
        }
    }

    /// `Allow` / `Deny` as stored; read case-insensitively, as `AclPermissionType.fromString`.
    pub fn name(self) -> &'static str {
        match self {
            Permission::Deny => "Deny",
            Permission::Allow => "Allow",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("allow") {
            Some(Permission::Allow)
        } else if name.eq_ignore_ascii_case("deny") {
            Some(Permission::Deny)
        } else {
            None
        }
    }
}

/// The `*` resource name, host and principal name.
pub const WILDCARD: &str = "*";
/// `User:*`.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// A resource pattern (`ResourcePattern`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourcePattern {
    pub resource_type: ResourceType,
    pub pattern_type: PatternType,
    pub name: String,
}

impl ResourcePattern {
    pub fn new(
        resource_type: ResourceType,
        name: impl Into<String>,
        pattern_type: PatternType,
    ) -> Self {
        Self {
            resource_type,
            pattern_type,
            name: name.into(),
        }
    }
}

/// An access control entry (`AccessControlEntry`): compared as Kafka compares them, by the
/// principal and host strings, operation and permission.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclEntry {
    pub principal: String,
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclEntry {
    pub fn to_json(&self) -> samsa_common::zk::acl::AclJson {
        samsa_common::zk::acl::AclJson {
            principal: self.principal.clone(),
            permission_type: self.permission.name().to_string(),
            operation: self.operation.name().to_string(),
            host: self.host.clone(),
        }
    }

    /// `None` for an entry naming an operation or permission this broker does not know.
    pub fn from_json(j: &samsa_common::zk::acl::AclJson) -> Option<Self> {
        Some(Self {
            principal: j.principal.clone(),
            host: j.host.clone(),
            operation: Operation::from_name(&j.operation)?,
            permission: Permission::from_name(&j.permission_type)?,
        })
    }
}

/// A pattern and an entry (`AclBinding`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    pub pattern: ResourcePattern,
    pub entry: AclEntry,
}

/// A filter field over a code enum: ANY, a concrete value, or UNKNOWN (code 0 or a code this
/// version does not know), which matches nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter<T> {
    Any,
    Is(T),
    Unknown,
}

impl<T: PartialEq + Copy> Filter<T> {
    fn from_code(code: i8, concrete: impl Fn(i8) -> Option<T>) -> Self {
        match code {
            1 => Filter::Any,
            c => concrete(c).map_or(Filter::Unknown, Filter::Is),
        }
    }

    fn matches(&self, v: T) -> bool {
        match self {
            Filter::Any => true,
            Filter::Is(x) => *x == v,
            Filter::Unknown => false,
        }
    }
}

/// Pattern-type filter: ANY, MATCH (everything that would apply to the named resource),
/// a concrete type, or UNKNOWN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternFilter {
    Any,
    Match,
    Is(PatternType),
    Unknown,
}

impl PatternFilter {
    pub fn from_code(code: i8) -> Self {
        match code {
            1 => PatternFilter::Any,
            2 => PatternFilter::Match,
            3 => PatternFilter::Is(PatternType::Literal),
            4 => PatternFilter::Is(PatternType::Prefixed),
            _ => PatternFilter::Unknown,
        }
    }
}

/// `AclBindingFilter`: `None` strings match anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclBindingFilter {
    pub resource_type: Filter<ResourceType>,
    pub name: Option<String>,
    pub pattern: PatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Filter<Operation>,
    pub permission: Filter<Permission>,
}

impl AclBindingFilter {
    /// From the wire fields of DescribeAcls / DeleteAcls.
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        name: Option<&str>,
        pattern_type: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Self {
        Self {
            resource_type: Filter::from_code(resource_type, ResourceType::from_code),
            name: name.map(str::to_string),
            pattern: PatternFilter::from_code(pattern_type),
            principal: principal.map(str::to_string),
            host: host.map(str::to_string),
            operation: Filter::from_code(operation, Operation::from_code),
            permission: Filter::from_code(permission, Permission::from_code),
        }
    }

    /// Any field UNKNOWN (`AclBindingFilter.isUnknown`).
    pub fn is_unknown(&self) -> bool {
        self.resource_type == Filter::Unknown
            || self.pattern == PatternFilter::Unknown
            || self.operation == Filter::Unknown
            || self.permission == Filter::Unknown
    }

    /// `ResourcePatternFilter.matches`.
    pub fn matches_pattern(&self, p: &ResourcePattern) -> bool {
        if !self.resource_type.matches(p.resource_type) {
            return false;
        }
        match self.pattern {
            PatternFilter::Unknown => return false,
            PatternFilter::Is(t) if t != p.pattern_type => return false,
            _ => {}
        }
        let Some(name) = &self.name else {
            return true;
        };
        match self.pattern {
            PatternFilter::Any | PatternFilter::Is(_) => *name == p.name,
            // MATCH: every pattern that applies to the named resource.
            PatternFilter::Match | PatternFilter::Unknown => match p.pattern_type {
                PatternType::Literal => *name == p.name || p.name == WILDCARD,
                PatternType::Prefixed => name.starts_with(p.name.as_str()),
            },
        }
    }

    /// `AccessControlEntryFilter.matches`: exact strings, no wildcard expansion.
    pub fn matches_entry(&self, e: &AclEntry) -> bool {
        self.principal.as_ref().is_none_or(|p| *p == e.principal)
            && self.host.as_ref().is_none_or(|h| *h == e.host)
            && self.operation.matches(e.operation)
            && self.permission.matches(e.permission)
    }

    /// The patterns this filter names exactly (`matchesAtMostOne` + `filterToResources`):
    /// a concrete type and name with a LITERAL, PREFIXED or ANY pattern type; empty otherwise.
    pub fn exact_patterns(&self) -> Vec<ResourcePattern> {
        let (Filter::Is(rt), Some(name)) = (self.resource_type, &self.name) else {
            return Vec::new();
        };
        match self.pattern {
            PatternFilter::Is(t) => vec![ResourcePattern::new(rt, name.clone(), t)],
            PatternFilter::Any => vec![
                ResourcePattern::new(rt, name.clone(), PatternType::Literal),
                ResourcePattern::new(rt, name.clone(), PatternType::Prefixed),
            ],
            PatternFilter::Match | PatternFilter::Unknown => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(rt: i8, name: Option<&str>, pt: i8) -> AclBindingFilter {
        AclBindingFilter::from_wire(rt, name, pt, None, None, 1, 1)
    }

    #[test]
    fn codes_and_names_round_trip() {
        for t in ResourceType::ALL {
            assert_eq!(ResourceType::from_code(t.code()), Some(t));
            assert_eq!(ResourceType::from_name(t.name()), Some(t));
            assert_eq!(ResourceType::from_enum_name(t.enum_name()), Some(t));
        }
        for o in Operation::ALL_OPS {
            assert_eq!(Operation::from_code(o.code()), Some(o));
            assert_eq!(Operation::from_name(o.name()), Some(o));
        }
        assert_eq!(Operation::from_code(0), None);
        assert_eq!(Operation::from_code(1), None);
        assert_eq!(Permission::from_name("ALLOW"), Some(Permission::Allow));
        assert_eq!(Operation::from_name("READ"), None, "names are PascalCase");
    }

    #[test]
    fn implied_operations() {
        use Operation::*;
        for granted in [Read, Write, Delete, Alter, All, Describe] {
            assert!(granted.allow_grants(Describe), "{granted:?}");
        }
        for granted in [
            Create,
            ClusterAction,
            AlterConfigs,
            DescribeConfigs,
            IdempotentWrite,
        ] {
            assert!(!granted.allow_grants(Describe), "{granted:?}");
        }
        assert!(AlterConfigs.allow_grants(DescribeConfigs));
        assert!(!Alter.allow_grants(DescribeConfigs));
        assert!(!Read.allow_grants(Write));
        assert!(!Describe.allow_grants(Read));
        assert!(All.allow_grants(IdempotentWrite));
    }

    #[test]
    fn pattern_filters_as_kafka() {
        let lit = ResourcePattern::new(ResourceType::Topic, "foo", PatternType::Literal);
        let wild = ResourcePattern::new(ResourceType::Topic, "*", PatternType::Literal);
        let pre = ResourcePattern::new(ResourceType::Topic, "fo", PatternType::Prefixed);
        let other = ResourcePattern::new(ResourceType::Group, "foo", PatternType::Literal);
        // (filter, matches lit, wild, pre, other)
        let cases = [
            (filter(1, None, 1), [true, true, true, true]),
            (filter(2, None, 1), [true, true, true, false]),
            (filter(2, Some("foo"), 1), [true, false, false, false]),
            (filter(2, Some("foo"), 3), [true, false, false, false]),
            (filter(2, Some("fo"), 4), [false, false, true, false]),
            (filter(2, Some("foo"), 2), [true, true, true, false]),
            (filter(2, Some("f"), 2), [false, true, false, false]),
            (filter(1, Some("foo"), 2), [true, true, true, true]),
            (filter(2, None, 4), [false, false, true, false]),
            (filter(0, None, 1), [false, false, false, false]),
            (filter(99, None, 1), [false, false, false, false]),
            (filter(2, None, 0), [false, false, false, false]),
        ];
        for (f, want) in cases {
            let got = [&lit, &wild, &pre, &other].map(|p| f.matches_pattern(p));
            assert_eq!(got, want, "{f:?}");
        }
        assert!(filter(0, None, 1).is_unknown());
        assert!(filter(2, None, 0).is_unknown());
        assert!(!filter(2, None, 2).is_unknown());
    }

    #[test]
    fn entry_filters_are_exact() {
        let e = AclEntry {
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        };
        let f = |p: Option<&str>, h: Option<&str>, op: i8, perm: i8| {
            AclBindingFilter::from_wire(1, None, 1, p, h, op, perm).matches_entry(&e)
        };
        assert!(f(None, None, 1, 1));
        assert!(f(Some("User:alice"), Some("*"), 3, 3));
        assert!(
            !f(Some("User:*"), None, 1, 1),
            "no wildcard expansion in filters"
        );
        assert!(!f(None, Some("10.0.0.1"), 1, 1));
        assert!(
            !f(None, None, 2, 1),
            "ALL in a filter is the ALL operation, not ANY"
        );
        assert!(!f(None, None, 1, 2));
    }

    #[test]
    fn exact_patterns() {
        assert_eq!(filter(2, Some("t"), 1).exact_patterns().len(), 2);
        assert_eq!(filter(2, Some("t"), 4).exact_patterns().len(), 1);
        assert!(filter(2, Some("t"), 2).exact_patterns().is_empty());
        assert!(filter(1, Some("t"), 3).exact_patterns().is_empty());
        assert!(filter(2, None, 3).exact_patterns().is_empty());
    }
}
