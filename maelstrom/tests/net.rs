//! The Maelstrom network without processes: each "node" is a pair of pipes the test reads and
//! writes itself, so routing, init, reply matching, faults and malformed output are checked
//! line by line.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::OwnedFd;
use std::time::Duration;

use maelstrom::{msg, CallError, Net, Options};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::pipe;

/// The test's end of a node: what the network writes to the node, and the node's stdout.
struct Fake {
    name: String,
    input: Lines<BufReader<pipe::Receiver>>,
    output: pipe::Sender,
}

impl Fake {
    fn attach(net: &Net, name: &str) -> Fake {
        let (stdin_r, stdin_w) = std::io::pipe().unwrap();
        let (stdout_r, stdout_w) = std::io::pipe().unwrap();
        net.attach(name, OwnedFd::from(stdin_w), OwnedFd::from(stdout_r));
        Fake {
            name: name.into(),
            input: BufReader::new(pipe::Receiver::from_owned_fd(OwnedFd::from(stdin_r)).unwrap())
                .lines(),
            output: pipe::Sender::from_owned_fd(OwnedFd::from(stdout_w)).unwrap(),
        }
    }

    /// The next message the network delivered to this node.
    async fn recv(&mut self) -> msg::Message {
        let line = tokio::time::timeout(Duration::from_secs(5), self.input.next_line())
            .await
            .expect("a message within 5 s")
            .unwrap()
            .expect("the pipe is open");
        msg::parse(line.as_bytes()).unwrap()
    }

    /// Nothing delivered within 100 ms.
    async fn nothing(&mut self) {
        let r = tokio::time::timeout(Duration::from_millis(100), self.input.next_line()).await;
        assert!(r.is_err(), "{} got {:?}", self.name, r);
    }

    async fn write(&mut self, line: &str) {
        self.output
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }

    async fn send(&mut self, dest: &str, body: Value) {
        let line = json!({"src": self.name, "dest": dest, "body": body}).to_string();
        self.write(&line).await;
    }

    async fn reply(&mut self, to: &msg::Message, mut body: Value) {
        body["in_reply_to"] = json!(to.msg_id().unwrap());
        self.send(&to.src.clone(), body).await;
    }

    /// Answers init (checking it) and waits until the network calls the node ready.
    async fn init(&mut self, net: &Net) {
        let m = self.recv().await;
        assert_eq!(m.kind(), "init");
        assert_eq!(m.body["node_id"], json!(self.name));
        self.reply(&m, json!({"type": "init_ok"})).await;
        ready(net, &self.name).await;
    }
}

