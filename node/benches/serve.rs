//! `cargo bench -p pogo-node --bench serve`: the issue-18 load test on loopback. One
//! miner's store serves one update blob (`POGO_SERVE_MB`, default 50 MB) to
//! `POGO_SERVE_VERIFIERS` verifiers at once (default 100), of which `POGO_SERVE_SLOW`
//! (default 10) read at 10 KB/s. Every verifier connects from its own loopback address
//! (127.0.0.x, as separate machines would), and each is one task of one client event loop.
//! Reports whether every fast verifier got the whole blob, the time until the last fast one
//! had it, the fastest and median fast times, and the bytes the miner uploaded divided by
//! the blob's size (fast verifiers' bytes plus what the slow ones had read by then).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pogo_node::store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Downloads `path` from `server` out of `local`, reading at most `rate` bytes a second
/// (0: as fast as it comes); counts bytes into `total`; the body length, or an error.
async fn fetch(
    local: Ipv4Addr,
    server: SocketAddr,
    path: String,
    rate: u64,
    total: Arc<AtomicU64>,
) -> Result<u64, String> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket.bind(SocketAddr::new(local.into(), 0)).map_err(|e| e.to_string())?;
    let mut stream = socket.connect(server).await.map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: pogo\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; if rate == 0 { 1 << 16 } else { rate as usize / 10 }];
    let mut got = 0u64;
    loop {
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        got += n as u64;
        total.fetch_add(n as u64, Ordering::Relaxed);
        if rate > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(got)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let size = env("POGO_SERVE_MB", 50) << 20;
    let verifiers = env("POGO_SERVE_VERIFIERS", 100) as usize;
    let slow = env("POGO_SERVE_SLOW", 10) as usize;
    let dir = tempfile::tempdir().expect("a temp folder");
    let store = Store::new(dir.path());
    let blob: Vec<u8> = (0..size).map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8).collect();
    let hash = store.put_blob(&blob).expect("storing the blob");
    let server = store.serve("0.0.0.0:0").expect("serving");
    let port: u16 = server.url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
    let target = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
    let path = format!("/blobs/{}", hex::encode(hash));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("an event loop");
    let uploaded = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let (fast_times, failures) = runtime.block_on(async {
        let mut fast = Vec::new();
        for i in 0..verifiers {
            let local = Ipv4Addr::new(127, 0, (1 + i / 250) as u8, (1 + i % 250) as u8);
            let rate = if i < slow { 10 * 1024 } else { 0 };
            let task = tokio::spawn(fetch(local, target, path.clone(), rate, uploaded.clone()));
            if rate == 0 {
                fast.push(task);
            }
        }
        let mut times = Vec::new();
        let mut failures = Vec::new();
        for task in fast {
            match task.await {
                Ok(Ok(n)) if n >= size => times.push(start.elapsed().as_secs_f64()),
                Ok(Ok(n)) => failures.push(format!("{n} of {size} bytes")),
                Ok(Err(e)) => failures.push(e),
                Err(e) => failures.push(e.to_string()),
            }
        }
        (times, failures)
    });
    let mut sorted = fast_times.clone();
    sorted.sort_by(f64::total_cmp);
    let last = sorted.last().copied().unwrap_or(f64::NAN);
    let ratio = uploaded.load(Ordering::Relaxed) as f64 / size as f64;
    println!("| blob | verifiers (slow at 10 KB/s) | fast verifiers with the whole blob | first fast done | median fast | last fast done | miner upload ÷ blob size (at that moment) | disk reads of the blob |");
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {} MB | {verifiers} ({slow}) | {} of {} | {:.2} s | {:.2} s | {last:.2} s | {ratio:.1} | {} |",
        size >> 20,
        fast_times.len(),
        verifiers - slow,
        sorted.first().copied().unwrap_or(f64::NAN),
        sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN),
        server.files_read(),
    );
    if !failures.is_empty() {
        println!("failures: {}", failures.join("; "));
    }
    // The slow readers are still downloading: dropping the runtime and the server ends them.
    drop(runtime);
    drop(server);
}
