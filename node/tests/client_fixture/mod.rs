//! In-process fixtures for client tests: a relay on loopback and clients in
//! temporary homes, every wait bounded.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use mayfly_node::client::{self, Client, ClientConfig, Event};
use mayfly_node::home::{Home, Profile};
use mayfly_node::relay::local::LocalRelay;
use mayfly_protocol::UnixMillis;
use tokio::sync::mpsc;

pub const TIMEOUT: Duration = Duration::from_secs(30);
pub const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/hello.mp4");

pub fn now() -> UnixMillis {
    UnixMillis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    )
}

/// An in-process relay on loopback; stops when dropped.
pub struct TestRelay {
    pub address: String,
    _relay: LocalRelay,
}

impl TestRelay {
    pub async fn start(dir: &Path) -> TestRelay {
        let relay = LocalRelay::loopback(dir).await.expect("relay starts");
        TestRelay {
            address: relay.address.clone(),
            _relay: relay,
        }
    }
}

/// A person: a home and, while online, a running client.
pub struct Person {
    pub name: &'static str,
    pub dir: PathBuf,
    pub client: Option<(Client, mpsc::Receiver<Event>)>,
}

impl Person {
    pub fn create(root: &Path, name: &'static str, relay: &str, seed: u64) -> Person {
        let dir = root.join(name);
        let mut rng = mayfly_node::rng::node_rng(Some(seed)).unwrap();
        mayfly_node::client::create_home(
            &dir,
            Profile {
                display_name: name.into(),
                relays: vec![relay.to_owned()],
            },
            now(),
            &mut rng,
        )
        .unwrap();
        Person {
            name,
            dir,
            client: None,
        }
    }

    /// Goes online: listens, logs in, announces, syncs.
    pub async fn online(&mut self, config: ClientConfig) {
        let home = Home::open(&self.dir).unwrap();
        let (client, events, event_loop) = client::new(home, config).unwrap();
        tokio::spawn(event_loop.run());
        client.start().await.expect("starts");
        self.client = Some((client, events));
    }

    pub async fn offline(&mut self) {
        if let Some((c, _)) = self.client.take() {
            c.shutdown().await;
        }
    }

    pub fn client(&self) -> &Client {
        &self.client.as_ref().expect("online").0
    }

    /// Waits for an event `f` picks, skipping others.
    pub async fn wait<T>(&mut self, mut f: impl FnMut(&Event) -> Option<T>) -> T {
        let events = &mut self.client.as_mut().expect("online").1;
        tokio::time::timeout(TIMEOUT, async {
            loop {
                let e = events.recv().await.expect("client running");
                if let Some(t) = f(&e) {
                    return t;
                }
            }
        })
        .await
        .expect("event in time")
    }

    /// Waits for `Event::Received` of `id`.
    pub async fn received(&mut self, id: &mayfly_protocol::MessageId) {
        self.wait(|e| {
            matches!(e, Event::Received { message_id, .. } if message_id == id).then_some(())
        })
        .await
    }

    pub fn card(&self) -> mayfly_protocol::ContactCard {
        match &self.client {
            Some((c, _)) => c.card().unwrap(),
            None => Home::open(&self.dir).unwrap().card().unwrap(),
        }
    }
}

/// A relay in `root` and two people with homes there (created with the
/// given names and seeds) who are each other's contacts, both offline.
pub async fn friends(
    root: &Path,
    a: (&'static str, u64),
    b: (&'static str, u64),
) -> (TestRelay, Person, Person) {
    let relay = TestRelay::start(&root.join("relay")).await;
    let a = Person::create(root, a.0, &relay.address, a.1);
    let b = Person::create(root, b.0, &relay.address, b.1);
    befriend(&a, &b);
    (relay, a, b)
}

/// Makes `a` and `b` contacts of each other (both offline).
pub fn befriend(a: &Person, b: &Person) {
    let ha = Home::open(&a.dir).unwrap();
    let hb = Home::open(&b.dir).unwrap();
    ha.add_contact(&hb.card().unwrap(), now()).unwrap();
    hb.add_contact(&ha.card().unwrap(), now()).unwrap();
}

/// Every file under `dir` containing `needle`.
/// Copies a home directory, without its lock file (no process may hold it).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else if e.file_name() != "lock" {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
            {
                found.push(p);
            }
        }
    }
    found
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A writer that keeps what is written, for reading after it is handed
/// away (`new` returns two handles on one buffer).
#[derive(Clone, Default)]
pub struct Collect(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Collect {
    pub fn new() -> (Collect, Collect) {
        let c = Collect::default();
        (c.clone(), c)
    }

    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl std::io::Write for Collect {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A client on a runtime and a thread of its own, which a test can freeze:
/// frozen, it answers nothing while its connections stay open, like a
/// device that has gone silent.
pub struct Freezable {
    pub client: Client,
    handle: tokio::runtime::Handle,
    gate: std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Freezable {
    /// Starts the client of the home in `dir` (logs in, announces, syncs).
    pub async fn start(dir: &Path, config: ClientConfig) -> Freezable {
        let (ready, started) = tokio::sync::oneshot::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let dir = dir.to_path_buf();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let home = Home::open(&dir).unwrap();
                // Events are not read: the client drops what does not fit.
                let (client, _events, event_loop) = client::new(home, config).unwrap();
                tokio::spawn(event_loop.run());
                client.start().await.expect("starts");
                let _ = ready.send((client, tokio::runtime::Handle::current()));
                let _ = stopped.await;
            });
        });
        let (client, handle) = tokio::time::timeout(TIMEOUT, started)
            .await
            .expect("started in time")
            .expect("started");
        Freezable {
            client,
            handle,
            gate: Default::default(),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Blocks the client's only thread until [`Freezable::thaw`].
    pub fn freeze(&self) {
        *self.gate.0.lock().unwrap() = true;
        let gate = self.gate.clone();
        self.handle.spawn(async move {
            let (frozen, thawed) = &*gate;
            let mut frozen = frozen.lock().unwrap();
            while *frozen {
                frozen = thawed.wait(frozen).unwrap();
            }
        });
    }

    pub fn thaw(&self) {
        *self.gate.0.lock().unwrap() = false;
        self.gate.1.notify_all();
    }

    /// Thaws, shuts the client down and joins its thread.
    pub async fn stop(mut self) {
        self.thaw();
        self.client.shutdown().await;
        let _ = self.stop.take().map(|s| s.send(()));
        if let Some(thread) = self.thread.take() {
            tokio::task::spawn_blocking(move || thread.join().unwrap())
                .await
                .unwrap();
        }
    }
}
