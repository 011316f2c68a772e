//! A TCP proxy on 127.0.0.1 between a client and `cas serve`: it passes bytes both ways and
//! can lose one answer (a write that commits while its client never hears) or slow every
//! answer down (a CAS far away).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// What the proxy does to the server's answers.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// Once, after a large request, closes the connection instead of passing its answer on.
    LoseOneLargeAnswer,
    /// Holds every chunk of an answer this long.
    Delay(Duration),
}

pub struct Proxy {
    pub address: String,
    /// Whether an answer was lost ([`Behaviour::LoseOneLargeAnswer`]).
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
                let Ok(server) = TcpStream::connect(&upstream) else {
                    break;
                };
                let sent = Arc::new(AtomicUsize::new(0));
                let (mut from_client, mut to_server) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                let counted = sent.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n @ 1..) = from_client.read(&mut buf) {
                        counted.fetch_add(n, Ordering::SeqCst);
                        if to_server.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown(std::net::Shutdown::Write);
                });
                let lost = lost_flag.clone();
                let (mut from_server, mut to_client) = (server, client);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n @ 1..) = from_server.read(&mut buf) {
                        match behaviour {
                            Behaviour::LoseOneLargeAnswer => {
                                if sent.swap(0, Ordering::SeqCst) > LARGE
                                    && !lost.swap(true, Ordering::SeqCst)
                                {
                                    let _ = to_client.shutdown(std::net::Shutdown::Both);
                                    let _ = from_server.shutdown(std::net::Shutdown::Both);
                                    return;
                                }
                            }
                            Behaviour::Delay(delay) => std::thread::sleep(delay),
                        }
                        if to_client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to_client.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Proxy { address, lost }
    }
}
