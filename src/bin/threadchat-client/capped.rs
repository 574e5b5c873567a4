//! Reading one line with a ceiling on its length. Plain logic over any
//! `BufRead`; both of the client's threads read lines with it (the printer
//! from the socket, the typist from the keyboard), so neither can be made to
//! buffer without bound by a line that never ends.

use std::io::{self, BufRead};

#[derive(Debug, PartialEq, Eq)]
pub enum LineRead {
    /// A line is in the buffer, without its `\n`. The last line of the
    /// input counts even if it has no `\n`.
    Line,
    /// The line was longer than the ceiling; it was read to its end and
    /// thrown away, and the buffer is empty.
    TooLong,
    /// Nothing more to read.
    End,
}

/// Reads the next line into `line` (cleared first), keeping at most `cap`
/// bytes of it.
pub fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>, cap: usize) -> io::Result<LineRead> {
    line.clear();
    let mut read_any = false;
    let mut too_long = false;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            return Ok(match (read_any, too_long) {
                (false, _) => LineRead::End,
                (true, true) => LineRead::TooLong,
                (true, false) => LineRead::Line,
            });
        }
        read_any = true;
        let newline = available.iter().position(|&byte| byte == b'\n');
        let part = &available[..newline.unwrap_or(available.len())];
        if !too_long {
            if line.len() + part.len() > cap {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(part);
            }
        }
        match newline {
            Some(at) => {
                input.consume(at + 1);
                return Ok(if too_long {
                    LineRead::TooLong
                } else {
                    LineRead::Line
                });
            }
            None => {
                let used = available.len();
                input.consume(used);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor};

    fn read_all(input: &[u8], cap: usize) -> Vec<(LineRead, String)> {
        // A tiny buffer, so lines arrive in many pieces as from a socket.
        let mut input = BufReader::with_capacity(3, Cursor::new(input.to_vec()));
        let mut line = Vec::new();
        let mut reads = Vec::new();
        loop {
            let read = read_line(&mut input, &mut line, cap).expect("reading memory cannot fail");
            let end = read == LineRead::End;
            reads.push((read, String::from_utf8_lossy(&line).into_owned()));
            if end {
                return reads;
            }
        }
    }

    #[test]
    fn lines_come_without_their_newline_and_the_last_may_lack_one() {
        assert_eq!(
            read_all(b"one\n\ntwo words\nlast", 100),
            [
                (LineRead::Line, "one".to_string()),
                (LineRead::Line, String::new()),
                (LineRead::Line, "two words".to_string()),
                (LineRead::Line, "last".to_string()),
                (LineRead::End, String::new()),
            ]
        );
    }

    #[test]
    fn a_line_over_the_ceiling_is_skipped_whole_and_reading_goes_on() {
        assert_eq!(
            read_all(b"12345\n1234567\n123456", 5),
            [
                (LineRead::Line, "12345".to_string()),
                (LineRead::TooLong, String::new()),
                (LineRead::TooLong, String::new()),
                (LineRead::End, String::new()),
            ]
        );
    }
}
