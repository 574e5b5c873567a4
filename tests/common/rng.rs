//! The one random number generator of the tests and the load generator:
//! xorshift64*, seeded, so that a failing run can be repeated byte for byte,
//! and written out here so that neither needs a crate for it. The load
//! generator includes this file with `#[path]`.

use std::time::Duration;

/// xorshift64* (Vigna, 2016): three shifts and a multiply per number.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`; any seed works, 0 included.
    pub fn new(seed: u64) -> Rng {
        // xorshift's state must never be 0; mixing the seed first also
        // makes nearby seeds give unrelated sequences.
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number from 0 to `n - 1` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A duration from `from` to `to` milliseconds, `to` excluded.
    pub fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to.saturating_sub(from)))
    }
}
