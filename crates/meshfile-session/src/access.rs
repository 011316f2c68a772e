//! Access policies (session language 0.3.10, "Access Control" and "Governance"): who may
//! read a session, update it, or create sessions below it.
//!
//! An entry is `CREATOR`, `ANY`, `NONE`, a client key hash (an mTLS identity), `signer:` a
//! public key, or a threshold over nested entries: `require-all: [...]` or
//! `require-at-least-N: [...]`. A list allows what any one of its entries allows. Signers and
//! thresholds are allowed in `update` and `create_sessions` only: a signature is an approval
//! of a change, never a way to read.

use meshfile_yaml::{Node, Style, Value};

use crate::key_hash;
use crate::signer::PublicKey;

/// How deep thresholds may nest; deeper policies are refused, not evaluated.
pub const MAX_DEPTH: usize = 8;
/// Entries a policy may hold in all, nested ones included.
pub const MAX_ENTRIES: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Creator,
    Any,
    None,
    /// A client key hash, lower-case hex.
    KeyHash(String),
    Signer(PublicKey),
    RequireAll(Vec<Entry>),
    RequireAtLeast(usize, Vec<Entry>),
}

/// The operations an access policy governs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Read,
    Update,
    CreateSessions,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Update => "update",
            Operation::CreateSessions => "create_sessions",
        }
    }
}

/// Who asks: the mTLS client (its key hash), and the signers whose signatures of the
/// uploaded session verified (none for an unsigned upload). Both count: an entry naming the
/// client is met by the connection, one naming a signer only by a signature.
#[derive(Clone, Copy, Debug)]
pub struct Principals<'a> {
    pub client: Option<&'a str>,
    pub signers: &'a [PublicKey],
}

impl<'a> Principals<'a> {
    /// An unsigned request by a client.
    pub fn client(key_hash: &'a str) -> Principals<'a> {
        Principals {
            client: Some(key_hash),
            signers: &[],
        }
    }

    /// Signatures alone, no client.
    pub fn signers(signers: &'a [PublicKey]) -> Principals<'a> {
        Principals {
            client: None,
            signers,
        }
    }

    fn is_client(&self, key_hash: &str) -> bool {
        self.client
            .is_some_and(|c| c.eq_ignore_ascii_case(key_hash))
    }
}

/// Who created a session: a client by key hash, or the signer of its first version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Creator {
    Client(String),
    Signer(PublicKey),
}

impl Creator {
    /// The form the store keeps: the key hash, or `signer:` and the key in its short form.
    pub fn to_record(&self) -> String {
        match self {
            Creator::Client(hash) => hash.clone(),
            Creator::Signer(key) => format!("signer:{}", key.short_name()),
        }
    }

    pub fn from_record(text: &str) -> Creator {
        match text.strip_prefix("signer:").map(PublicKey::parse) {
            Some(Ok(key)) => Creator::Signer(key),
            _ => Creator::Client(text.to_owned()),
        }
    }
}

impl Entry {
    /// Whether this entry allows `who` to do `op` on a session created by `creator`.
    pub fn allows(&self, who: Principals<'_>, creator: &Creator, op: Operation) -> bool {
        match self {
            Entry::Any => true,
            Entry::None => false,
            Entry::Creator => match creator {
                Creator::Client(c) => who.is_client(c),
                // A signer creator never reads through `CREATOR` (SCONE 5.8).
                Creator::Signer(c) => op != Operation::Read && who.signers.contains(c),
            },
            Entry::KeyHash(hash) => who.is_client(hash),
            Entry::Signer(key) => op != Operation::Read && who.signers.contains(key),
            Entry::RequireAll(children) => children.iter().all(|c| c.allows(who, creator, op)),
            Entry::RequireAtLeast(n, children) => {
                children
                    .iter()
                    .filter(|c| c.allows(who, creator, op))
                    .count()
                    >= *n
            }
        }
    }

    /// The signers named in this entry, nested ones included, in order.
    pub fn signers(&self) -> Vec<&PublicKey> {
        match self {
            Entry::Signer(key) => vec![key],
            Entry::RequireAll(children) | Entry::RequireAtLeast(_, children) => {
                children.iter().flat_map(Entry::signers).collect()
            }
            _ => Vec::new(),
        }
    }

    /// What still has to sign for this entry to allow `op`, in words; `None` when it allows.
    pub fn unmet(&self, who: Principals<'_>, creator: &Creator, op: Operation) -> Option<String> {
        if self.allows(who, creator, op) {
            return None;
        }
        Some(match self {
            Entry::Signer(key) => format!("a signature by {}", key.short_name()),
            Entry::RequireAll(children) => {
                let missing: Vec<String> = (children.iter())
                    .filter_map(|c| c.unmet(who, creator, op))
                    .collect();
                format!("all of: {}", missing.join("; "))
            }
            Entry::RequireAtLeast(n, children) => {
                let have = (children.iter())
                    .filter(|c| c.allows(who, creator, op))
                    .count();
                let missing: Vec<String> = (children.iter())
                    .filter_map(|c| c.unmet(who, creator, op))
                    .collect();
                format!(
                    "{} more of {n} required ({have} present), from: {}",
                    n - have,
                    missing.join("; ")
                )
            }
            other => format!("`{}`", other.describe()),
        })
    }

