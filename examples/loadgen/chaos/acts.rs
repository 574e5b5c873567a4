//! What a chaos client does when its turn comes: one act drawn at random,
//! weighted (half of them chat), and the agenda that says whose turn it is.
//! Every draw comes from the one seeded `Rng`, in a fixed order, so that a
//! run's acts can be repeated with `--seed`.

use std::cmp::Reverse;
use std::io;
use std::time::Instant;

use super::client::{Chaos, Phase};
use super::{GREEDY_ASKS, MEAN_ACTION_GAP_MS, ROOMS};

impl Chaos {
    /// Runs whatever is due: actions, reconnections, ends of pauses.
    pub fn run_agenda(&mut self, now: Instant) -> io::Result<()> {
        while let Some(Reverse((when, index))) = self.agenda.peek().copied() {
            if when > now {
                break;
            }
            self.agenda.pop();
            match self.sims[index].phase {
                Phase::Away(back) if back <= now => self.connect(index)?,
                Phase::Away(_) => {}
                Phase::Registering => {}
                Phase::Active if self.sims[index].paused_until.is_some_and(|u| u <= now) => {
                    // A pause ended: read what waited, then carry on acting.
                    self.on_readable(index);
                    if self.acting {
                        self.agenda.push(Reverse((now, index)));
                    }
                }
                Phase::Active if self.acting && self.sims[index].paused_until.is_none() => {
                    self.act(index, now)
                }
                Phase::Active => {}
            }
        }
        Ok(())
    }

    /// The client's next random act. Those that send a line are followed by
    /// the next act; a pause or a greedy stall is followed by its end, a
    /// disconnect by the return.
    fn act(&mut self, index: usize, now: Instant) {
        let line = match self.rng.below(1000) {
            0..=4 => return self.turn_greedy(index, now),
            5..=499 => self.chat(index),
            500..=579 => self.join(index),
            580..=619 => self.rename(index),
            620..=679 => self.whisper(),
            680..=729 => self.junk(),
            730..=759 => {
                self.counts.over_long += 1;
                vec![b'x'; 2000]
            }
            760..=779 => {
                self.counts.disconnects += 1;
                return self.drop_connection(index);
            }
            780..=809 => return self.pause_reading(index, now),
            _ => self.ask_list(),
        };
        self.send(index, &line);
        let next = now
            + self
                .rng
                .millis(MEAN_ACTION_GAP_MS / 4, MEAN_ACTION_GAP_MS * 7 / 4);
        self.agenda.push(Reverse((next, index)));
    }

    /// Stops reading and asks for far more than the kernel holds.
    fn turn_greedy(&mut self, index: usize, now: Instant) {
        self.counts.greedy += 1;
        let resume = now + self.rng.millis(4000, 8000);
        self.sims[index].paused_until = Some(resume);
        self.agenda.push(Reverse((resume, index)));
        let asks = "/users\n".repeat(GREEDY_ASKS);
        self.send(index, asks.trim_end().as_bytes());
    }

    fn pause_reading(&mut self, index: usize, now: Instant) {
        self.counts.pauses += 1;
        let resume = now + self.rng.millis(1000, 5000);
        self.sims[index].paused_until = Some(resume);
        self.agenda.push(Reverse((resume, index)));
    }

    fn chat(&mut self, index: usize) -> Vec<u8> {
        self.counts.chat_sent += 1;
        let sim = &mut self.sims[index];
        let line = format!("CH {index} {} {}", sim.stint, sim.next_seq);
        sim.next_seq += 1;
        line.into_bytes()
    }

    fn join(&mut self, index: usize) -> Vec<u8> {
        self.counts.joins += 1;
        // Lines after this go to another room: a new stint.
        let sim = &mut self.sims[index];
        sim.stint += 1;
        sim.next_seq = 0;
        let room = ROOMS[self.rng.below(ROOMS.len() as u64) as usize];
        format!("/join {room}").into_bytes()
    }

    fn rename(&mut self, index: usize) -> Vec<u8> {
        self.counts.renames += 1;
        let sim = &mut self.sims[index];
        sim.renames += 1;
        format!("/nick c{index}n{}r{}", sim.connection, sim.renames).into_bytes()
    }

    fn whisper(&mut self) -> Vec<u8> {
        self.counts.whispers += 1;
        let to = self.rng.below(self.sims.len() as u64);
        format!("/w c{to}n1 WH psst").into_bytes()
    }

    /// Random bytes, never valid: an escape at least.
    fn junk(&mut self) -> Vec<u8> {
        self.counts.junk += 1;
        let mut junk: Vec<u8> = (0..1 + self.rng.below(60))
            .map(|_| self.rng.below(256) as u8)
            .filter(|&b| b != b'\n')
            .collect();
        junk.insert(0, 0x1b);
        junk
    }

    fn ask_list(&mut self) -> Vec<u8> {
        self.counts.lists += 1;
        let commands = ["/users", "/rooms", "/who", "/stats", "/help", "/me waves"];
        commands[self.rng.below(commands.len() as u64) as usize]
            .as_bytes()
            .to_vec()
    }
}
