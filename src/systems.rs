//! The systems `harness run` can start, described by system definition files (TOML, DESIGN
//! section 5): how to start node N (a command template with placeholders), which client
//! protocol it speaks, how to tell it is ready, how long it may take to stop, which faults it
//! supports and which planted bugs it knows. The bundled `raft` system is described by the same
//! kind of file (`systems-under-test/raft/raft.toml`, built into the binary), so a bundled
//! system and a user's system take one path.
//!
//! Every mistake in a file is reported with the file, line and column and the field's dotted
//! name: a typo in a field, an unknown placeholder, a missing program, an unknown fault.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use nemesis::{NemesisKind, Staged, StatusField};

/// The bundled systems: name and definition.
const BUNDLED: [(&str, &str); 3] = [
    ("raft", include_str!("../systems-under-test/raft/raft.toml")),
    (
        "paxos",
        include_str!("../systems-under-test/paxos/paxos.toml"),
    ),
    (
        "dynamo",
        include_str!("../systems-under-test/dynamo/dynamo.toml"),
    ),
];

/// Placeholders a node's arguments and environment may use.
pub const PLACEHOLDERS: [&str; 9] = [
    "node",
    "node_index",
    "ip",
    "port",
    "peer_port",
    "data_dir",
    "peers",
    "clock_offset_file",
    "op_timeout_ms",
];

/// Placeholders one entry of `{peers}` may use.
const PEER_PLACEHOLDERS: [&str; 5] = ["node", "node_index", "ip", "port", "peer_port"];

/// How to start and talk to one system's nodes.
#[derive(Clone, Debug)]
pub struct SystemDef {
    pub name: String,
    /// Where the definition came from: `bundled raft` or the file's path.
    pub origin: String,
    /// The program as written; see [`SystemDef::locate_program`].
    pub program: String,
    /// Arguments and environment, with placeholders (see [`PLACEHOLDERS`]).
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The client port (`{port}`) and, for systems that need one, the peer port.
    pub port: u16,
    pub peer_port: Option<u16>,
    /// One entry of `{peers}`; the entries of all nodes are joined with commas.
    pub peer: String,
    /// How the harness talks to the nodes (`client.protocol`, with `client.serializable` for
    /// etcd and `client.isolation` for postgres).
    pub protocol: workloads::Protocol,
    /// GET this path on the client port; 200 with a JSON body means ready. (Not for postgres,
    /// whose nodes are ready when they accept a connection and answer a SELECT.)
    pub ready_path: String,
    pub ready_timeout: Duration,
    /// After SIGTERM, how long a node may take before it is SIGKILLed.
    pub stop_grace: Duration,
    /// The faults this system supports.
    pub faults: Vec<NemesisKind>,
    /// What the system promises (`[consistency] promises`): the checkers of these properties
    /// give the run's verdict; the others only inform.
    pub promises: Vec<String>,
    /// A Maelstrom node whose definition promises nothing is held to what the workload it
    /// runs demands (`workloads::maelstrom::promises`): see [`SystemDef::for_workload`].
    pub promises_of_workload: bool,
    /// Promises it makes only when run with a node argument (`[consistency.with-node-arg]`):
    /// (the argument as `--node-arg` gives it, the promises it adds).
    pub promises_with: Vec<(String, Vec<String>)>,
    /// The workloads it supports (`[workloads] supported`; all of them when not said).
    pub workloads: Vec<&'static workloads::Workload>,
    /// The fields its status call gives (`status.fields`); None when the file does not say,
    /// and then the nodes are asked at run time.
    pub status_fields: Option<Vec<StatusField>>,
    /// The `--bug` names the system accepts, and the argument that switches one on.
    pub bugs: Vec<String>,
    pub bug_flag: Option<String>,
    /// The Cargo package that builds `program`, for bundled systems.
    pub cargo_package: Option<String>,
    /// Printed when the program cannot be found (e.g. "apt-get install etcd-server").
    pub install_hint: Option<String>,
    /// Relative program paths are taken from here (the definition file's folder).
    base_dir: Option<PathBuf>,
    /// Where `node.program` is written, for messages.
    program_at: String,
}

