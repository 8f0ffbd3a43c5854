//! System definition files (src/systems.rs) through the harness library: the bundled and
//! shipped definitions load, and every mistake names the file, line and field.

use harness::systems::{NodeVars, SystemDef};
use nemesis::{NemesisKind, Staged};
use std::path::{Path, PathBuf};

fn vars() -> NodeVars<'static> {
    NodeVars {
        node: "n2",
        index: 2,
        ip: "10.77.0.12",
        data_dir: Path::new("/r/nodes/n2/data"),
        peers: "n1=10.77.0.11:8000,n2=10.77.0.12:8000",
        clock_offset_file: Path::new("/r/nodes/n2/clock-offset"),
        op_timeout_ms: 1500,
    }
}

#[test]
fn bundled_raft_fills_every_placeholder() {
    let def = SystemDef::load("raft").unwrap();
    assert_eq!(def.protocol, workloads::Protocol::Op);
    assert_eq!(def.cargo_package.as_deref(), Some("raft-node"));
    let (args, env) = def.render(&vars(), Some("early-ack"));
    assert!(args.iter().all(|a| !a.contains('{')), "{args:?}");
    assert!(env.iter().all(|(_, v)| !v.contains('{')), "{env:?}");
    assert!(args
        .windows(2)
        .any(|w| w == ["--listen", "10.77.0.12:8000"]));
    assert_eq!(args[args.len() - 2..], ["--bug", "early-ack"]);
    assert_eq!(def.peer_entry("n1", 1, "10.77.0.11"), "n1=10.77.0.11:8000");
}

#[test]
fn shipped_external_definitions_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("systems-under-test/external");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "toml") {
            SystemDef::load(p.to_str().unwrap()).unwrap();
            seen += 1;
        }
    }
    assert!(
        seen >= 2,
        "expected etcd.toml and etcd-serializable.toml in {dir:?}"
    );
}

const GOOD: &str = r#"
name = "demo"
consistency.promises = ["linearizable"]
[node]
program = "/bin/true"
args = ["--id", "{node}", "--listen", "{ip}:{port}"]
port = 9000
"#;

fn err(text: &str) -> String {
    SystemDef::parse(text, "demo.toml", None).unwrap_err()
}

#[test]
fn mistakes_name_the_file_line_and_field() {
    assert!(SystemDef::parse(GOOD, "demo.toml", None).is_ok());
    // An unknown placeholder, on line 5, column of the brace.
    let e = err(&GOOD.replace("{ip}:{port}", "{ip}:{prot}"));
    assert!(e.starts_with("demo.toml:6:"), "{e}");
    assert!(e.contains("node.args[3]") && e.contains("{prot}"), "{e}");
    assert!(e.contains("{peer_port}"), "lists the valid ones: {e}");
    // A typo in a field name.
    let e = err(&GOOD.replace("port = 9000", "prot = 9000"));
    assert!(e.starts_with("demo.toml:") && e.contains("prot"), "{e}");
    // {peer_port} without node.peer_port.
    let e = err(&GOOD.replace("{ip}:{port}", "{ip}:{peer_port}"));
    assert!(e.contains("node.peer_port is not set"), "{e}");
    // A port out of range.
    let e = err(&GOOD.replace("9000", "70000"));
    assert!(e.contains("demo.toml:7:") && e.contains("node.port"), "{e}");
    // An unknown protocol and an unknown fault.
    let e = err(&format!("{GOOD}[client]\nprotocol = \"grpc\"\n"));
    assert!(e.contains("demo.toml:9:") && e.contains("op, etcd"), "{e}");
    let e = err(&format!(
        "{GOOD}[faults]\nsupported = [\"partition\", \"klil\"]\n"
    ));
    assert!(e.contains("demo.toml:9:") && e.contains("'klil'"), "{e}");
    // An unclosed brace and a bad duration.
    let e = err(&GOOD.replace("{node}", "{node"));
    assert!(e.contains("without a closing"), "{e}");
    let e = err(&format!("{GOOD}[stop]\ngrace = \"soon\"\n"));
    assert!(e.contains("stop.grace"), "{e}");
    // No promises at all, an unknown promise, an unknown workload.
    let e = err(&GOOD.replace("consistency.promises = [\"linearizable\"]\n", ""));
    assert!(e.contains("[consistency] promises is missing"), "{e}");
    let e = err(&GOOD.replace("\"linearizable\"]", "\"linearisable\"]"));
    assert!(
        e.contains("demo.toml:3:") && e.contains("'linearisable'") && e.contains("causal"),
        "{e}"
    );
    let e = err(&format!(
        "{GOOD}[workloads]\nsupported = [\"set\", \"regsiter\"]\n"
    ));
    assert!(
        e.contains("demo.toml:9:") && e.contains("'regsiter'") && e.contains("counter"),
        "{e}"
    );
}

