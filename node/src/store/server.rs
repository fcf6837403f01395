//! The update store over HTTP (`GET /blobs/<hash>`, `GET /leaves/<root>`, and the models it
//! keeps as checkpoints, `GET /models/<root>`): what a node serves to verifiers,
//! challengers and nodes that join late. Built to stay up under load and against bad
//! peers: every connection is its own task on an event loop, so a slow reader holds nobody
//! up; a connection that moves no byte for [`ServeLimits::stall`] is dropped; one address
//! holds at most [`ServeLimits::per_peer`] connections and the server
//! [`ServeLimits::total`] (others get `503` with the reason); and each file is read from
//! disk and checked once, then served from memory to every request.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{Resource, Store, StoreError};

/// Limits of a store server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections one IP address may hold at once; more are answered `503`.
    pub per_peer: usize,
    /// Connections the server holds at once; more are answered `503`.
    pub total: usize,
    /// A connection that neither reads nor writes a byte for this long is dropped (a
    /// stalled reader, or an idle keep-alive).
    pub stall: Duration,
    /// Files kept in memory after their first read (the most recently added stay).
    pub cached_files: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits { per_peer: 8, total: 512, stall: Duration::from_secs(30), cached_files: 8 }
    }
}

/// A running HTTP server of a store; dropping it stops serving and closes every connection.
pub struct StoreServer {
    /// Where it serves (`http://ip:port`).
    pub url: String,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StoreServer {
    /// How many times a file was read from disk (and its hash checked) since the start.
    pub fn files_read(&self) -> u64 {
        self.state.files_read.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.state.peers.lock().expect("peers lock").total
    }
}

impl Drop for StoreServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves `store` on `addr` (e.g. `127.0.0.1:0` for any free port) from a background thread.
pub fn serve(store: &Store, addr: &str, limits: ServeLimits) -> Result<StoreServer, StoreError> {
    let failed = |why: String| StoreError::Serve { addr: addr.to_string(), why };
    let listener = std::net::TcpListener::bind(addr).map_err(|e| failed(e.to_string()))?;
    listener.set_nonblocking(true).map_err(|e| failed(e.to_string()))?;
    let url = format!("http://{}", listener.local_addr().map_err(|e| failed(e.to_string()))?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| failed(format!("no event loop: {e}")))?;
    let state = Arc::new(State {
        store: store.clone(),
        limits,
        peers: Mutex::default(),
        cache: Mutex::default(),
        files_read: AtomicU64::new(0),
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shared = state.clone();
    let thread = std::thread::Builder::new()
        .name("pogo-store-server".into())
        .spawn(move || {
            runtime.spawn(accept_loop(listener, shared));
            // Until the server is dropped; dropping the runtime then cancels every task.
            runtime.block_on(async {
                let _ = stopped.await;
            });
            runtime.shutdown_timeout(Duration::from_secs(1));
        })
        .map_err(|e| failed(format!("no server thread: {e}")))?;
    Ok(StoreServer { url, state, stop: Some(stop), thread: Some(thread) })
}

/// What every connection shares.
struct State {
    store: Store,
    limits: ServeLimits,
    peers: Mutex<Peers>,
    cache: Mutex<Cache>,
    files_read: AtomicU64,
}

/// Open connections, by address and in all.
#[derive(Default)]
struct Peers {
    by_ip: HashMap<IpAddr, usize>,
    total: usize,
}

/// Files served from memory, and the order they came in (oldest first). Each is a cell
/// filled once: concurrent first requests for a file wait for one read.
#[derive(Default)]
struct Cache {
    files: HashMap<Resource, Arc<tokio::sync::OnceCell<Bytes>>>,
    order: VecDeque<Resource>,
}

/// One admitted connection; it gives its place back when dropped.
struct Slot {
    state: Arc<State>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut peers = self.state.peers.lock().expect("peers lock");
        peers.total -= 1;
        if let Some(n) = peers.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                peers.by_ip.remove(&self.ip);
            }
        }
    }
}

/// A place for a connection from `ip`, or why there is none.
fn admit(state: &Arc<State>, ip: IpAddr) -> Result<Slot, String> {
    let limits = state.limits;
    let mut peers = state.peers.lock().expect("peers lock");
    let mine = peers.by_ip.get(&ip).copied().unwrap_or(0);
    if mine >= limits.per_peer {
        return Err(format!("{ip} already holds {mine} connections (at most {})", limits.per_peer));
    }
    if peers.total >= limits.total {
        return Err(format!("the server holds {} connections (at most {})", peers.total, limits.total));
    }
    peers.total += 1;
    *peers.by_ip.entry(ip).or_default() += 1;
    Ok(Slot { state: state.clone(), ip })
}