    fn describe(&self) -> String {
        match self {
            Entry::Creator => "CREATOR".into(),
            Entry::Any => "ANY".into(),
            Entry::None => "NONE".into(),
            Entry::KeyHash(hash) => hash.clone(),
            Entry::Signer(key) => format!("signer {}", key.short_name()),
            Entry::RequireAll(_) => "require-all".into(),
            Entry::RequireAtLeast(n, _) => format!("require-at-least-{n}"),
        }
    }

    pub fn to_node(&self) -> Node {
        match self {
            // SCONE's forms: a key hash in Base58Check, an Ed25519 signer in Base58Check, a
            // P-384 signer (which has no such form) as its PEM.
            Entry::KeyHash(hash) => Node::scalar(
                key_hash::base58check(hash).unwrap_or_else(|| hash.clone()),
                Style::Plain,
            ),
            Entry::Creator | Entry::Any | Entry::None => {
                Node::scalar(self.describe(), Style::Plain)
            }
            Entry::Signer(key) => Node::mapping(vec![(
                "signer",
                match key.to_base58() {
                    Some(text) => Node::scalar(text, Style::Plain),
                    None => Node::scalar(key.to_pem(), Style::Literal),
                },
            )]),
            Entry::RequireAll(children) | Entry::RequireAtLeast(_, children) => {
                Node::mapping(vec![(
                    self.describe(),
                    Node::sequence(children.iter().map(Entry::to_node).collect()),
                )])
            }
        }
    }
}

/// Whether a list of entries allows the operation: any one entry does.
pub fn list_allows(
    entries: &[Entry],
    who: Principals<'_>,
    creator: &Creator,
    op: Operation,
) -> bool {
    entries.iter().any(|e| e.allows(who, creator, op))
}

/// A problem in an access policy: where (a path below the policy) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

/// Reads the entries of one operation's list, checking the session language's rules.
pub fn parse_list(node: &Node, op: Operation) -> Result<Vec<Entry>, Problem> {
    let mut count = 0;
    parse_entries(node, op, op.as_str(), 0, &mut count)
}

fn parse_entries(
    node: &Node,
    op: Operation,
    path: &str,
    depth: usize,
    count: &mut usize,
) -> Result<Vec<Entry>, Problem> {
    let problem = |path: &str, message: String| Problem {
        path: path.to_owned(),
        message,
    };
    let Value::Sequence(items) = &node.value else {
        return Err(problem(
            path,
            "an access list is a sequence of entries".into(),
        ));
    };
    if depth > MAX_DEPTH {
        return Err(problem(
            path,
            format!("thresholds nest at most {MAX_DEPTH} deep"),
        ));
    }
    let mut entries = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("{path}[{i}]");
        *count += 1;
        if *count > MAX_ENTRIES {
            return Err(problem(
                &path,
                format!("an access policy holds at most {MAX_ENTRIES} entries"),
            ));
        }
        entries.push(parse_entry(item, op, &path, depth, count)?);
    }
    Ok(entries)
}

