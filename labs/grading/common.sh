# What labs/grading/calibrate.sh and check-skeletons.sh share, sourced by
# both once they are at the repository's root: builds the reference server
# and the grader (debug), and sets
#   out     target/grading, where gradings and scratch trees go
#   grader  the grader
#   flags   what every server graded here is started with, after its path:
#           {addr} is the grader's free port; the doors and limits a test of
#           the line protocol does not use are off; the monitor line every
#           second, for the monitor category
out=$PWD/target/grading
mkdir -p "$out"
cargo build -q --bin threadchat --bin threadchat-grade
grader=$PWD/target/debug/threadchat-grade
flags="--addr {addr} --http off --irc off --max-per-addr 0 --rate-limit off --room-rate off --stats-interval 1"
