//! What the injector needs to know of a cluster and where it writes what it did, as traits:
//! this crate knows nothing of workloads, clients or recorders (shared/DESIGN.md section 1).
//! `harness run` implements [`ClusterView`] over its clients' status call and [`Record`] over
//! its history recorder.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;

use history::nemesis::NemesisEvent;

/// A boxed, sendable future: what the traits' methods return, so that they can be called
/// through `dyn`.
pub type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The fields of a node's status (`/health`, shared/DESIGN.md section 3) that faults aimed at
/// leaders or voters use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StatusField {
    /// `leader`, `follower`, `candidate`, `none`.
    Role,
    /// The Raft term or Paxos ballot round.
    Term,
    /// The leader's name.
    Leader,
    /// Whom the node voted for in its term.
    VotedFor,
    /// The commit index.
    Commit,
    /// The index of the last entry of the log.
    LastIndex,
}

impl StatusField {
    pub const ALL: [StatusField; 6] = [
        StatusField::Role,
        StatusField::Term,
        StatusField::Leader,
        StatusField::VotedFor,
        StatusField::Commit,
        StatusField::LastIndex,
    ];

    /// The field's name in `/health`.
    pub fn name(self) -> &'static str {
        match self {
            StatusField::Role => "role",
            StatusField::Term => "term",
            StatusField::Leader => "leader",
            StatusField::VotedFor => "voted_for",
            StatusField::Commit => "commit",
            StatusField::LastIndex => "last_index",
        }
    }
}

impl fmt::Display for StatusField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StatusField {
    type Err = String;

    fn from_str(s: &str) -> Result<StatusField, String> {
        StatusField::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown status field '{s}'; the fields are: {}",
                    StatusField::ALL.map(StatusField::name).join(", ")
                )
            })
    }
}

/// What a node says of itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node believes it leads. A node cut off from the others may still believe so: prefer
    /// the highest `term` among several that say yes.
    pub leader: bool,
    /// The node says it is running for leader; false when the system does not tell.
    pub campaigning: bool,
    /// The node's current term (0 when it did not say).
    pub term: u64,
    /// Whom the node voted for in its current term; None when it has not voted or does not say.
    pub voted_for: Option<String>,
    /// The index of the last entry in the node's log, when it says.
    pub last_index: Option<u64>,
    /// The node's commit index, when it says.
    pub commit: Option<u64>,
}

/// The cluster as the injector sees it: each node's status, asked in the system's own
/// protocol.
pub trait ClusterView: Send + Sync {
    /// `node`'s status; None when it does not answer or its answer does not parse. Must return
    /// within a bounded time: faults probe every node while other faults are going on.
    fn status<'a>(&'a self, node: &'a str) -> Boxed<'a, Option<NodeStatus>>;

    /// The status fields `node`'s status call gives (present, even if null); None when it
    /// does not answer.
    fn fields<'a>(&'a self, node: &'a str) -> Boxed<'a, Option<BTreeSet<StatusField>>>;
}

/// Where the injector writes what it did: the run's history.
pub trait Record: Send + Sync {
    fn nemesis(&self, event: NemesisEvent);
}
