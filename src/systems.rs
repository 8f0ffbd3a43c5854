//! The systems `harness run` can start. A system is data: how to start node N (a command
//! template with placeholders), where it answers `/health`, which faults it supports and which
//! planted bugs it knows. Bundled systems are described here the same way definition files
//! will describe external ones (DESIGN section 5), so there is one path, not two.

use std::path::{Path, PathBuf};

/// How to start one system's nodes.
#[derive(Clone, Debug)]
pub struct SystemDef {
    pub name: String,
    /// The program; a bare name is looked up beside the `harness` binary, then on PATH.
    pub program: String,
    /// Arguments, with `{node}`, `{ip}`, `{port}`, `{data_dir}`, `{peers}`,
    /// `{clock_offset_file}`, `{op_timeout_ms}` substituted per node.
    pub args: Vec<String>,
    pub port: u16,
    pub health_path: String,
    /// The `--bug` names the system accepts, and the argument that switches one on.
    pub bugs: Vec<&'static str>,
    pub bug_arg: Option<String>,
    /// The Cargo package that builds `program`, for bundled systems.
    pub cargo_package: Option<&'static str>,
}

pub const BUNDLED: [&str; 1] = ["raft"];

/// The bundled system called `name`, or the list of valid names.
pub fn lookup(name: &str) -> Result<SystemDef, String> {
    match name {
        "raft" => Ok(SystemDef {
            name: "raft".into(),
            program: "raft-node".into(),
            args: [
                "--id",
                "{node}",
                "--listen",
                "{ip}:{port}",
                "--peers",
                "{peers}",
                "--data-dir",
                "{data_dir}",
                "--clock-offset-file",
                "{clock_offset_file}",
                "--op-timeout-ms",
                "{op_timeout_ms}",
            ]
            .map(String::from)
            .to_vec(),
            port: 8000,
            health_path: "/health".into(),
            bugs: vec!["stale-read", "commit-old-term", "forget-vote", "early-ack"],
            bug_arg: Some("--bug".into()),
            cargo_package: Some("raft-node"),
        }),
        "paxos" | "dynamo" => Err(format!(
            "system '{name}' is planned but not built yet; the systems are: {}",
            BUNDLED.join(", ")
        )),
        other => Err(format!(
            "unknown system '{other}'; the systems are: {}",
            BUNDLED.join(", ")
        )),
    }
}

/// Everything a node's command line may mention.
pub struct NodeVars<'a> {
    pub node: &'a str,
    pub ip: &'a str,
    pub port: u16,
    pub data_dir: &'a Path,
    pub peers: &'a str,
    pub clock_offset_file: &'a Path,
    /// How long the node may keep a client waiting: three quarters of the harness's
    /// `--op-timeout`, so the node's own `info` arrives before the client gives up.
    pub op_timeout_ms: u64,
}

impl SystemDef {
    /// The node's arguments with every placeholder filled in.
    pub fn render_args(&self, v: &NodeVars<'_>, bug: Option<&str>) -> Vec<String> {
        let mut args: Vec<String> = self
            .args
            .iter()
            .map(|a| {
                a.replace("{node}", v.node)
                    .replace("{ip}", v.ip)
                    .replace("{port}", &v.port.to_string())
                    .replace("{data_dir}", &v.data_dir.display().to_string())
                    .replace("{peers}", v.peers)
                    .replace(
                        "{clock_offset_file}",
                        &v.clock_offset_file.display().to_string(),
                    )
                    .replace("{op_timeout_ms}", &v.op_timeout_ms.to_string())
            })
            .collect();
        if let (Some(bug), Some(flag)) = (bug, &self.bug_arg) {
            args.push(flag.clone());
            args.push(bug.to_string());
        }
        args
    }

    /// Finds the program: beside this executable (where Cargo puts every binary of the
    /// workspace), or on PATH. A bundled system is built with Cargo first when it is missing
    /// beside us (so `cargo run -- run ...` works on a fresh checkout) and whenever the harness
    /// itself was started by `cargo run` (so an edited node is never tested stale; a build with
    /// nothing to do takes about a third of a second).
    pub fn locate_program(&self) -> Result<PathBuf, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
        let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
        let beside = dir.join(&self.program);
        let under_cargo = std::env::var_os("CARGO").is_some();
        if beside.is_file() && !(under_cargo && self.cargo_package.is_some()) {
            return Ok(beside);
        }
        if let Some(package) = self.cargo_package {
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
                if p.is_file() {
                    return Ok(p);
                }
            }
        }
        Err(format!(
            "{}: not found beside {} nor on PATH",
            self.program,
            exe.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raft_args_fill_every_placeholder() {
        let def = lookup("raft").expect("bundled");
        let args = def.render_args(
            &NodeVars {
                node: "n2",
                ip: "10.77.0.12",
                port: 8000,
                data_dir: Path::new("/r/nodes/n2/data"),
                peers: "n1=10.77.0.11:8000,n2=10.77.0.12:8000",
                clock_offset_file: Path::new("/r/nodes/n2/clock-offset"),
                op_timeout_ms: 1500,
            },
            Some("early-ack"),
        );
        assert!(args.iter().all(|a| !a.contains('{')), "{args:?}");
        assert!(args
            .windows(2)
            .any(|w| w[0] == "--listen" && w[1] == "10.77.0.12:8000"));
        assert_eq!(
            args[args.len() - 2..],
            ["--bug".to_string(), "early-ack".to_string()]
        );
    }

    #[test]
    fn unknown_systems_list_the_valid_ones() {
        let e = lookup("rafft").unwrap_err();
        assert!(e.contains("rafft") && e.contains("raft"), "{e}");
    }
}