async fn accept_loop(listener: std::net::TcpListener, state: Arc<State>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // Out of descriptors, say: wait a little instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let admitted = admit(&state, peer.ip());
        tokio::spawn(connection(stream, admitted, state.clone()));
    }
}

/// Serves one connection (or, when it was not admitted, answers each request `503`).
async fn connection(stream: tokio::net::TcpStream, admitted: Result<Slot, String>, state: Arc<State>) {
    let io = TokioIo::new(Watchdog::new(stream, state.limits.stall));
    let busy: Option<Arc<str>> = admitted.as_ref().err().map(|why| Arc::from(why.as_str()));
    let shared = state.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let (state, busy) = (shared.clone(), busy.clone());
        async move { Ok::<_, Infallible>(respond(&state, busy.as_deref(), &request).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(state.limits.stall)
        .keep_alive(admitted.is_ok())
        .serve_connection(io, service)
        .await;
    drop(admitted);
}

async fn respond(state: &Arc<State>, busy: Option<&str>, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if let Some(why) = busy {
        let mut response = text(StatusCode::SERVICE_UNAVAILABLE, format!("busy: {why}; retry later"));
        response.headers_mut().insert(hyper::header::RETRY_AFTER, hyper::header::HeaderValue::from_static("5"));
        return response;
    }
    if request.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET is served".into());
    }
    match file(state, request.uri().path()).await {
        Some(bytes) => {
            let mut response = Response::new(Full::new(bytes));
            let octets = hyper::header::HeaderValue::from_static("application/octet-stream");
            response.headers_mut().insert(hyper::header::CONTENT_TYPE, octets);
            response
        }
        None => text(StatusCode::NOT_FOUND, "not found".into()),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// The file a request's `path` names ([`Resource`]): from memory, else read (and a blob's
/// hash checked) once, off the event loop, then kept. A file not there yet is looked for
/// again next time (a miner puts its blob after it starts serving).
async fn file(state: &Arc<State>, path: &str) -> Option<Bytes> {
    let resource = Resource::parse(path)?;
    let cell = {
        let mut cache = state.cache.lock().expect("cache lock");
        match cache.files.get(&resource) {
            Some(cell) => cell.clone(),
            None => {
                // Only files that exist take a place: requests for made-up names must not
                // evict (and so make the server re-read and re-hash) the files it serves.
                if !resource.file(&state.store).is_file() {
                    return None;
                }
                let cell: Arc<tokio::sync::OnceCell<Bytes>> = Arc::default();
                cache.files.insert(resource, cell.clone());
                cache.order.push_back(resource);
                while cache.order.len() > state.limits.cached_files.max(1) {
                    if let Some(oldest) = cache.order.pop_front() {
                        cache.files.remove(&oldest);
                    }
                }
                cell
            }
        }
    };
    let bytes = cell
        .get_or_try_init(|| async {
            let store = state.store.clone();
            let read = tokio::task::spawn_blocking(move || resource.read(&store)).await.ok().flatten();
            read.map(|bytes| {
                state.files_read.fetch_add(1, Ordering::Relaxed);
                Bytes::from(bytes)
            })
            .ok_or(())
        })
        .await;
    bytes.ok().cloned()
}

/// An I/O stream that fails once it has made no progress, reading or writing, for `stall`.
struct Watchdog<T> {
    io: T,
    stall: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> Watchdog<T> {
    fn new(io: T, stall: Duration) -> Self {
        Watchdog { io, stall, timer: None }
    }

    /// After the stream said "pending": pending still, or an error once `stall` has passed
    /// since the last progress.
    fn waiting<R>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<R>> {
        let stall = self.stall;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no byte moved for {stall:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn checked<R>(&mut self, polled: Poll<std::io::Result<R>>, cx: &mut Context<'_>) -> Poll<std::io::Result<R>> {
        match polled {
            Poll::Pending => self.waiting(cx),
            ready => {
                self.timer = None;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watchdog<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        self.checked(polled, cx)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watchdog<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.checked(polled, cx)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.checked(polled, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use alloy::primitives::B256;
    use std::net::TcpStream;
    use std::time::Instant;

    use super::*;

    /// A store holding one blob of `len` bytes that do not compress; its hash.
    fn store_with_blob(len: usize) -> (tempfile::TempDir, Store, B256) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let bytes: Vec<u8> = (0..len as u64).map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8).collect();
        let hash = store.put_blob(&bytes).unwrap();
        (dir, store, hash)
    }

    /// Sends `GET path` on a new connection and never reads the answer.
    fn stalled_request(url: &str, path: &str) -> TcpStream {
        let mut stream = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: pogo\r\n\r\n").unwrap();
        stream
    }

    /// Polls `done` every 20 ms for up to 10 s.
    fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(10), "{what} never happened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn status_of(url: &str, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: pogo\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        let answer = String::from_utf8_lossy(&answer).to_string();
        let code = answer.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        (code, answer)
    }

    #[test]
    fn a_stalled_reader_holds_up_nobody_and_is_dropped() {
        // 32 MB: more than loopback's socket buffers, so the stalled download really blocks.
        let (_dir, store, hash) = store_with_blob(32 << 20);
        let limits = ServeLimits { stall: Duration::from_millis(500), ..ServeLimits::default() };
        let server = store.serve_with("127.0.0.1:0", limits).unwrap();
        let path = format!("/blobs/{}", hex::encode(hash));
        let stalled = stalled_request(&server.url, &path);
        eventually("the stalled request being admitted", || server.connections() == 1);
        // A fast verifier gets the whole blob meanwhile, checked against its hash.
        let other = tempfile::tempdir().unwrap();
        let fetched = Store::new(other.path()).fetch_blob(hash, std::slice::from_ref(&server.url), 64 << 20).unwrap();
        assert_eq!(fetched.len(), 32 << 20);
        // The stalled connection is dropped once no byte has moved for `stall`.
        eventually("the stalled connection being dropped", || server.connections() == 0);
        drop(stalled);
        assert_eq!(server.files_read(), 1, "the blob was read and hashed once for both requests");
    }

    #[test]
    fn one_address_holds_at_most_per_peer_connections_and_gets_told_why() {
        let (_dir, store, hash) = store_with_blob(1024);
        let limits = ServeLimits { per_peer: 2, ..ServeLimits::default() };
        let server = store.serve_with("127.0.0.1:0", limits).unwrap();
        let path = format!("/blobs/{}", hex::encode(hash));
        let held: Vec<TcpStream> =
            (0..2).map(|_| TcpStream::connect(server.url.trim_start_matches("http://")).unwrap()).collect();
        eventually("two connections held", || server.connections() == 2);
        let (code, answer) = status_of(&server.url, &path);
        assert_eq!(code, 503, "{answer}");
        assert!(answer.contains("127.0.0.1 already holds 2 connections (at most 2)"), "{answer}");
        assert!(answer.to_ascii_lowercase().contains("retry-after: 5"), "{answer}");
        drop(held);
        eventually("the places given back", || server.connections() == 0);
        let (code, answer) = status_of(&server.url, &path);
        assert_eq!(code, 200, "{answer}");
        // Unknown files and other methods are refused; many reads, one disk read.
        assert_eq!(status_of(&server.url, "/blobs/00").0, 404);
        assert_eq!(status_of(&server.url, "/etc/passwd").0, 404);
        for _ in 0..5 {
            assert_eq!(status_of(&server.url, &path).0, 200);
        }
        // Other spellings of the same name are the same file, not new cache entries.
        let hex = hex::encode(hash);
        for other in [format!("/blobs/0x{hex}"), format!("/blobs/{}", hex.to_uppercase()), format!("//blobs/{hex}")] {
            assert_eq!(status_of(&server.url, &other).0, 200, "{other}");
        }
        assert_eq!(server.files_read(), 1);
        let mut post = TcpStream::connect(server.url.trim_start_matches("http://")).unwrap();
        write!(post, "POST {path} HTTP/1.1\r\nHost: pogo\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        post.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    }

    #[test]
    fn the_cache_keeps_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let hashes: Vec<B256> = (0..3u8).map(|i| store.put_blob(&[i; 100]).unwrap()).collect();
        let server =
            store.serve_with("127.0.0.1:0", ServeLimits { cached_files: 2, ..ServeLimits::default() }).unwrap();
        let get = |h: &B256| status_of(&server.url, &format!("/blobs/{}", hex::encode(h))).0;
        for h in &hashes {
            assert_eq!(get(h), 200);
        }
        assert_eq!(server.files_read(), 3);
        assert_eq!((get(&hashes[1]), get(&hashes[2])), (200, 200));
        assert_eq!(server.files_read(), 3, "the two newest are in memory");
        assert_eq!(get(&hashes[0]), 200);
        assert_eq!(server.files_read(), 4, "the oldest was evicted and read again");
        // Requests for files that are not there take no place in the cache.
        for i in 0..10u8 {
            assert_eq!(get(&B256::repeat_byte(i)), 404);
        }
        assert_eq!((get(&hashes[2]), get(&hashes[0])), (200, 200));
        assert_eq!(server.files_read(), 4, "still in memory");
    }
}