#[test]
fn promises_and_workloads_are_read() {
    let def = SystemDef::parse(
        &format!("{GOOD}[workloads]\nsupported = [\"set\"]\n"),
        "demo.toml",
        None,
    )
    .unwrap();
    assert_eq!(def.promises, vec!["linearizable".to_string()]);
    assert!(def.check_workload(&workloads::set::WORKLOAD).is_ok());
    let e = def
        .check_workload(&workloads::counter::WORKLOAD)
        .unwrap_err();
    assert!(
        e.contains("does not support counter") && e.contains("lists: set"),
        "{e}"
    );
    // Not said: every workload.
    let def = SystemDef::parse(GOOD, "demo.toml", None).unwrap();
    assert_eq!(def.workloads.len(), workloads::WORKLOADS.len());
}

#[test]
fn a_missing_program_is_named_with_the_hint() {
    let text = GOOD.replace("/bin/true", "no-such-program-here").replace(
        "port = 9000",
        "port = 9000\ninstall_hint = \"apt-get install it\"",
    );
    let def = SystemDef::parse(&text, "demo.toml", None).unwrap();
    let e = def.locate_program().unwrap_err();
    assert!(
        e.starts_with("demo.toml:5:") && e.contains("node.program"),
        "{e}"
    );
    assert!(e.contains("apt-get install it"), "{e}");
    let def = SystemDef::parse(
        &GOOD.replace("/bin/true", "./missing"),
        "demo.toml",
        Some(PathBuf::from("/tmp")),
    )
    .unwrap();
    assert!(def.locate_program().unwrap_err().contains("/tmp/./missing"));
}

#[test]
fn unsupported_faults_are_refused() {
    let def = SystemDef::parse(
        &format!("{GOOD}[faults]\nsupported = [\"partition\", \"kill\"]\n"),
        "demo.toml",
        None,
    )
    .unwrap();
    assert!(def.check_faults(&[NemesisKind::Kill]).is_ok());
    let e = def
        .check_faults(&[NemesisKind::Kill, NemesisKind::Clock])
        .unwrap_err();
    assert!(e.contains("clock") && e.contains("demo.toml"), "{e}");
}

#[test]
fn staged_faults_are_refused_when_the_status_lacks_their_fields() {
    let raft = SystemDef::load("raft").unwrap();
    assert!(raft
        .check_status(&[Staged::AfterVote, Staged::Figure8])
        .is_ok());
    let etcd = Path::new(env!("CARGO_MANIFEST_DIR")).join("systems-under-test/external/etcd.toml");
    let etcd = SystemDef::load(etcd.to_str().unwrap()).unwrap();
    let e = etcd.check_status(&[Staged::AfterVote]).unwrap_err();
    assert!(
        e.contains("kill:after-vote") && e.contains("voted_for") && e.contains("etcd.toml"),
        "{e}"
    );
    let e = etcd.check_status(&[Staged::Figure8]).unwrap_err();
    assert!(
        e.contains("partition:figure-8") && e.contains("commit"),
        "{e}"
    );
    // Without [status], the nodes are asked at run time instead.
    let def = SystemDef::parse(GOOD, "demo.toml", None).unwrap();
    assert!(def.check_status(&[Staged::AfterVote]).is_ok());
    let e = SystemDef::parse(
        &format!("{GOOD}[status]\nfields = [\"role\", \"votedfor\"]\n"),
        "demo.toml",
        None,
    )
    .err()
    .unwrap_or_default();
    assert!(
        e.contains("demo.toml:") && e.contains("status.fields") && e.contains("voted_for"),
        "{e}"
    );
}

