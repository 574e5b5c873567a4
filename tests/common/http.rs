//! Raw HTTP/1.1 over a `TcpStream`, for the tests of the web door: the
//! request is written as given, byte for byte, so that a test can also send
//! what no HTTP library would. The server closes every connection after its
//! answer (src/web/http.rs), so a response is everything read until the close.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::DEADLINE;

/// A connection to the web door, whose reads give up after the deadline.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr)
        .unwrap_or_else(|e| panic!("cannot connect to the web door at {addr}: {e}"));
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("set_read_timeout");
    stream
}

/// Everything the server sends on `stream` until it closes, read errors
/// included: a server refusing a request may close with part of it unread,
/// which makes the kernel end the connection with a reset, after the answer
/// or, now and then, instead of the rest of it; the status is what a test
/// of a refusal checks.
pub fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

/// Sends `request` as it is and returns whatever came back (see
/// [`read_until_closed`]).
pub fn request(addr: SocketAddr, request: &str) -> String {
    let mut stream = connect(addr);
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    read_until_closed(&mut stream)
}

/// `GET path`: the whole response, which must be read to its end, without
/// an error, as UTF-8 text.
pub fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = connect(addr);
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    let mut response = Vec::new();
    if let Err(e) = stream.read_to_end(&mut response) {
        panic!(
            "GET {path}: reading the response failed ({e}) after {:?}",
            String::from_utf8_lossy(&response)
        );
    }
    String::from_utf8(response)
        .unwrap_or_else(|e| panic!("GET {path}: the response is not UTF-8: {e}"))
}

/// The status code of a response.
pub fn status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"))
}

/// The body of a response.
pub fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}