// ----- The file format -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Spanned<String>,
    #[serde(default)]
    #[allow(dead_code)] // for people reading the file; shown nowhere yet
    description: Option<String>,
    node: NodeSection,
    #[serde(default)]
    client: ClientSection,
    #[serde(default)]
    ready: ReadySection,
    #[serde(default)]
    stop: StopSection,
    #[serde(default)]
    faults: FaultsSection,
    consistency: Option<ConsistencySection>,
    #[serde(default)]
    workloads: WorkloadsSection,
    #[serde(default)]
    status: StatusSection,
    #[serde(default)]
    bugs: BugsSection,
    #[serde(default)]
    build: BuildSection,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeSection {
    program: Spanned<String>,
    #[serde(default)]
    args: Vec<Spanned<String>>,
    #[serde(default)]
    env: BTreeMap<String, Spanned<String>>,
    /// Required but for the maelstrom protocol, whose nodes speak over stdin and stdout.
    #[serde(default)]
    port: Option<Spanned<i64>>,
    #[serde(default)]
    peer_port: Option<Spanned<i64>>,
    #[serde(default)]
    peer: Option<Spanned<String>>,
    #[serde(default)]
    install_hint: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ClientSection {
    #[serde(default)]
    protocol: Option<Spanned<String>>,
    #[serde(default)]
    serializable: bool,
    #[serde(default)]
    isolation: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReadySection {
    #[serde(default)]
    path: Option<Spanned<String>>,
    #[serde(default)]
    timeout: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StopSection {
    #[serde(default)]
    grace: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FaultsSection {
    #[serde(default)]
    supported: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencySection {
    promises: Vec<Spanned<String>>,
    /// Promises a node argument adds: `"--session=causal" = ["causal"]`.
    #[serde(default, rename = "with-node-arg")]
    with_node_arg: std::collections::BTreeMap<String, Vec<Spanned<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WorkloadsSection {
    #[serde(default)]
    supported: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StatusSection {
    #[serde(default)]
    fields: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BugsSection {
    #[serde(default)]
    flag: Option<String>,
    #[serde(default)]
    names: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BuildSection {
    #[serde(default)]
    cargo_package: Option<String>,
}

/// `file:line:col` of a byte offset in `text`.
fn place(origin: &str, text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("{origin}:{line}:{col}")
}

/// Every `{name}` in `template`, with its byte offset; an unclosed `{` is an error.
fn placeholders(template: &str) -> Result<Vec<(usize, &str)>, usize> {
    let mut out = Vec::new();
    let mut rest = template;
    let mut base = 0;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err(base + open);
        };
        out.push((base + open, &rest[open + 1..open + close]));
        base += open + close + 1;
        rest = &rest[open + close + 1..];
    }
    Ok(out)
}

/// `node.port` or `node.peer_port`: a TCP port other than 0.
fn tcp_port(v: &Spanned<i64>, field: &str, at: &dyn Fn(usize) -> String) -> Result<u16, String> {
    u16::try_from(*v.get_ref())
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| {
            format!(
                "{}: {field}: {} is not a TCP port (1..=65535)",
                at(v.span().start),
                v.get_ref()
            )
        })
}

/// `faults.supported`, each a known fault; every fault when the file does not say.
fn supported_faults(
    faults: &FaultsSection,
    at: &dyn Fn(usize) -> String,
) -> Result<Vec<NemesisKind>, String> {
    Ok(match &faults.supported {
        None => NemesisKind::KNOWN.to_vec(),
        Some(list) => {
            let mut out = Vec::new();
            for f in list {
                let kind = NemesisKind::parse_list(f.get_ref())
                    .ok()
                    .filter(|k| k.len() == 1)
                    .ok_or_else(|| {
                        format!(
                            "{}: faults.supported: unknown fault '{}'; the faults are: {}",
                            at(f.span().start),
                            f.get_ref(),
                            NemesisKind::KNOWN.map(NemesisKind::name).join(", ")
                        )
                    })?;
                out.extend(kind);
            }
            out.sort();
            out.dedup();
            out
        }
    })
}

/// `client.isolation` of a postgres definition: required, one of the known levels.
fn isolation(
    client: &ClientSection,
    protocol_at: &str,
    at: &dyn Fn(usize) -> String,
) -> Result<workloads::postgres::Isolation, String> {
    let Some(level) = &client.isolation else {
        return Err(format!(
            "{protocol_at}: client.isolation: the postgres protocol needs the isolation level \
             of its transactions: {}",
            workloads::postgres::Isolation::NAMES.join(", ")
        ));
    };
    level
        .get_ref()
        .parse()
        .map_err(|e| format!("{}: client.isolation: {e}", at(level.span().start)))
}

/// `status.fields`, each a known status field; None when the file does not say.
fn status_fields(
    status: &StatusSection,
    at: &dyn Fn(usize) -> String,
) -> Result<Option<Vec<StatusField>>, String> {
    Ok(match &status.fields {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|f| {
                    f.get_ref()
                        .parse::<StatusField>()
                        .map_err(|e| format!("{}: status.fields: {e}", at(f.span().start)))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    })
}

impl SystemDef {
    /// The definition named by `--system`: a bundled name, a path to a `.toml` file, or
    /// `maelstrom:PATH`, a Maelstrom node's program with no definition file.
    pub fn load(system: &str) -> Result<SystemDef, String> {
        if let Some(program) = system.strip_prefix("maelstrom:") {
            return SystemDef::maelstrom(program, system);
        }
        let is_file = system.ends_with(".toml") || system.contains('/');
        if !is_file {
            return match BUNDLED.iter().find(|(n, _)| *n == system) {
                Some((name, text)) => SystemDef::parse(text, &format!("bundled {name}"), None),
                None => Err(format!(
                    "unknown system '{system}'; the systems are: {}, or a definition file \
                     (FILE.toml, see systems-under-test/external/README.md)",
                    bundled_names()
                )),
            };
        }
        let path = Path::new(system);
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the system definition {system}: {e}"))?;
        let dir = path
            .parent()
            .map(|d| {
                if d.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    d.to_path_buf()
                }
            })
            .unwrap_or_else(|| PathBuf::from("."));
        SystemDef::parse(&text, system, Some(dir))
    }

    /// Parses and checks one definition. `origin` names it in messages.
    pub fn parse(text: &str, origin: &str, base_dir: Option<PathBuf>) -> Result<SystemDef, String> {
        let file: File = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map_or_else(|| origin.to_string(), |s| place(origin, text, s.start));
            format!("{at}: {}", e.message().trim_end())
        })?;
        let at = |offset: usize| place(origin, text, offset);
        let span_at = |s: &std::ops::Range<usize>| at(s.start);

        let name = file.name.get_ref().trim().to_string();
        if name.is_empty() || name.contains(['/', ' ']) {
            return Err(format!(
                "{}: name: '{name}' must be a non-empty word (it names run folders)",
                span_at(&file.name.span())
            ));
        }
        let node = file.node;
        let maelstrom = file
            .client
            .protocol
            .as_ref()
            .is_some_and(|p| p.get_ref() == "maelstrom");
        let port = match &node.port {
            Some(p) if maelstrom => {
                return Err(format!(
                    "{}: node.port: a Maelstrom node speaks over stdin and stdout, not a port \
                     (leave node.port out)",
                    span_at(&p.span())
                ))
            }
            Some(p) => tcp_port(p, "node.port", &at)?,
            None if maelstrom => 0,
            None => {
                return Err(format!(
                    "{origin}: node.port is missing: the port the node serves its clients on \
                     ({{port}} in node.args)"
                ))
            }
        };
        let peer_port = match &node.peer_port {
            None => None,
            Some(p) => Some(tcp_port(p, "node.peer_port", &at)?),
        };
        // Placeholders: known names only, and {peer_port} only with node.peer_port.
        let check = |value: &Spanned<String>, field: &str, allowed: &[&str]| {
            check_placeholders(value, field, allowed, peer_port.is_some(), &at)
        };
        let program = node.program.get_ref().trim().to_string();
        if program.is_empty() {
            return Err(format!(
                "{}: node.program: empty",
                span_at(&node.program.span())
            ));
        }
        for (i, a) in node.args.iter().enumerate() {
            check(a, &format!("node.args[{i}]"), &PLACEHOLDERS)?;
        }
        for (k, v) in &node.env {
            check(v, &format!("node.env.{k}"), &PLACEHOLDERS)?;
        }
        let peer = match &node.peer {
            Some(p) => {
                check(p, "node.peer", &PEER_PLACEHOLDERS)?;
                p.get_ref().clone()
            }
            None => "{node}={ip}:{port}".to_string(),
        };
        let (protocol, protocol_at) = match &file.client.protocol {
            Some(p) => (p.get_ref().clone(), span_at(&p.span())),
            None => ("op".to_string(), origin.to_string()),
        };
        let protocol = match protocol.parse::<workloads::Protocol>() {
            Ok(workloads::Protocol::Etcd { .. }) => workloads::Protocol::Etcd {
                serializable: file.client.serializable,
            },
            Ok(_) if file.client.serializable => {
                return Err(format!(
                    "{protocol_at}: client.serializable: only the etcd protocol has serializable \
                     reads; an /op system decides how it serves reads itself"
                ))
            }
            Ok(workloads::Protocol::Postgres { .. }) => workloads::Protocol::Postgres {
                isolation: isolation(&file.client, &protocol_at, &at)?,
            },
            Ok(p) => p,
            Err(_) => {
                return Err(format!(
                    "{protocol_at}: client.protocol: unknown protocol '{protocol}'; the \
                     protocols are: {}",
                    workloads::Protocol::NAMES.join(", ")
                ))
            }
        };
        if let (Some(i), false) = (
            &file.client.isolation,
            matches!(protocol, workloads::Protocol::Postgres { .. }),
        ) {
            return Err(format!(
                "{}: client.isolation: only the postgres protocol runs transactions at an \
                 isolation level",
                span_at(&i.span())
            ));
        }
        let duration = |v: &Option<Spanned<String>>, field: &str, default: Duration| match v {
            None => Ok(default),
            Some(s) => history::units::parse_duration(s.get_ref())
                .map_err(|e| format!("{}: {field}: {e}", span_at(&s.span()))),
        };
        let ready_path = match &file.ready.path {
            Some(p) if maelstrom => {
                return Err(format!(
                    "{}: ready.path: a Maelstrom node is ready when it answers init (leave \
                     ready.path out)",
                    span_at(&p.span())
                ))
            }
            Some(p) if matches!(protocol, workloads::Protocol::Postgres { .. }) => {
                return Err(format!(
                    "{}: ready.path: the postgres protocol is not HTTP; a postgres node is ready \
                     when it accepts a connection and answers a SELECT (leave ready.path out)",
                    span_at(&p.span())
                ))
            }
            Some(p) if !p.get_ref().starts_with('/') => {
                return Err(format!(
                    "{}: ready.path: '{}' must start with '/'",
                    span_at(&p.span()),
                    p.get_ref()
                ))
            }
            Some(p) => p.get_ref().clone(),
            None => "/health".to_string(),
        };
        let ready_timeout = duration(
            &file.ready.timeout,
            "ready.timeout",
            Duration::from_secs(15),
        )?;
        let stop_grace = duration(&file.stop.grace, "stop.grace", Duration::from_secs(5))?;
        let mut faults = supported_faults(&file.faults, &at)?;
        let status_fields = status_fields(&file.status, &at)?;
        let promises_of_workload = maelstrom && file.consistency.is_none();
        let promises = if promises_of_workload {
            Vec::new()
        } else {
            promises(origin, file.consistency.as_ref(), &at)?
        };
        let promises_with = promises_with(file.consistency.as_ref(), &at)?;
        let mut workloads = supported_workloads(&file.workloads, &at)?;
        if maelstrom {
            maelstrom_only(
                &mut workloads,
                &mut faults,
                &file.workloads,
                &file.faults,
                &at,
            )?;
        }
        if !file.bugs.names.is_empty() && file.bugs.flag.is_none() {
            return Err(format!(
                "{origin}: bugs.flag: bugs.names is set, so bugs.flag must say which argument \
                 switches a bug on (e.g. \"--bug\")"
            ));
        }
        Ok(SystemDef {
            name,
            origin: origin.to_string(),
            program,
            args: node.args.into_iter().map(Spanned::into_inner).collect(),
            env: node
                .env
                .into_iter()
                .map(|(k, v)| (k, v.into_inner()))
                .collect(),
            port,
            peer_port,
            peer,
            protocol,
            ready_path,
            ready_timeout,
            stop_grace,
            faults,
            promises,
            promises_of_workload,
            promises_with,
            workloads,
            status_fields,
            bugs: file.bugs.names,
            bug_flag: file.bugs.flag,
            cargo_package: file.build.cargo_package,
            install_hint: node.install_hint,
            base_dir,
            program_at: span_at(&node.program.span()),
        })
    }

    /// One node's arguments and environment, every placeholder filled in, plus the bug flag.
    pub fn render(
        &self,
        v: &NodeVars<'_>,
        bug: Option<&str>,
    ) -> (Vec<String>, Vec<(String, String)>) {
        let fill = |t: &str| self.fill(t, v);
        let mut args: Vec<String> = self.args.iter().map(|a| fill(a)).collect();
        if let (Some(bug), Some(flag)) = (bug, &self.bug_flag) {
            args.push(flag.clone());
            args.push(bug.to_string());
        }
        let env = self.env.iter().map(|(k, t)| (k.clone(), fill(t))).collect();
        (args, env)
    }

    /// One node's entry of `{peers}`.
    pub fn peer_entry(&self, node: &str, index: usize, ip: &str) -> String {
        self.fill_node(&self.peer, node, index, ip)
    }

    /// The placeholders that describe one node, the ones `{peers}` entries may use too.
    fn fill_node(&self, t: &str, node: &str, index: usize, ip: &str) -> String {
        t.replace("{node}", node)
            .replace("{node_index}", &index.to_string())
            .replace("{ip}", ip)
            .replace("{port}", &self.port.to_string())
            .replace(
                "{peer_port}",
                &self.peer_port.map(|p| p.to_string()).unwrap_or_default(),
            )
    }

    fn fill(&self, t: &str, v: &NodeVars<'_>) -> String {
        self.fill_node(t, v.node, v.index, v.ip)
            .replace("{data_dir}", &v.data_dir.display().to_string())
            .replace("{peers}", v.peers)
            .replace(
                "{clock_offset_file}",
                &v.clock_offset_file.display().to_string(),
            )
            .replace("{op_timeout_ms}", &v.op_timeout_ms.to_string())
    }

    /// Finds the program. A path with a `/` is taken relative to the definition file's folder;
    /// a bare name is looked up beside this executable (where Cargo puts every binary of the
    /// workspace), then on PATH. A bundled system is built with Cargo first when it is missing
    /// beside us (so `cargo run -- run ...` works on a fresh checkout), and, when the harness
    /// itself was started by Cargo, when a source file of the bundled systems is newer than the
    /// binary (so an edited node is never tested stale).
    pub fn locate_program(&self) -> Result<PathBuf, String> {
        let not_found = |detail: String| {
            let hint = self
                .install_hint
                .as_ref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            format!("{}: node.program: {detail}{hint}", self.program_at)
        };
        if self.program.contains('/') {
            let p = Path::new(&self.program);
            let p = match &self.base_dir {
                Some(d) if p.is_relative() => d.join(p),
                _ => p.to_path_buf(),
            };
            return if is_executable(&p) {
                Ok(p)
            } else if p.exists() {
                Err(not_found(format!(
                    "{} is not an executable file",
                    p.display()
                )))
            } else {
                Err(not_found(format!("{} does not exist", p.display())))
            };
        }
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
        let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
        let beside = dir.join(&self.program);
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let stale = self.cargo_package.is_some()
            && std::env::var_os("CARGO").is_some()
            && newer_than(&manifest_dir.join("systems-under-test"), &beside);
        if is_executable(&beside) && !stale {
            return Ok(beside);
        }
        if let Some(package) = &self.cargo_package {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
            if manifest.is_file() {
                let release = dir.file_name().is_some_and(|d| d == "release");
                if !beside.is_file() {
                    eprintln!(
                        "harness: {} is not built yet; building it (cargo build{} -p {package})",
                        self.program,
                        if release { " --release" } else { "" }
                    );
                }
                let mut cmd = std::process::Command::new(
                    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
                );
                cmd.arg("build")
                    .arg("--quiet")
                    .arg("--manifest-path")
                    .arg(&manifest)
                    .args(["-p", package]);
                if release {
                    cmd.arg("--release");
                }
                let status = cmd
                    .status()
                    .map_err(|e| format!("cannot run cargo to build {package}: {e}"))?;
                if status.success() && beside.is_file() {
                    return Ok(beside);
                }
                return Err(format!(
                    "building {package} failed ({status}); build it with `cargo build --release -p {package}`"
                ));
            }
        }
        if let Some(path) = std::env::var_os("PATH") {
            for d in std::env::split_paths(&path) {
                let p = d.join(&self.program);
                if is_executable(&p) {
                    return Ok(p);
                }
            }
        }
        Err(not_found(format!(
            "'{}' was found neither beside {} nor on PATH",
            self.program,
            exe.display()
        )))
    }

    /// Refuses a workload this system does not support, naming where that is said.
    pub fn check_workload(&self, workload: &workloads::Workload) -> Result<(), String> {
        if self.workloads.contains(&workload) {
            return Ok(());
        }
        Err(format!(
            "--workload: {} does not support {} (workloads.supported in {} lists: {})",
            self.name,
            workload.name,
            self.origin,
            self.workloads
                .iter()
                .map(|w| w.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    /// Refuses staged faults whose status fields the definition says the system's status
    /// lacks (shared/DESIGN.md section 3), naming where that is said.
    pub fn check_status(&self, staged: &[Staged]) -> Result<(), String> {
        let Some(fields) = &self.status_fields else {
            return Ok(());
        };
        for s in staged {
            let missing: Vec<&str> = s
                .needs()
                .iter()
                .filter(|f| !fields.contains(f))
                .map(|f| f.name())
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "--nemesis: {s} needs the status field{} {}, which {}'s status lacks \
                     (status.fields in {} lists: {})",
                    if missing.len() == 1 { "" } else { "s" },
                    missing.join(", "),
                    self.name,
                    self.origin,
                    fields
                        .iter()
                        .map(|f| f.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Refuses faults this system does not support, naming where that is said.
    pub fn check_faults(&self, kinds: &[NemesisKind]) -> Result<(), String> {
        let missing: Vec<&str> = kinds
            .iter()
            .filter(|k| !self.faults.contains(k))
            .map(|k| k.name())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(format!(
            "--nemesis: {} does not support {} (faults.supported in {} lists: {})",
            self.name,
            missing.join(", "),
            self.origin,
            self.faults
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// Refuses placeholders not in `allowed`, and `{peer_port}` without a peer port.
fn check_placeholders(
    value: &Spanned<String>,
    field: &str,
    allowed: &[&str],
    has_peer_port: bool,
    at: &dyn Fn(usize) -> String,
) -> Result<(), String> {
    // The span covers the quotes; the text starts one byte in.
    let start = value.span().start + 1;
    let found = placeholders(value.get_ref())
        .map_err(|i| format!("{}: {field}: '{{' without a closing '}}'", at(start + i)))?;
    for (i, p) in found {
        if !allowed.contains(&p) {
            return Err(format!(
                "{}: {field}: unknown placeholder {{{p}}}; the placeholders are: {}",
                at(start + i),
                allowed
                    .iter()
                    .map(|a| format!("{{{a}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if p == "peer_port" && !has_peer_port {
            return Err(format!(
                "{}: {field}: {{peer_port}} is used but node.peer_port is not set",
                at(start + i)
            ));
        }
    }
    Ok(())
}

impl SystemDef {
    /// `--system maelstrom:PATH`: the program at PATH (relative to the current folder; a bare
    /// name is looked up on PATH), run with no arguments but `--node-arg`s, every Maelstrom
    /// workload and every fault the routing and the processes allow, held to what its
    /// workload demands.
    fn maelstrom(program: &str, origin: &str) -> Result<SystemDef, String> {
        if program.trim().is_empty() {
            return Err(format!(
                "--system {origin}: the program is missing: maelstrom:PATH, e.g. \
                 maelstrom:./my-node"
            ));
        }
        let stem = Path::new(program)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let mut table = toml::Table::new();
        table.insert("name".into(), format!("maelstrom-{name}").into());
        let mut node = toml::Table::new();
        node.insert("program".into(), program.into());
        table.insert("node".into(), node.into());
        let mut client = toml::Table::new();
        client.insert("protocol".into(), "maelstrom".into());
        table.insert("client".into(), client.into());
        let text = toml::to_string(&table).map_err(|e| format!("--system {origin}: {e}"))?;
        SystemDef::parse(&text, origin, Some(PathBuf::from(".")))
    }

    /// The definition as it runs `workload`: a Maelstrom node that promises nothing of its
    /// own is held to what the workload demands.
    pub fn for_workload(&mut self, workload: &workloads::Workload) {
        if self.promises_of_workload {
            self.promises = workloads::maelstrom::promises(workload.name)
                .unwrap_or_default()
                .iter()
                .map(|p| p.to_string())
                .collect();
        }
    }
}

/// A Maelstrom definition's workloads are Maelstrom's (all of them when not said), and its
/// faults those its routing and processes allow: no bandwidth limit (no packets) and no clock
/// (its nodes read no clock file).
fn maelstrom_only(
    workloads: &mut Vec<&'static workloads::Workload>,
    faults: &mut Vec<NemesisKind>,
    said_workloads: &WorkloadsSection,
    said_faults: &FaultsSection,
    at: &dyn Fn(usize) -> String,
) -> Result<(), String> {
    let speaks = |w: &workloads::Workload| workloads::maelstrom::promises(w.name).is_some();
    match &said_workloads.supported {
        None => workloads.retain(|w| speaks(w)),
        Some(list) => {
            for (w, s) in workloads.iter().zip(list) {
                if !speaks(w) {
                    return Err(format!(
                        "{}: workloads.supported: {} is not a Maelstrom workload; the Maelstrom \
                         workloads are: {}",
                        at(s.span().start),
                        w.name,
                        workloads::maelstrom::workloads().join(", ")
                    ));
                }
            }
        }
    }
    let unsupported = [NemesisKind::Slow, NemesisKind::Clock, NemesisKind::Disk];
    match &said_faults.supported {
        None => faults.retain(|k| !unsupported.contains(k)),
        Some(list) => {
            for s in list {
                let kinds = NemesisKind::parse_list(s.get_ref()).unwrap_or_default();
                if let Some(k) = kinds.iter().find(|k| unsupported.contains(k)) {
                    return Err(format!(
                        "{}: faults.supported: {} is not possible for a Maelstrom node (its \
                         messages are routed by the harness, not sent as packets, it reads no \
                         clock file and has no data directory)",
                        at(s.span().start),
                        k.name()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// `[workloads] supported`, every workload when not said.
fn supported_workloads(
    section: &WorkloadsSection,
    at: &dyn Fn(usize) -> String,
) -> Result<Vec<&'static workloads::Workload>, String> {
    match &section.supported {
        None => Ok(workloads::WORKLOADS.to_vec()),
        Some(list) => list
            .iter()
            .map(|w| {
                workloads::registry::find(w.get_ref())
                    .map_err(|e| format!("{}: workloads.supported: {e}", at(w.span().start)))
            })
            .collect(),
    }
}

/// `[consistency] promises`: required, since a system that promises nothing can fail no
/// check; every promise must be one the checkers know.
fn promises(
    origin: &str,
    section: Option<&ConsistencySection>,
    at: &dyn Fn(usize) -> String,
) -> Result<Vec<String>, String> {
    let Some(section) = section else {
        return Err(format!(
            "{origin}: [consistency] promises is missing: say what the system promises, e.g. \
             promises = [\"linearizable\"]; the known promises are: {}",
            checkers::registry::promises().join(", ")
        ));
    };
    let known = checkers::registry::promises();
    let mut out = Vec::new();
    for p in &section.promises {
        if !known.contains(&p.get_ref().as_str()) {
            return Err(format!(
                "{}: consistency.promises: unknown promise '{}'; the known promises are: {}",
                at(p.span().start),
                p.get_ref(),
                known.join(", ")
            ));
        }
        out.push(p.get_ref().clone());
    }
    Ok(out)
}

/// `[consistency.with-node-arg]`: each promise a known one.
fn promises_with(
    section: Option<&ConsistencySection>,
    at: &dyn Fn(usize) -> String,
) -> Result<Vec<(String, Vec<String>)>, String> {
    let known = checkers::registry::promises();
    let mut out = Vec::new();
    for (arg, list) in section.map(|s| &s.with_node_arg).into_iter().flatten() {
        let mut these = Vec::new();
        for p in list {
            if !known.contains(&p.get_ref().as_str()) {
                return Err(format!(
                    "{}: consistency.with-node-arg.\"{arg}\": unknown promise '{}'; the known \
                     promises are: {}",
                    at(p.span().start),
                    p.get_ref(),
                    known.join(", ")
                ));
            }
            these.push(p.get_ref().clone());
        }
        out.push((arg.clone(), these));
    }
    Ok(out)
}

impl SystemDef {
    /// Adds the promises the run's node arguments bring (`[consistency.with-node-arg]`), in
    /// the form `--node-arg` takes them (`--session=causal`).
    pub fn with_node_args(&mut self, node_args: &[String]) {
        for (arg, adds) in &self.promises_with {
            if node_args.iter().any(|a| a == arg) {
                for p in adds {
                    if !self.promises.contains(p) {
                        self.promises.push(p.clone());
                    }
                }
            }
        }
    }
}

/// Whether any file under `dir` was modified after `binary` (true when `binary` is missing).
fn newer_than(dir: &Path, binary: &Path) -> bool {
    let Ok(built) = std::fs::metadata(binary).and_then(|m| m.modified()) else {
        return true;
    };
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.modified().is_ok_and(|m| m > built) {
                return true;
            }
        }
    }
    false
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn bundled_names() -> String {
    BUNDLED.map(|(n, _)| n).join(", ")
}

/// Everything a node's command line may mention.
pub struct NodeVars<'a> {
    pub node: &'a str,
    /// 1-based position of the node in the cluster.
    pub index: usize,
    pub ip: &'a str,
    pub data_dir: &'a Path,
    pub peers: &'a str,
    pub clock_offset_file: &'a Path,
    /// How long the node may keep a client waiting: three quarters of the harness's
    /// `--op-timeout`, so the node's own `info` arrives before the client gives up.
    pub op_timeout_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_newer_than_the_binary_makes_it_stale() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("a.rs"), "old").unwrap();
        assert!(newer_than(&src, &bin), "a missing binary is stale");
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&bin, "built").unwrap();
        assert!(!newer_than(&src, &bin));
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(src.join("a.rs"), "edited").unwrap();
        assert!(newer_than(&src, &bin));
    }
}
