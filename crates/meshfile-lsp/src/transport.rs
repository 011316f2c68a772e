//! Standard input and output as the protocol's byte stream, bounded: a message may not ask
//! for more than [`MESSAGE_LIMIT`] bytes before any is allocated, headers are short, and a
//! message that is not JSON-RPC is dropped (said on standard error), not fatal.

use std::io::{BufRead, Read, Write};

use crossbeam_channel::{Receiver, Sender};
use lsp_server::Message;

/// The largest message read: far above any manifest (their own limit is a few MiB).
pub const MESSAGE_LIMIT: usize = 64 << 20;
/// The longest header line, and the most header lines of one message.
const HEADER_LINE: usize = 1024;
const HEADER_LINES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("a message of {0} bytes, over the {MESSAGE_LIMIT}-byte limit")]
    TooLarge(usize),
    #[error("a message without a valid Content-Length header")]
    NoLength,
    #[error("a header line over {HEADER_LINE} bytes, or over {HEADER_LINES} header lines")]
    LongHeader,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one message's body; `None` at the end of the input.
pub fn read_body(input: &mut impl BufRead) -> Result<Option<Vec<u8>>, TransportError> {
    let mut length: Option<usize> = None;
    let mut lines = 0;
    loop {
        let mut line = Vec::new();
        let read = input
            .by_ref()
            .take(HEADER_LINE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            return if lines == 0 {
                Ok(None)
            } else {
                Err(TransportError::NoLength)
            };
        }
        if line.len() > HEADER_LINE || lines >= HEADER_LINES {
            return Err(TransportError::LongHeader);
        }
        lines += 1;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if text.is_empty() {
            break;
        }
        if let Some((name, value)) = text.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = Some(value.trim().parse().map_err(|_| TransportError::NoLength)?);
        }
    }
    let length = length.ok_or(TransportError::NoLength)?;
    if length > MESSAGE_LIMIT {
        return Err(TransportError::TooLarge(length));
    }
    let mut body = vec![0u8; length];
    input.read_exact(&mut body)?;
    Ok(Some(body))
}

/// A body as a protocol message; `None` for one that is not JSON-RPC.
pub fn message(body: &[u8]) -> Option<Message> {
    serde_json::from_slice(body).ok()
}

/// Forwards standard input's messages until `exit`, the end of the input, or an error.
pub fn read_stdin(to_server: Sender<Message>) -> Result<(), TransportError> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    while let Some(body) = read_body(&mut input)? {
        let Some(message) = message(&body) else {
            eprintln!(
                "meshfile lsp: a message that is not JSON-RPC was dropped ({} bytes)",
                body.len()
            );
            continue;
        };
        let exit = matches!(&message, Message::Notification(n) if n.method == "exit");
        if to_server.send(message).is_err() || exit {
            break;
        }
    }
    Ok(())
}

/// Writes the server's messages to standard output until it stops sending.
pub fn write_stdout(from_server: Receiver<Message>) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut output = stdout.lock();
    for message in from_server {
        message.write(&mut output)?;
        output.flush()?;
    }
    Ok(())
}