#[test]
fn bundled_paxos_is_described_like_raft() {
    let def = SystemDef::load("paxos").unwrap();
    assert_eq!(def.protocol, workloads::Protocol::Op);
    assert_eq!(def.cargo_package.as_deref(), Some("paxos-node"));
    let (args, _) = def.render(&vars(), Some("forget-promise"));
    assert!(args.iter().all(|a| !a.contains('{')), "{args:?}");
    assert_eq!(args[args.len() - 2..], ["--bug", "forget-promise"]);
    assert!(def
        .check_status(&[Staged::AfterPromise, Staged::AfterVote])
        .is_ok());
    // The same workloads as raft, transactions included.
    let raft = SystemDef::load("raft").unwrap();
    let names = |d: &SystemDef| d.workloads.iter().map(|w| w.name).collect::<Vec<_>>();
    assert_eq!(names(&def), names(&raft));
    assert!(names(&def).contains(&"list-append"));
}

#[test]
fn unknown_systems_list_the_valid_ones() {
    let e = SystemDef::load("rafty").unwrap_err();
    assert!(
        e.contains("raft") && e.contains("paxos") && e.contains("FILE.toml"),
        "{e}"
    );
    let e = SystemDef::load("/nonexistent/x.toml").unwrap_err();
    assert!(e.contains("/nonexistent/x.toml"), "{e}");
}

#[test]
fn postgres_definitions_name_their_isolation_level() {
    use workloads::postgres::Isolation;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("systems-under-test/external");
    for (file, isolation) in [
        ("postgres-serializable.toml", Isolation::Serializable),
        ("postgres-repeatable-read.toml", Isolation::RepeatableRead),
        ("postgres-read-committed.toml", Isolation::ReadCommitted),
    ] {
        let def = SystemDef::load(dir.join(file).to_str().unwrap()).unwrap();
        assert_eq!(
            def.protocol,
            workloads::Protocol::Postgres { isolation },
            "{file}"
        );
        assert!(def
            .check_workload(&workloads::list_append::WORKLOAD)
            .is_ok());
        assert!(def
            .check_workload(&workloads::rw_register::WORKLOAD)
            .is_ok());
        assert!(def
            .check_faults(&[NemesisKind::Pause, NemesisKind::Kill])
            .is_ok());
        assert!(def.locate_program().is_ok(), "{file}: the wrapper is found");
    }
}

#[test]
fn a_postgres_definition_refuses_a_wrong_or_missing_level() {
    let pg = format!("{GOOD}[client]\nprotocol = \"postgres\"\nisolation = \"serializable\"\n");
    assert!(SystemDef::parse(&pg, "demo.toml", None).is_ok());
    let e = err(&pg.replace("\"serializable\"", "\"serialisable\""));
    assert!(
        e.contains("demo.toml:10:")
            && e.contains("client.isolation")
            && e.contains("'serialisable'")
            && e.contains("repeatable-read, read-committed"),
        "{e}"
    );
    let e = err(&pg.replace("isolation = \"serializable\"\n", ""));
    assert!(
        e.contains("demo.toml:9:") && e.contains("client.isolation") && e.contains("needs"),
        "{e}"
    );
    // Only postgres has levels; and its readiness is not a GET.
    let e = err(&format!("{GOOD}[client]\nisolation = \"serializable\"\n"));
    assert!(
        e.contains("demo.toml:9:") && e.contains("only the postgres"),
        "{e}"
    );
    let e = err(&format!("{pg}[ready]\npath = \"/health\"\n"));
    assert!(e.contains("ready.path") && e.contains("not HTTP"), "{e}");
}

#[test]
fn every_workloads_checkers_are_registered() {
    for w in workloads::WORKLOADS {
        for name in w.checkers {
            assert!(
                checkers::registry::find(name).is_ok(),
                "workload {} is checked by {name}, which checkers::registry::CHECKERS lacks",
                w.name
            );
        }
    }
}

