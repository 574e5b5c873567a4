//! The curl door's tokens: 128 random bits, which let a `/say` request
//! speak as the name its `/events` stream registered. Plain data; made on
//! the `http-N` thread that opens a stream, which reads the operating
//! system's random source for them.
//!
//! A token is a password for one stream's life: whoever has it can chat as
//! that name. So it must be unguessable, not merely different each time,
//! and std has no generator that promises that. The project's other
//! randomness is not for secrets: tests/common/rng.rs is xorshift, seeded
//! so that a run can be repeated, and a server's id (`cluster::ServerId`)
//! only has to differ from the others'. So a token is read from
//! `/dev/urandom`, the kernel's cryptographic generator, wherever it exists
//! (Linux, macOS, the BSDs). Elsewhere (Windows) it falls back to std's
//! `RandomState`, and says so once in the log: each `RandomState` is keyed
//! from the system's random source (BCryptGenRandom on Windows) and hashes
//! with SipHash, so two of its hashes over a counter and the time are hard
//! to predict; but std does not promise that it is a cryptographic
//! generator, and the keys are drawn once per thread and then counted up.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

/// Bytes in a token: 128 bits.
const TOKEN_BYTES: usize = 16;

/// One stream's token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Token([u8; TOKEN_BYTES]);

impl Token {
    /// A new token: from `/dev/urandom`, or the fallback (see the module).
    pub(crate) fn random() -> Token {
        Token(urandom().unwrap_or_else(|error| {
            static SAID: AtomicBool = AtomicBool::new(false);
            if !SAID.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "web: cannot read /dev/urandom ({error}); curl door tokens come from \
                     std's RandomState instead, which std does not promise is cryptographic"
                );
            }
            fallback()
        }))
    }

    /// Reads back what [`Display`](fmt::Display) wrote: 32 hexadecimal
    /// digits, either case.
    pub(crate) fn parse(text: &str) -> Option<Token> {
        let text = text.as_bytes();
        if text.len() != 2 * TOKEN_BYTES {
            return None;
        }
        let mut bytes = [0u8; TOKEN_BYTES];
        for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            let digit = |c: u8| (c as char).to_digit(16);
            *byte = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
        }
        Some(Token(bytes))
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

/// Never logged: a token is a password.
impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

fn urandom() -> io::Result<[u8; TOKEN_BYTES]> {
    let mut bytes = [0u8; TOKEN_BYTES];
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// Two 64-bit SipHash values, each under fresh `RandomState` keys, over a
/// counter (so that no two calls hash the same input), the wall clock and
/// a monotonic clock.
fn fallback() -> [u8; TOKEN_BYTES] {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let started = Instant::now();
    let mut bytes = [0u8; TOKEN_BYTES];
    for half in bytes.chunks_exact_mut(8) {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
        let since_epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH);
        hasher.write_u128(since_epoch.map_or(0, |d| d.as_nanos()));
        hasher.write_u128(started.elapsed().as_nanos());
        half.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_token_reads_back_as_written_and_nothing_else_reads() {
        let token = Token::random();
        let text = token.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(Token::parse(&text), Some(token));
        assert_eq!(Token::parse(&text.to_uppercase()), Some(token));
        for bad in ["", "00", &"0".repeat(31), &"0".repeat(33), &"g".repeat(32)] {
            assert_eq!(Token::parse(bad), None, "{bad:?}");
        }
        let multibyte = format!("{}é", "0".repeat(30));
        assert_eq!(Token::parse(&multibyte), None);
        assert_eq!(format!("{token:?}"), "Token(..)", "never in a log");
    }

    #[test]
    fn tokens_differ_and_use_all_their_bits_from_either_source() {
        for make in [Token::random as fn() -> Token, || Token(fallback())] {
            let tokens: HashSet<Token> = (0..1000).map(|_| make()).collect();
            assert_eq!(tokens.len(), 1000);
            // Every bit is set in some token and clear in another.
            let (mut ones, mut zeros) = ([0u8; TOKEN_BYTES], [0u8; TOKEN_BYTES]);
            for token in &tokens {
                for (i, byte) in token.0.iter().enumerate() {
                    ones[i] |= byte;
                    zeros[i] |= !byte;
                }
            }
            assert_eq!((ones, zeros), ([0xff; TOKEN_BYTES], [0xff; TOKEN_BYTES]));
        }
    }
}
