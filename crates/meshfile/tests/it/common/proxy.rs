//! A TCP proxy on 127.0.0.1 between a client and a server (`cas serve`, a registry): it passes
//! bytes both ways and can lose one answer (a write that commits while its client never
//! hears), hold large writes until the clients of several proxies all hold one (so that racing
//! clients have all read before any writes, whenever their processes started), or cut one
//! large request off midway (an interrupted upload).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// What the proxy does to the server's answers.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Once, after a large request, closes the connection instead of passing its answer on.
    LoseOneLargeAnswer,
    /// Holds a large request (over 16 KiB since the last answer: a write of a large session)
    /// before its last part until every proxy sharing the gate holds one: the clients of all
    /// of them have read all they read before writing.
    WriteBarrier(Arc<Gate>),
    /// Once, when a request on one connection passes this many bytes, waits a second (the
    /// other connections go on meanwhile) and closes that connection midway.
    CutOnce(usize),
}

/// Opens once `parties` clients have arrived (or after 30 s, so a test that goes wrong still
/// ends).
#[derive(Debug)]
pub struct Gate {
    parties: usize,
    arrived: Mutex<usize>,
    opened: Condvar,
}

impl Gate {
    pub fn new(parties: usize) -> Arc<Gate> {
        Arc::new(Gate {
            parties,
            arrived: Mutex::new(0),
            opened: Condvar::new(),
        })
    }

    fn arrive(&self) {
        let mut arrived = self.arrived.lock().expect("gate");
        *arrived += 1;
        self.opened.notify_all();
    }

    fn wait(&self) {
        let arrived = self.arrived.lock().expect("gate");
        let _ = self
            .opened
            .wait_timeout_while(arrived, Duration::from_secs(30), |n| *n < self.parties);
    }
}

pub struct Proxy {
    pub address: String,
    /// Whether an answer was lost ([`Behaviour::LoseOneLargeAnswer`]) or a request cut off
    /// ([`Behaviour::CutOnce`]).
    pub lost: Arc<AtomicBool>,
}

/// Requests whose bytes, since the last answer, pass this many count as large.
const LARGE: usize = 16 * 1024;
/// Connections the proxy takes before it stops accepting: bounded, as every test here is.
const CONNECTIONS: usize = 4096;

impl Proxy {
    pub fn start(upstream: String, behaviour: Behaviour) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let lost = Arc::new(AtomicBool::new(false));
        let lost_flag = lost.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().take(CONNECTIONS) {
                let Ok(client) = client else { break };
                if !serve(client, &upstream, behaviour.clone(), lost_flag.clone()) {
                    break;
                }
            }
        });
        Proxy { address, lost }
    }
}

/// Passes one client's connection on to `upstream`, both ways, each on a thread of its own;
/// `false` when the upstream cannot be reached.
fn serve(client: TcpStream, upstream: &str, behaviour: Behaviour, lost: Arc<AtomicBool>) -> bool {
    let Ok(server) = TcpStream::connect(upstream) else {
        return false;
    };
    let sent = Arc::new(AtomicUsize::new(0));
    let (mut from_client, mut to_server) = (
        client.try_clone().expect("clone"),
        server.try_clone().expect("clone"),
    );
    let counted = sent.clone();
    let barrier = match &behaviour {
        Behaviour::WriteBarrier(gate) => Some(gate.clone()),
        _ => None,
    };
    let cut_after = match &behaviour {
        Behaviour::CutOnce(after) => Some(*after),
        _ => None,
    };
    let (cut, to_cut) = (lost.clone(), client.try_clone().expect("clone"));
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        let mut arrived = false;
        while let Ok(n @ 1..) = from_client.read(&mut buf) {
            let so_far = counted.fetch_add(n, Ordering::SeqCst) + n;
            if cut_after.is_some_and(|after| so_far > after) && !cut.swap(true, Ordering::SeqCst) {
                std::thread::sleep(Duration::from_secs(1));
                let _ = to_cut.shutdown(std::net::Shutdown::Both);
                let _ = to_server.shutdown(std::net::Shutdown::Both);
                return;
            }
            if let Some(gate) = barrier.as_ref().filter(|_| so_far > LARGE && !arrived) {
                arrived = true;
                gate.arrive();
                gate.wait();
            }
            if to_server.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to_server.shutdown(std::net::Shutdown::Write);
    });
    let (mut from_server, mut to_client) = (server, client);
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n @ 1..) = from_server.read(&mut buf) {
            match &behaviour {
                Behaviour::LoseOneLargeAnswer => {
                    if sent.swap(0, Ordering::SeqCst) > LARGE && !lost.swap(true, Ordering::SeqCst)
                    {
                        let _ = to_client.shutdown(std::net::Shutdown::Both);
                        let _ = from_server.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                }
                Behaviour::WriteBarrier(_) | Behaviour::CutOnce(_) => {
                    sent.store(0, Ordering::SeqCst);
                }
            }
            if to_client.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to_client.shutdown(std::net::Shutdown::Write);
    });
    true
}