/// A set or a counter always ends with final reads; a register only when the system promises
/// `convergent` (the convergence checker judges those reads); the transactional workloads,
/// whose keys retire, never.
#[test]
fn final_reads_follow_the_workload_and_the_convergent_promise() {
    use harness::checking::wants_final_reads;
    let raft = SystemDef::parse(GOOD, "demo.toml", None).unwrap();
    let dynamo = SystemDef::parse(
        &GOOD.replace(
            r#"["linearizable"]"#,
            r#"["convergent", "no-lost-updates"]"#,
        ),
        "dynamo.toml",
        None,
    )
    .unwrap();
    let w = |name| workloads::registry::find(name).unwrap();
    assert!(wants_final_reads(w("set"), &raft));
    assert!(wants_final_reads(w("counter"), &raft));
    assert!(!wants_final_reads(w("register"), &raft));
    assert!(wants_final_reads(w("register"), &dynamo));
    assert!(!wants_final_reads(w("list-append"), &dynamo));
    assert!(!wants_final_reads(w("rw-register"), &dynamo));
}

const MAELSTROM: &str = r#"
name = "py-echo"
[node]
program = "/bin/cat"
[client]
protocol = "maelstrom"
[workloads]
supported = ["echo", "broadcast"]
"#;

#[test]
fn a_maelstrom_definition_needs_no_port_and_is_held_to_its_workload() {
    let mut def = SystemDef::parse(MAELSTROM, "m.toml", None).unwrap();
    assert_eq!(def.protocol, workloads::Protocol::Maelstrom);
    assert!(def.promises_of_workload);
    // No bandwidth limit and no clock: the routing is not packets, and no clock file is read.
    assert!(!def.faults.contains(&NemesisKind::Slow));
    assert!(!def.faults.contains(&NemesisKind::Clock));
    assert!(def.faults.contains(&NemesisKind::Partition));
    let broadcast = workloads::registry::find("broadcast").unwrap();
    def.for_workload(broadcast);
    assert_eq!(def.promises, ["no-lost-updates"]);
    let echo = workloads::registry::find("echo").unwrap();
    def.for_workload(echo);
    assert_eq!(def.promises, ["echo"]);
    // A definition that says its promises keeps them.
    let own = format!("{MAELSTROM}[consistency]\npromises = [\"linearizable\"]\n");
    let mut def = SystemDef::parse(&own, "m.toml", None).unwrap();
    def.for_workload(broadcast);
    assert_eq!(def.promises, ["linearizable"]);
}

#[test]
fn maelstrom_definition_mistakes_are_named() {
    let port = MAELSTROM.replace(
        "program = \"/bin/cat\"",
        "program = \"/bin/cat\"\nport = 80",
    );
    let e = err_of(&port);
    assert!(e.contains("m.toml:5") && e.contains("node.port"), "{e}");
    let register = MAELSTROM.replace("\"echo\", \"broadcast\"", "\"echo\", \"register\"");
    let e = err_of(&register);
    assert!(
        e.contains("m.toml:8") && e.contains("register is not a Maelstrom workload"),
        "{e}"
    );
    let slow = format!("{MAELSTROM}[faults]\nsupported = [\"partition\", \"slow\"]\n");
    let e = err_of(&slow);
    assert!(e.contains("faults.supported") && e.contains("slow"), "{e}");
    let ready = format!("{MAELSTROM}[ready]\npath = \"/health\"\n");
    assert!(err_of(&ready).contains("ready.path"));
    // Without a port, a definition of another protocol is refused.
    let op = MAELSTROM.replace("protocol = \"maelstrom\"", "protocol = \"op\"");
    assert!(err_of(&op).contains("node.port is missing"));
}

#[test]
fn maelstrom_path_needs_no_definition_file() {
    let def = SystemDef::load("maelstrom:./systems-under-test/external/maelstrom/echo.py").unwrap();
    assert_eq!(def.name, "maelstrom-echo");
    assert_eq!(def.protocol, workloads::Protocol::Maelstrom);
    assert!(def.workloads.iter().any(|w| w.name == "kafka"));
    assert!(def.workloads.iter().all(|w| w.name != "register"));
    assert!(SystemDef::load("maelstrom:")
        .unwrap_err()
        .contains("maelstrom:PATH"));
    let missing = SystemDef::load("maelstrom:./no/such/node").unwrap();
    assert!(missing
        .locate_program()
        .unwrap_err()
        .contains("does not exist"));
}

fn err_of(text: &str) -> String {
    SystemDef::parse(text, "m.toml", None).unwrap_err()
}
