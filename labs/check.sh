#!/usr/bin/env bash
# Checks every lab (docs/LABS.md): its patch still applies to the current
# code, the lab's test fails with the patch, and passes again without it.
# Run from the repository root: bash labs/check.sh. The working tree is
# restored after each lab, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

# lab directory | the cargo test arguments that must fail with the patch
labs=(
    "01-check-then-act|--lib racing_claims_give_the_name_to_exactly_one"
    "02-silent-gap|--lib the_notice_does_not_wait_for_a_later_line"
    "03-blocking-send|--lib delivering_to_a_full_backlog_never_waits"
    "04-lines-not-bytes|--test memory"
    "05-release-too-soon|--lib a_name_claimed_again_before_its_release_stays_held"
    "06-half-line|--test suite hostile::a_client_whose_queue_stays_full_is_disconnected_and_the_room_is_unaffected"
    "07-recursive-read|--lib listing_names_while_others_claim_never_deadlocks"
    "08-no-drain|--lib connections_still_in_the_channel_at_shutdown_are_told_and_let_go"
    "09-split-lock|--lib publishing_while_others_take_snapshots_never_deadlocks"
)

applied=""
restore() {
    if [ -n "$applied" ]; then
        git apply -R "$applied"
        applied=""
    fi
}
trap restore EXIT

passed=0
failed=0
for entry in "${labs[@]}"; do
    lab=${entry%%|*}
    test_args=${entry#*|}
    patch="labs/$lab/change.patch"
    if ! git apply --check "$patch"; then
        echo "lab $lab: FAILED: its patch no longer applies"
        failed=$((failed + 1))
        continue
    fi
    git apply "$patch"
    applied=$patch
    # shellcheck disable=SC2086 # the arguments are words on purpose
    if cargo test -q $test_args > "target/lab-$lab.log" 2>&1; then
        echo "lab $lab: FAILED: 'cargo test $test_args' passes with the patch"
        failed=$((failed + 1))
        restore
        continue
    fi
    restore
    # shellcheck disable=SC2086
    if cargo test -q $test_args > "target/lab-$lab.log" 2>&1; then
        echo "lab $lab: ok (the test fails with the patch, passes without)"
        passed=$((passed + 1))
    else
        echo "lab $lab: FAILED: 'cargo test $test_args' fails without the patch too"
        failed=$((failed + 1))
    fi
done
echo "labs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
