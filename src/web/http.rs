//! Just enough HTTP/1.1 for the web door, by hand on std: the request line
//! and headers of one request, and a response. Plain logic: an HTTP
//! connection's thread reads the bytes and writes the answer; this module
//! only says what they mean.
//!
//! Every connection carries one request and is closed after the answer
//! (`Connection: close`), so there is no keep-alive and no chunked body.
//! The one request with a body is the curl door's `POST /say`, which must
//! say its `Content-Length`; its connection's thread reads the body. An
//! event stream's answer has no length either: it lasts until the
//! connection closes.

use std::fmt::Write as _;

/// The most bytes a request line and its headers may take (431 past it).
pub(crate) const MAX_HEAD_BYTES: usize = 8 * 1024;

/// A parsed request head.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// The path, without any `?query`.
    pub(crate) path: String,
    /// What follows the `?`, as sent.
    query: Option<String>,
    /// Header names in lowercase, values trimmed, in order.
    headers: Vec<(String, String)>,
}

impl Request {
    /// The first header called `name` (give it in lowercase).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value of `name=` in the query, percent-decoded (`+` a space);
    /// `Err` when it is not valid percent-encoded UTF-8.
    pub(crate) fn query_param(&self, name: &str) -> Result<Option<String>, ()> {
        let Some(query) = &self.query else {
            return Ok(None);
        };
        let pair = query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        });
        pair.map(percent_decode).transpose().map_err(|_| ())
    }

    /// Whether a comma-separated header holds `token`, ignoring case
    /// (`Connection: keep-alive, Upgrade`).
    pub(crate) fn header_has(&self, name: &str, token: &str) -> bool {
        self.header(name).is_some_and(|value| {
            value
                .split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    }
}

/// Why a request head was not accepted, as the status it gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// 400: not an HTTP/1.x request.
    BadRequest,
    /// 431: over [`MAX_HEAD_BYTES`].
    TooLarge,
}

/// Where the head ends (after the blank line), if it has arrived whole.
pub(crate) fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|at| at + 4)
        .or_else(|| {
            // Tolerate bare `\n` line ends, as most servers do.
            bytes.windows(2).position(|w| w == b"\n\n").map(|at| at + 2)
        })
}

/// Parses a whole head (what [`head_end`] found).
pub(crate) fn parse_head(head: &[u8]) -> Result<Request, HeadError> {
    if head.len() > MAX_HEAD_BYTES {
        return Err(HeadError::TooLarge);
    }
    let text = std::str::from_utf8(head).map_err(|_| HeadError::BadRequest)?;
    let mut lines = text.lines();
    let request_line = lines.next().ok_or(HeadError::BadRequest)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::BadRequest);
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Err(HeadError::BadRequest);
    }
    let mut headers = Vec::new();
    for line in lines.take_while(|line| !line.is_empty()) {
        let (name, value) = line.split_once(':').ok_or(HeadError::BadRequest)?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query.to_string())),
        None => (target, None),
    };
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        query,
        headers,
    })
}

/// `%XX` escapes as their bytes, `+` as a space (a form's encoding), and
/// the result must be UTF-8.
fn percent_decode(text: &str) -> Result<String, ()> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, after)) = rest.split_first() {
        rest = after;
        match byte {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = rest
                    .get(..2)
                    .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit));
                let hex = hex.and_then(|hex| std::str::from_utf8(hex).ok());
                let value = hex
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .ok_or(())?;
                bytes.push(value);
                rest = &rest[2..];
            }
            _ => bytes.push(byte),
        }
    }
    String::from_utf8(bytes).map_err(|_| ())
}

/// A whole response: status line, headers and body, ready to write. For
/// `HEAD` (`head_only`), the same head, saying the body's length, and no
/// body (RFC 9110, 9.3.2).
pub(crate) fn response(
    status: u16,
    content_type: &str,
    extra_headers: &[(&str, &str)],
    body: &[u8],
    head_only: bool,
) -> Vec<u8> {
    let mut head = String::new();
    let _ = write!(head, "HTTP/1.1 {status} {}\r\n", reason(status));
    let _ = write!(head, "Content-Type: {content_type}\r\n");
    let _ = write!(head, "Content-Length: {}\r\n", body.len());
    head.push_str("Cache-Control: no-store\r\nConnection: close\r\n");
    for (name, value) in extra_headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if !head_only {
        bytes.extend_from_slice(body);
    }
    bytes
}

/// `204 No Content`: done, nothing to say (no length: RFC 9110, 8.6).
pub(crate) fn no_content() -> Vec<u8> {
    b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_vec()
}

