//! A scripted HTTP endpoint for fault tests: it records every request exactly as it
//! arrived on the socket and answers each connection by the next step of a script
//! (a status code, or hanging without an answer). Once the script is used up it answers
//! 200. Binds 127.0.0.1 only; stops when dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the endpoint answers one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Reply(u16),
    /// Read the request, then never answer (the connection stays open).
    Hang,
}

/// One request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// E.g. `PUT /bucket/key%7Cx?Signature=... HTTP/1.1`, byte for byte.
    pub request_line: String,
    /// Names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status this request was answered with (`None`: left hanging).
    pub answered: Option<u16>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    script: Vec<Step>,
    next: AtomicUsize,
    captured: Mutex<Vec<Captured>>,
}

pub struct ScriptedServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl ScriptedServer {
    pub async fn start(script: Vec<Step>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            script,
            ..State::default()
        });
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, Arc::clone(&shared)));
            }
        });
        Ok(Self { addr, state, task })
    }

    /// `http://127.0.0.1:<port>` followed by `path_and_query` as given.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.state
            .captured
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Requests that were answered with a 2xx, i.e. delivered.
    pub fn delivered(&self) -> Vec<Captured> {
        self.requests()
            .into_iter()
            .filter(|r| r.answered.is_some_and(|s| (200..300).contains(&s)))
            .collect()
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut socket: TcpStream, state: Arc<State>) {
    let Some((head, body)) = read_request(&mut socket).await else {
        return;
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let step = state
        .script
        .get(state.next.fetch_add(1, Ordering::SeqCst))
        .copied()
        .unwrap_or(Step::Reply(200));
    let answered = match step {
        Step::Reply(status) => Some(status),
        Step::Hang => None,
    };
    state
        .captured
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Captured {
            request_line,
            headers,
            body,
            answered,
        });
    match step {
        Step::Reply(status) => {
            let answer = format!(
                "HTTP/1.1 {status} Scripted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            // The client may already have given up; that is its business.
            let _ = socket.write_all(answer.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
        Step::Hang => std::future::pending::<()>().await,
    }
}

/// Reads the head and a `Content-Length` body; `None` if the client hung up early.
async fn read_request(socket: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = socket.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buf.split_off(head_end + 4);
    while body.len() < length {
        let n = socket.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}