fn parse_entry(
    item: &Node,
    op: Operation,
    path: &str,
    depth: usize,
    count: &mut usize,
) -> Result<Entry, Problem> {
    let problem = |message: String| Problem {
        path: path.to_owned(),
        message,
    };
    let not_in_read = |what: &str| {
        problem(format!(
            "{what} is not allowed under `read`: a signature approves a change, it never grants reading (allowed in `update` and `create_sessions`)"
        ))
    };
    match &item.value {
        Value::Scalar { text, .. } => match text.as_ref() {
            "CREATOR" => Ok(Entry::Creator),
            "ANY" => Ok(Entry::Any),
            "NONE" => Ok(Entry::None),
            other => key_hash::parse(other).map(Entry::KeyHash).map_err(|why| {
                problem(format!(
                    "{why}; an entry is CREATOR, ANY, NONE, a client key hash, `signer:`, `require-all:` or `require-at-least-N:`"
                ))
            }),
        },
        Value::Mapping(fields) if fields.len() == 1 => {
            let key = fields[0].key_text();
            let value = &fields[0].value;
            let inner = format!("{path}.{key}");
            if key == "signer" {
                if op == Operation::Read {
                    return Err(not_in_read("`signer`"));
                }
                let text = value
                    .as_scalar()
                    .ok_or_else(|| problem("`signer` holds a public key as text".into()))?;
                return PublicKey::parse(text)
                    .map(Entry::Signer)
                    .map_err(|why| Problem {
                        path: inner,
                        message: why.to_string(),
                    });
            }
            let threshold = if key == "require-all" {
                None
            } else if let Some(n) = key.strip_prefix("require-at-least-") {
                Some(n.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    problem(format!(
                        "`{key}`: N in `require-at-least-N` is a whole number of at least 1"
                    ))
                })?)
            } else {
                return Err(problem(format!(
                    "unknown access entry `{key}`; expected `signer`, `require-all` or `require-at-least-N`"
                )));
            };
            if op == Operation::Read {
                return Err(not_in_read(&format!("`{key}`")));
            }
            let children = parse_entries(value, op, &inner, depth + 1, count)?;
            if children.is_empty() {
                return Err(problem(format!("`{key}` needs at least one entry")));
            }
            match threshold {
                None => Ok(Entry::RequireAll(children)),
                Some(n) if n > children.len() => Err(problem(format!(
                    "`{key}` requires {n} of {} entries: it can never be met",
                    children.len()
                ))),
                Some(n) => Ok(Entry::RequireAtLeast(n, children)),
            }
        }
        _ => Err(problem(
            "an access entry is a word (CREATOR, ANY, NONE), a key hash, or a mapping with one key"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshfile_yaml::Limits;

    fn key(byte: u8) -> PublicKey {
        PublicKey::Ed25519([byte; 32])
    }

    fn list(yaml: &str, op: Operation) -> Result<Vec<Entry>, Problem> {
        let node = meshfile_yaml::parse(yaml, &Limits::default()).expect("yaml");
        parse_list(&node, op)
    }

    #[test]
    fn thresholds_count_signers() {
        let (a, b, c) = (key(1), key(2), key(3));
        let policy = vec![Entry::RequireAtLeast(
            2,
            vec![
                Entry::Signer(a.clone()),
                Entry::Signer(b.clone()),
                Entry::Signer(c.clone()),
            ],
        )];
        let creator = Creator::Signer(a.clone());
        let allows = |signers: &[PublicKey]| {
            list_allows(
                &policy,
                Principals::signers(signers),
                &creator,
                Operation::Update,
            )
        };
        assert!(!allows(std::slice::from_ref(&a)));
        assert!(allows(&[a.clone(), c.clone()]));
        assert!(!allows(&[]));
        let unmet = policy[0]
            .unmet(
                Principals::signers(std::slice::from_ref(&b)),
                &creator,
                Operation::Update,
            )
            .expect("unmet");
        assert!(
            unmet.starts_with("1 more of 2 required (1 present)"),
            "{unmet}"
        );
        assert!(unmet.contains(&a.short_name()) && !unmet.contains(&b.short_name()));
        // A client certificate is no signature.
        assert!(!list_allows(
            &policy,
            Principals::client("ab"),
            &creator,
            Operation::Update
        ));
    }

    #[test]
    fn signers_never_read() {
        let a = key(1);
        let creator = Creator::Signer(a.clone());
        let who = Principals::signers(std::slice::from_ref(&a));
        assert!(Entry::Creator.allows(who, &creator, Operation::Update));
        assert!(!Entry::Creator.allows(who, &creator, Operation::Read));
        assert!(
            list("[{signer: x}]", Operation::Read)
                .is_err_and(|p| p.message.contains("never grants reading"))
        );
        assert!(list("[{require-all: [ANY]}]", Operation::Read).is_err());
    }

    #[test]
    fn parses_and_writes_the_language() {
        let pem = key(7).to_pem();
        let yaml = format!(
            "- CREATOR\n- require-at-least-1:\n    - signer: {:?}\n    - require-all: [ANY, NONE]\n",
            pem
        );
        let entries = list(&yaml, Operation::Update).expect("valid");
        assert_eq!(entries.len(), 2);
        let written = meshfile_yaml::emit(&Node::sequence(
            entries.iter().map(Entry::to_node).collect(),
        ));
        assert_eq!(list(&written, Operation::Update), Ok(entries));
    }

    #[test]
    fn refuses_thresholds_that_cannot_hold() {
        let three = list("[{require-at-least-3: [ANY, ANY]}]", Operation::Update);
        assert!(three.is_err_and(|p| p.message.contains("never be met") && p.path == "update[0]"));
        assert!(list("[{require-at-least-0: [ANY]}]", Operation::Update).is_err());
        assert!(list("[{require-all: []}]", Operation::Update).is_err());
        assert!(
            list("[{signer: nonsense}]", Operation::Update)
                .is_err_and(|p| p.path == "update[0].signer")
        );
        assert!(list("[WHO]", Operation::Update).is_err());
        let deep = format!("{}[ANY]{}", "[{require-all: ".repeat(12), "}]".repeat(12));
        assert!(list(&deep, Operation::Update).is_err_and(|p| p.message.contains("nest")));
    }
}