/// `100 Continue`: the head is accepted, send the body (curl waits a
/// second for this before it sends a body over 1 KiB).
pub(crate) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The head of an event stream: no length, as it lasts until the
/// connection closes; nothing may store it, and a proxy must not hold it
/// back (`X-Accel-Buffering` is nginx's switch for that).
pub(crate) fn event_stream_head(extra_headers: &[(&str, &str)]) -> Vec<u8> {
    let mut head = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\
         Cache-Control: no-store\r\nConnection: close\r\nX-Accel-Buffering: no\r\n",
    );
    for (name, value) in extra_headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// The WebSocket handshake's answer: no body, and the connection stays
/// open for frames.
pub(crate) fn switching_protocols(accept_key: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept_key}\r\n\r\n"
    )
    .into_bytes()
}

/// A plain-text error page: the status and one sentence.
pub(crate) fn error_response(status: u16, why: &str) -> Vec<u8> {
    let allow: &[(&str, &str)] = if status == 405 {
        &[("Allow", "GET, HEAD")]
    } else {
        &[]
    };
    error_with(status, why, allow)
}

/// Sent with every error page. Its one sentence of plain text needs
/// nothing, so the policy allows nothing (not even framing), and no browser
/// may take the text for another type.
const ERROR_HEADERS: &[(&str, &str)] = &[
    (
        "Content-Security-Policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
];

/// An error page with headers of its own (`Allow: POST`, `Retry-After`).
pub(crate) fn error_with(status: u16, why: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let body = format!("{status} {}: {why}\n", reason(status));
    let headers: Vec<(&str, &str)> = ERROR_HEADERS.iter().chain(headers).copied().collect();
    response(
        status,
        "text/plain; charset=utf-8",
        &headers,
        body.as_bytes(),
        false,
    )
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        421 => "Misdirected Request",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_request_is_parsed() {
        let head = b"GET /ws?x=1 HTTP/1.1\r\nHost: 127.0.0.1:7880\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n";
        assert_eq!(head_end(head), Some(head.len()));
        let request = parse_head(head).unwrap();
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("GET", "/ws")
        );
        assert_eq!(request.header("host"), Some("127.0.0.1:7880"));
        assert!(request.header_has("connection", "upgrade"));
        assert!(!request.header_has("connection", "close"));
    }

    #[test]
    fn query_parameters_are_found_and_percent_decoded() {
        let head = b"GET /events?x=1&name=caf%C3%A9+au&empty=&bare HTTP/1.1\r\n\r\n";
        let request = parse_head(head).unwrap();
        assert_eq!(request.path, "/events");
        assert_eq!(request.query_param("name"), Ok(Some("café au".into())));
        assert_eq!(request.query_param("empty"), Ok(Some(String::new())));
        assert_eq!(request.query_param("bare"), Ok(Some(String::new())));
        assert_eq!(request.query_param("missing"), Ok(None));
        for bad in [
            "name=%", "name=%4", "name=%zz", "name=%+1", "name=%ff", "name=%C3",
        ] {
            let head = format!("GET /events?{bad} HTTP/1.1\r\n\r\n");
            let request = parse_head(head.as_bytes()).unwrap();
            assert_eq!(request.query_param("name"), Err(()), "{bad}");
        }
        let plain = parse_head(b"GET /events HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(plain.query_param("name"), Ok(None));
    }

    #[test]
    fn bad_heads_are_told_apart() {
        assert_eq!(parse_head(b"hello\r\n\r\n"), Err(HeadError::BadRequest));
        assert_eq!(
            parse_head(b"GET / SPDY/3\r\n\r\n"),
            Err(HeadError::BadRequest)
        );
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nno colon\r\n\r\n"),
            Err(HeadError::BadRequest)
        );
        let mut huge = b"GET / HTTP/1.1\r\n".to_vec();
        huge.extend(std::iter::repeat_n(b'x', MAX_HEAD_BYTES));
        assert_eq!(parse_head(&huge), Err(HeadError::TooLarge));
        assert_eq!(
            head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"),
            None,
            "not whole yet"
        );
    }

    #[test]
    fn responses_say_their_length_and_close() {
        let bytes = response(200, "text/plain", &[], b"hi", false);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("Content-Length: 2\r\n") && text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\nhi"));
        let not_allowed = String::from_utf8(error_response(405, "only GET")).unwrap();
        assert!(
            not_allowed.contains("Allow: GET, HEAD\r\n"),
            "{not_allowed}"
        );
        let head = String::from_utf8(response(200, "text/plain", &[], b"hi", true)).unwrap();
        assert!(
            head.contains("Content-Length: 2\r\n") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
    }
}
