//! A deliberately tiny HTTP/1.1 server for `/metrics`: one connection at a time, GET (and
//! HEAD) only, the request head bounded in size and time, `Connection: close` on every answer.

use prometheus::{Encoder, Registry, TextEncoder};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The largest request head accepted (request line and headers); a body is never read.
pub const MAX_REQUEST_BYTES: usize = 8192;
/// A client gets this long to send its request head and to take the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

pub(crate) fn serve(listener: TcpListener, registry: &Registry, stop: &AtomicBool) {
    // Non-blocking accept (set by `MetricsServer::start`) polled every 50 ms, so that `stop`
    // is seen.
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = handle(stream, registry);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn handle(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut buf = vec![0u8; MAX_REQUEST_BYTES];
    let mut len = 0;
    let head_end = loop {
        if let Some(p) = find(&buf[..len], b"\r\n\r\n") {
            break p;
        }
        if len == buf.len() {
            return refuse(
                &mut stream,
                "431 Request Header Fields Too Large",
                b"request head too large\n",
            );
        }
        if Instant::now() >= deadline {
            return refuse(&mut stream, "408 Request Timeout", b"request timeout\n");
        }
        match stream.read(&mut buf[len..]) {
            Ok(0) => return Ok(()), // closed before a full request
            Ok(n) => len += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return refuse(&mut stream, "408 Request Timeout", b"request timeout\n");
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut parts = head.lines().next().unwrap_or("").split(' ');
    let (method, target, version) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return refuse(&mut stream, "400 Bad Request", b"bad request\n");
    }
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return refuse(&mut stream, "405 Method Not Allowed", b"GET only\n");
    }
    let path = target.split('?').next().unwrap_or("");
    match path {
        "/metrics" => {
            let body = render(registry);
            respond(
                &mut stream,
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                body.as_bytes(),
                head_only,
            )
        }
        "/" => respond(
            &mut stream,
            "200 OK",
            "text/plain; charset=utf-8",
            b"chronicle: metrics on /metrics\n",
            head_only,
        ),
        _ => respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            b"not found\n",
            head_only,
        ),
    }
}

/// A refusal in plain text, its body always sent: the method is not known yet, or not HEAD.
fn refuse(stream: &mut TcpStream, status: &str, body: &[u8]) -> std::io::Result<()> {
    respond(stream, status, "text/plain", body, false)
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        body.len(),
        if status.starts_with("405") { "Allow: GET, HEAD\r\n" } else { "" }
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    stream.write_all(&out)?;
    stream.flush()?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
