//! Splitting a byte stream into lines of bounded length. Runs on each client's
//! reader thread; owns only its buffers; touches no lock and no channel.
//!
//! `BufRead::read_line` would do, except that it keeps reading until it finds
//! a `\n`: a client that sends a gigabyte without one would make the server
//! buffer a gigabyte. This reader never holds more than `max_len` bytes of a
//! line plus one read buffer, whatever arrives.

use std::io::{self, BufRead, BufReader, Read};

/// Bytes asked of the socket per `read` call. Small on purpose: every
/// connected client has one of these for as long as it is connected.
const READ_BUFFER_BYTES: usize = 2048;

/// What the next call to [`LineReader::next_line`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// A complete line without its `\n` (and without a `\r` before it).
    Line(String),
    /// A line longer than the limit. Reported as soon as the limit is
    /// passed; the rest of that line, up to its `\n`, is read and thrown away.
    TooLong,
    /// A complete line of the right length that is not UTF-8.
    NotUtf8,
    /// A last line without its `\n`, cut short by the end of the stream
    /// (`End` comes next). Whether it counts as a line is the caller's
    /// choice: it may be what a client sent just before closing, or half a
    /// line still being typed when the server hung up.
    Unfinished(String),
    /// The peer closed its side (or the socket was shut down).
    End,
}

pub(crate) struct LineReader<R> {
    input: BufReader<R>,
    /// The line read so far; never longer than `max_len + 1`.
    line: Vec<u8>,
    max_len: usize,
    /// True while throwing away the remainder of an over-long line.
    skipping: bool,
}

impl<R: Read> LineReader<R> {
    /// `max_len` counts the bytes before the `\n`; a `\r` before the `\n` is
    /// not counted.
    pub(crate) fn new(input: R, max_len: usize) -> Self {
        LineReader {
            input: BufReader::with_capacity(READ_BUFFER_BYTES, input),
            line: Vec::new(),
            max_len,
            skipping: false,
        }
    }

    /// Waits for the first bytes to arrive and shows them without taking
    /// them; empty at the end of the stream.
    pub(crate) fn peek(&mut self) -> io::Result<&[u8]> {
        loop {
            match self.input.fill_buf() {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                // Re-borrowed here, once the loop has settled on an answer.
                Err(error) => return Err(error),
                Ok(_) => return self.input.fill_buf(),
            }
        }
    }