async fn ready(net: &Net, node: &str) {
    for _ in 0..500 {
        if net.ready(node).is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{node} never ready: {:?}", net.ready(node));
}

fn nodes(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

fn body(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn net(n: usize) -> Net {
    Net::new(&nodes(n), None, Options::default()).unwrap()
}

#[tokio::test]
async fn init_names_the_node_and_its_peers_and_a_call_is_matched_to_its_reply() {
    let net = net(3);
    let mut n1 = Fake::attach(&net, "n1");
    assert!(net.ready("n1").unwrap_err().contains("init"));
    let init = n1.recv().await;
    assert_eq!(init.body["node_ids"], json!(["n1", "n2", "n3"]));
    n1.reply(&init, json!({"type": "init_ok"})).await;
    ready(&net, "n1").await;
    // Not yet attached: nothing is sent, and the error says so (a definite failure).
    let e = net
        .call("n2", body(json!({"type": "echo"})), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(e.definite(), "{e}");

    let call = tokio::spawn({
        let net = net.clone();
        async move {
            net.call(
                "n1",
                body(json!({"type": "echo", "echo": "hi"})),
                Duration::from_secs(5),
            )
            .await
        }
    });
    let req = n1.recv().await;
    assert_eq!((req.src.as_str(), req.kind()), ("c1", "echo"));
    // A reply to something else first: a stray, counted, and the call still waits.
    n1.send(
        "c1",
        json!({"type": "echo_ok", "in_reply_to": 99_999, "echo": "x"}),
    )
    .await;
    n1.reply(&req, json!({"type": "echo_ok", "echo": "hi"}))
        .await;
    let reply = call.await.unwrap().unwrap();
    assert_eq!(reply["echo"], json!("hi"));
    let stats = net.stats();
    assert_eq!((stats.client_requests, stats.client_replies), (1, 1));
    assert_eq!(stats.malformed["n1"], 1);
}

#[tokio::test]
async fn messages_between_nodes_obey_partitions_and_loss() {
    let net = net(2);
    let mut n1 = Fake::attach(&net, "n1");
    let mut n2 = Fake::attach(&net, "n2");
    n1.init(&net).await;
    n2.init(&net).await;
    n1.send("n2", json!({"type": "gossip", "v": 1})).await;
    let m = n2.recv().await;
    assert_eq!((m.src.as_str(), m.body["v"].clone()), ("n1", json!(1)));

    // n2 stops hearing n1; n1 still hears n2.
    let grudge: BTreeMap<String, BTreeSet<String>> =
        [("n2".to_string(), ["n1".to_string()].into())].into();
    net.set_grudge(&grudge);
    n1.send("n2", json!({"type": "gossip", "v": 2})).await;
    n2.send("n1", json!({"type": "gossip", "v": 3})).await;
    assert_eq!(n1.recv().await.body["v"], json!(3));
    n2.nothing().await;
    net.heal();
    net.set_loss(100);
    n1.send("n2", json!({"type": "gossip", "v": 4})).await;
    n2.nothing().await;
    net.heal();
    net.set_delay(150, 0, 1);
    let sent = std::time::Instant::now();
    n1.send("n2", json!({"type": "gossip", "v": 5})).await;
    assert_eq!(n2.recv().await.body["v"], json!(5));
    assert!(sent.elapsed() >= Duration::from_millis(140));
    let s = net.stats();
    assert_eq!(
        (s.dropped_partition, s.dropped_loss, s.between_nodes),
        (1, 1, 3)
    );
}

#[tokio::test]
async fn nodes_reach_the_services() {
    let net = net(1);
    let mut n1 = Fake::attach(&net, "n1");
    n1.init(&net).await;
    n1.send(
        "lin-kv",
        json!({"type": "write", "key": "a", "value": 3, "msg_id": 1}),
    )
    .await;
    let r = n1.recv().await;
    assert_eq!(
        (r.src.as_str(), r.kind(), r.in_reply_to()),
        ("lin-kv", "write_ok", Some(1))
    );
    n1.send("lin-kv", json!({"type": "read", "key": "b", "msg_id": 2}))
        .await;
    let r = n1.recv().await;
    assert_eq!(r.body["code"], json!(20));
    assert_eq!(net.stats().service_requests, 2);
}

#[tokio::test]
async fn malformed_output_is_counted_per_node_and_routing_goes_on() {
    let net = net(2);
    let mut n1 = Fake::attach(&net, "n1");
    let mut n2 = Fake::attach(&net, "n2");
    n1.init(&net).await;
    n2.init(&net).await;
    n1.write("this is not json").await;
    n1.write(r#"{"src":"n1","dest":"n2","body":{"no_type":1}}"#)
        .await;
    n1.write(r#"{"src":"n1","dest":"n9","body":{"type":"x"}}"#)
        .await;
    n1.write(r#"{"src":"n2","dest":"n2","body":{"type":"spoof"}}"#)
        .await;
    n1.write(r#"{"src":"n1","dest":"c1","body":{"type":"read_ok"}}"#)
        .await;
    n1.write(r#"{"src":"n1","dest":"c1","body":{"type":"read_ok","in_reply_to":12345}}"#)
        .await;
    n1.send("n2", json!({"type": "after"})).await;
    assert_eq!(n2.recv().await.kind(), "after");
    assert_eq!(net.stats().malformed["n1"], 6);
    assert!(!net.stats().malformed.contains_key("n2"));
}

#[tokio::test]
async fn a_node_that_dies_answers_its_calls_as_crashed_and_a_restart_is_sent_init_again() {
    let net = net(2);
    net.set_setup(
        "n1",
        vec![body(
            json!({"type": "topology", "topology": {"n1": ["n2"]}}),
        )],
    );
    let mut n1 = Fake::attach(&net, "n1");
    let init = n1.recv().await;
    n1.reply(&init, json!({"type": "init_ok"})).await;
    let topo = n1.recv().await;
    assert_eq!(topo.kind(), "topology");
    assert!(net.ready("n1").is_err(), "ready before topology_ok");
    n1.reply(&topo, json!({"type": "topology_ok"})).await;
    ready(&net, "n1").await;

    let call = tokio::spawn({
        let net = net.clone();
        async move {
            net.call("n1", body(json!({"type": "read"})), Duration::from_secs(5))
                .await
        }
    });
    let _req = n1.recv().await;
    drop(n1); // the process dies: its stdout closes
    assert_eq!(call.await.unwrap(), Err(CallError::Crashed));
    for _ in 0..100 {
        if net.ready("n1").is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let e = net
        .call("n1", body(json!({"type": "read"})), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(e.definite(), "{e:?}");
    // Messages to it are dropped while it is down.
    let mut n2 = Fake::attach(&net, "n2");
    n2.init(&net).await;
    n2.send("n1", json!({"type": "gossip"})).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(net.stats().dropped_down, 1);

    // Restarted: init again, topology again.
    let mut n1 = Fake::attach(&net, "n1");
    let init = n1.recv().await;
    assert_eq!(init.kind(), "init");
    n1.reply(&init, json!({"type": "init_ok"})).await;
    let topo = n1.recv().await;
    n1.reply(&topo, json!({"type": "topology_ok"})).await;
    ready(&net, "n1").await;
    assert_eq!(net.stats().inits, 3);
}

#[tokio::test]
async fn a_reply_after_the_timeout_is_late_not_malformed() {
    let net = net(1);
    let mut n1 = Fake::attach(&net, "n1");
    n1.init(&net).await;
    let e = tokio::spawn({
        let net = net.clone();
        async move {
            net.call(
                "n1",
                body(json!({"type": "read"})),
                Duration::from_millis(50),
            )
            .await
        }
    });
    let req = n1.recv().await;
    assert_eq!(e.await.unwrap(), Err(CallError::Timeout));
    assert!(!CallError::Timeout.definite());
    n1.reply(&req, json!({"type": "read_ok"})).await;
    n1.send("n1", json!({"type": "self"})).await;
    n1.recv().await;
    let s = net.stats();
    assert_eq!((s.late_replies, s.malformed_total()), (1, 0));
}

#[tokio::test]
async fn an_init_error_is_the_reason_the_node_is_not_ready() {
    let net = net(1);
    let mut n1 = Fake::attach(&net, "n1");
    let init = n1.recv().await;
    n1.reply(&init, json!({"type": "error", "code": 10, "text": "nope"}))
        .await;
    for _ in 0..100 {
        if net.ready("n1").unwrap_err().contains("nope") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{:?}", net.ready("n1"));
}

#[tokio::test]
async fn lines_a_killed_process_left_behind_are_not_routed_after_its_restart() {
    let net = net(2);
    let mut old = Fake::attach(&net, "n1");
    old.init(&net).await;
    let mut n2 = Fake::attach(&net, "n2");
    n2.init(&net).await;
    // n1 restarts; its old process's stdout is still open, and a line written to it now
    // (as if buffered before the kill) must not reach anyone.
    let mut new = Fake::attach(&net, "n1");
    new.init(&net).await;
    old.send("n2", json!({"type": "gossip", "msg_id": 5})).await;
    n2.nothing().await;
    assert_eq!(net.stats().dropped_down, 1);
    assert_eq!(net.stats().malformed_total(), 0);
    // The new process's lines are routed as ever.
    new.send("n2", json!({"type": "gossip", "msg_id": 5})).await;
    assert_eq!(n2.recv().await.kind(), "gossip");
}

#[tokio::test]
async fn a_node_that_answers_init_late_becomes_ready() {
    let options = Options {
        init_timeout: Duration::from_millis(100),
        ..Options::default()
    };
    let net = Net::new(&nodes(1), None, options).unwrap();
    let mut n1 = Fake::attach(&net, "n1");
    let init = n1.recv().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let why = net.ready("n1").unwrap_err();
    assert!(why.contains("did not answer init within 100 ms"), "{why}");
    // Paused past the timeout, then resumed: the answer still counts.
    n1.reply(&init, json!({"type": "init_ok"})).await;
    ready(&net, "n1").await;
}
