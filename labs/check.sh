#!/usr/bin/env bash
# Checks every lab (docs/LABS.md) against the current code. A lab is a
# folder labs/NN-name/ with:
#   change.patch  the change, its comments explaining it (the guided form);
#                 without the comment lines it adds, it is the diagnose form
#   test          the test that must fail with it: `cargo test` arguments,
#                 or `loom` then the arguments of a model test, which runs
#                 as CI runs the model tests (--cfg loom, release, target/loom)
#   expected      lines the failing run's output must each contain
#   report.md     the symptom as a user would report it (the diagnose form,
#                 which labs/diagnose.sh makes a student's copy of the tree for)
# or, for a lab with nothing to break (a measurement), only:
#   run           a command that must succeed
#
# For each patch, its diagnose form (what a student is given) must apply,
# add no comment that names a lab, build with no warning, be formatted as
# rustfmt would, and make its test fail with the expected text; the guided
# form must apply too, and a student's copy must be made of it. Then, with
# no patch, every lab's test must pass and every `run` succeed. Each run's
# log is kept in target/labs/ and named in the output. The working tree is
# restored after each lab, whatever happens.
#
# bash labs/check.sh [NN ...]   (from anywhere; NN picks labs by number)
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."
logs=target/labs
mkdir -p "$logs"
started=$SECONDS

# The command for a lab's `test` line, with extra cargo flags ($2, e.g.
# --no-run) put in front of the test's own arguments.
command_for() {
    local line extra=$2
    line=$(head -n 1 "$1/test")
    case $line in
        loom\ *) echo "RUSTFLAGS='--cfg loom' LOOM_MAX_PREEMPTIONS=4 CARGO_TARGET_DIR=target/loom" \
            "cargo test --release $extra ${line#loom }" ;;
        *) echo "cargo test $extra $line" ;;
    esac
}

# The diagnose form: the patch without the comment lines it adds.
bare_patch() {
    grep -v -E '^\+[[:space:]]*//' "$1/change.patch"
}

applied=""
restore() {
    if [ -n "$applied" ]; then
        git apply -R --recount "$applied"
        applied=""
    fi
}
trap restore EXIT

# A lab fails if any of its checks does; it is counted once, at the end.
declare -A failed_labs=()
fail() {
    echo "lab $1: FAILED: $2${3:+ (log: $3)}"
    if [ -n "${3:-}" ] && [ -f "$3" ]; then
        tail -n 5 "$3" | sed 's/^/    /'
    fi
    failed_labs[$1]=1
}

# The labs asked for, or all of them.
labs=()
for dir in labs/[0-9][0-9]-*/; do
    dir=${dir%/}
    if [ $# -eq 0 ]; then
        labs+=("$dir")
    else
        for wanted in "$@"; do
            case ${dir#labs/} in "$wanted"-*) labs+=("$dir") ;; esac
        done
    fi
done

is_loom() { [ -f "$1/test" ] && head -n 1 "$1/test" | grep -q '^loom '; }

# Without any patch: the lab's test passes, or its measurement runs.
check_clean() {
    local dir=$1 lab=${1#labs/} log="$logs/${1#labs/}.clean.log" run
    if [ -f "$dir/run" ]; then
        run=$(head -n 1 "$dir/run")
        if bash -c "$run" > "$log" 2>&1; then
            echo "lab $lab: ok, it runs (log: $log)"
        else
            fail "$lab" "'$run' fails" "$log"
        fi
    elif bash -c "$(command_for "$dir" "")" > "$log" 2>&1; then
        echo "lab $lab: passes without the patch"
    else
        fail "$lab" "'$(command_for "$dir" "")' fails without the patch too" "$log"
    fi
}

# With the patch's diagnose form: it builds with no warning, and the test
# fails as expected.
check_patched() {
    local dir=$1 lab=${1#labs/} log="$logs/${1#labs/}.log" bare="$logs/${1#labs/}.diagnose.patch"
    local missing="" want
    bare_patch "$dir" > "$bare"
    if ! git apply --check "$dir/change.patch" 2> "$log"; then
        fail "$lab" "its patch no longer applies" "$log"
        return
    fi
    if grep -E '^\+[^+]' "$bare" | grep -q -i -w 'lab'; then
        fail "$lab" "its diagnose form still names a lab (a comment not on a line of its own?)"
        return
    fi
    if ! git apply --check --recount "$bare" 2> "$log"; then
        fail "$lab" "its patch without comments does not apply" "$log"
        return
    fi
    git apply --recount "$bare"
    applied=$bare
    if ! bash -c "$(command_for "$dir" --no-run)" > "$log" 2>&1; then
        fail "$lab" "the code does not compile with the patch" "$log"
    elif grep -q '^warning' "$log"; then
        fail "$lab" "the patch leaves a compiler warning, which points at it" "$log"
    elif ! cargo fmt --all -- --check >> "$log" 2>&1; then
        fail "$lab" "the patch is not formatted as rustfmt would, which points at it" "$log"
    elif bash -c "$(command_for "$dir" "")" >> "$log" 2>&1; then
        fail "$lab" "'$(command_for "$dir" "")' passes with the patch" "$log"
    else
        grep -q '[^[:space:]]' "$dir/expected" || missing="(expected is empty)"
        while IFS= read -r want; do
            [ -z "$want" ] || grep -q -F -- "$want" "$log" || missing=$want
        done < "$dir/expected"
        if [ -n "$missing" ]; then
            fail "$lab" "the test fails, but its output lacks \"$missing\"" "$log"
        else
            echo "lab $lab: fails as expected with the patch (log: $log)"
        fi
    fi
    restore
    check_copy "$dir"
}

# A student's copy for the diagnose form can be made, and has the report.
check_copy() {
    local dir=$1 lab=${1#labs/} copy="$logs/copy-${1#labs/}" log="$logs/${1#labs/}.copy.log"
    rm -rf "$copy"
    if ! bash labs/diagnose.sh "${lab%%-*}" "$copy" > "$log" 2>&1; then
        fail "$lab" "labs/diagnose.sh cannot make a student's copy" "$log"
    elif ! grep -q -F -- "$(head -n 1 "$dir/report.md")" "$copy/docs/LABS.md"; then
        fail "$lab" "the student's copy lacks the report ($dir/report.md)" "$log"
    fi
    rm -rf "$copy"
}

for dir in "${labs[@]}"; do
    if [ -f "$dir/run" ]; then
        continue
    elif [ ! -f "$dir/change.patch" ] || [ ! -f "$dir/test" ] || [ ! -f "$dir/expected" ] \
        || [ ! -f "$dir/report.md" ]; then
        fail "${dir#labs/}" "a lab needs change.patch, test, expected and report.md, or run"
    fi
done
# The model tests first without patches, while their build is the one CI
# has just made; the others last, so that the tree's build is left clean.
for dir in "${labs[@]}"; do
    if is_loom "$dir"; then check_clean "$dir"; fi
done
for dir in "${labs[@]}"; do
    if [ -f "$dir/change.patch" ] && [ -f "$dir/test" ] && [ -f "$dir/expected" ] \
        && [ -f "$dir/report.md" ]; then
        check_patched "$dir"
    fi
done
for dir in "${labs[@]}"; do
    if ! is_loom "$dir"; then check_clean "$dir"; fi
done
failed=${#failed_labs[@]}
echo "labs: $((${#labs[@]} - failed)) passed, $failed failed, in $((SECONDS - started)) s"
[ "$failed" -eq 0 ]