    /// Blocks until a whole line, an over-long line, or the end of the stream.
    pub(crate) fn next_line(&mut self) -> io::Result<Incoming> {
        loop {
            let available = match self.input.fill_buf() {
                Ok(bytes) => bytes,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            if available.is_empty() {
                self.skipping = false;
                if self.line.is_empty() {
                    return Ok(Incoming::End);
                }
                return Ok(match self.finish_line() {
                    Incoming::Line(line) => Incoming::Unfinished(line),
                    other => other,
                });
            }
            let newline = available.iter().position(|&byte| byte == b'\n');
            let take = newline.unwrap_or(available.len());
            if !self.skipping {
                if self.line.len() + take > self.max_len + 1 {
                    self.line.clear();
                    self.skipping = newline.is_none();
                    self.input.consume(newline.map_or(take, |at| at + 1));
                    return Ok(Incoming::TooLong);
                }
                self.line.extend_from_slice(&available[..take]);
            }
            match newline {
                Some(at) => {
                    self.input.consume(at + 1);
                    if self.skipping {
                        self.skipping = false;
                    } else {
                        return Ok(self.finish_line());
                    }
                }
                None => self.input.consume(take),
            }
        }
    }

    fn finish_line(&mut self) -> Incoming {
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        if self.line.len() > self.max_len {
            self.line.clear();
            return Incoming::TooLong;
        }
        match String::from_utf8(std::mem::take(&mut self.line)) {
            Ok(text) => Incoming::Line(text),
            Err(_) => Incoming::NotUtf8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8], max_len: usize) -> Vec<Incoming> {
        let mut reader = LineReader::new(input, max_len);
        let mut found = Vec::new();
        loop {
            let next = reader.next_line().expect("reading a slice cannot fail");
            let end = next == Incoming::End;
            found.push(next);
            if end {
                return found;
            }
        }
    }

    fn line(text: &str) -> Incoming {
        Incoming::Line(text.to_string())
    }

    #[test]
    fn splits_lines_and_strips_crlf() {
        assert_eq!(
            read_all(b"one\ntwo\r\n\nthree", 10),
            vec![
                line("one"),
                line("two"),
                line(""),
                Incoming::Unfinished("three".to_string()),
                Incoming::End
            ]
        );
    }

    #[test]
    fn a_line_of_exactly_max_len_passes_with_or_without_cr() {
        assert_eq!(
            read_all(b"abcd\nabcd\r\n", 4),
            vec![line("abcd"), line("abcd"), Incoming::End]
        );
    }

    #[test]
    fn over_long_lines_are_reported_once_and_skipped() {
        assert_eq!(
            read_all(b"abcde\nok\n", 4),
            vec![Incoming::TooLong, line("ok"), Incoming::End]
        );
        // Much longer than the read buffer, so it arrives in many pieces.
        let mut input = vec![b'x'; 5 * READ_BUFFER_BYTES];
        input.extend_from_slice(b"\nafter\n");
        assert_eq!(
            read_all(&input, 100),
            vec![Incoming::TooLong, line("after"), Incoming::End]
        );
    }

    #[test]
    fn a_huge_line_without_newline_uses_bounded_memory() {
        let input = vec![b'y'; 1 << 20];
        let mut reader = LineReader::new(&input[..], 64);
        assert_eq!(reader.next_line().unwrap(), Incoming::TooLong);
        assert!(reader.line.capacity() <= 64 + READ_BUFFER_BYTES);
        assert_eq!(reader.next_line().unwrap(), Incoming::End);
    }

    #[test]
    fn invalid_utf8_is_reported_per_line() {
        assert_eq!(
            read_all(b"\xff\xfe\nfine\n", 10),
            vec![Incoming::NotUtf8, line("fine"), Incoming::End]
        );
    }

    #[test]
    fn utf8_split_across_reads_is_joined() {
        let mut input = vec![b'a'; READ_BUFFER_BYTES - 1];
        input.extend_from_slice("é\n".as_bytes());
        let expected = format!("{}é", "a".repeat(READ_BUFFER_BYTES - 1));
        assert_eq!(
            read_all(&input, 4 * READ_BUFFER_BYTES),
            vec![line(&expected), Incoming::End]
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::io::Read;

    /// Hands out the input in the given chunk sizes, as a socket would.
    struct Chunked {
        bytes: Vec<u8>,
        at: usize,
        sizes: Vec<usize>,
        next: usize,
    }

    impl Read for Chunked {
        fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            let size = self
                .sizes
                .get(self.next)
                .copied()
                .unwrap_or(usize::MAX)
                .max(1);
            self.next += 1;
            let n = size.min(buffer.len()).min(self.bytes.len() - self.at);
            buffer[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    /// Everything the reader makes of `bytes` delivered in `sizes`,
    /// checking after each call that it holds at most the limit plus one
    /// byte of any line.
    fn read_chunked(bytes: &[u8], sizes: Vec<usize>, max_len: usize) -> Vec<Incoming> {
        let input = Chunked {
            bytes: bytes.to_vec(),
            at: 0,
            sizes,
            next: 0,
        };
        let mut reader = LineReader::new(input, max_len);
        let mut found = Vec::new();
        loop {
            let next = reader.next_line().expect("reading from memory cannot fail");
            assert!(
                reader.line.len() <= max_len + 1,
                "held {} bytes",
                reader.line.len()
            );
            if let Incoming::Line(line) | Incoming::Unfinished(line) = &next {
                assert!(
                    line.len() <= max_len,
                    "a line of {} bytes passed",
                    line.len()
                );
            }
            let end = next == Incoming::End;
            found.push(next);
            if end {
                return found;
            }
        }
    }

    fn lines_and_junk() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            "[a-z ]{0,12}\n".prop_map(String::into_bytes),
            "\\PC{0,6}\r\n".prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..40),
            Just(vec![b'x'; 70]),
        ];
        proptest::collection::vec(piece, 0..20).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        /// However the bytes are cut into reads, the same lines come out.
        #[test]
        fn any_chunking_gives_the_same_lines(
            bytes in lines_and_junk(),
            sizes in proptest::collection::vec(1usize..50, 0..60),
            max_len in 1usize..64,
        ) {
            let whole = read_chunked(&bytes, vec![usize::MAX], max_len);
            let chunked = read_chunked(&bytes, sizes, max_len);
            prop_assert_eq!(whole, chunked);
        }
    }
}
