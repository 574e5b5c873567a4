#!/usr/bin/env bash
# Calibrates the grader (docs/ASSIGNMENT.md, "For teachers"), so that a test
# that cannot fail, or one that fails for the wrong reason, shows up:
#   1. the reference server (this tree) scores 100 %;
#   2. each deliberately broken server, labs/grading/broken/CATEGORY.patch
#      (or CATEGORY-2.patch, ...) applied to a scratch copy of src/, loses
#      points in CATEGORY and in no other category.
# At the end it lists the tests that no broken server made fail.
#
# Run from anywhere: bash labs/grading/calibrate.sh [PATCH NAME...]
# (such as `rooms rooms-2`; all of them by default).
# Debug builds throughout: the grader and the reference in target/debug,
# the broken servers in target/grading/ (one scratch copy and one target
# directory, one patch at a time, so each is a small incremental build).
# Every server is graded in full, with --quick (100 clients instead of 300
# in the heavy tests), a one-second monitor line, and three tests at a time.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/../.."
root=$PWD
started=$SECONDS

source labs/grading/common.sh
scratch=$out/scratch

# grade NAME BINARY: grades it into target/grading/NAME.json (and .txt).
grade() {
    "$grader" --exe "$2 $flags" --monitor-every 1 --quick --jobs 3 --quiet \
        --json "$out/$1.json" > "$out/$1.txt" 2>&1 || true
}

# verdict NAME [CATEGORY]: checks target/grading/NAME.json. Without a
# category, every test must pass; with one, some test of CATEGORY must fail
# and no test of another category may. Prints the failed test ids to
# target/grading/NAME.failed.
verdict() {
    /usr/bin/python3 - "$out/$1.json" "${2:-}" "$out/$1.failed" <<'EOF'
import json, sys
path, category, failed_path = sys.argv[1], sys.argv[2], sys.argv[3]
tests = json.load(open(path))["tests"]
# A test's name is "RUBRIC CATEGORY: CATEGORY/TEST".
failed = [t["name"].rsplit(": ", 1)[1] for t in tests if t["status"] != "passed"]
open(failed_path, "w").write("".join(f + "\n" for f in failed))
if not category:
    sys.exit(0 if not failed else 1)
ours = [f for f in failed if f.startswith(category + "/")]
others = [f for f in failed if not f.startswith(category + "/")]
if not ours:
    print(f"  no test of {category} failed")
for f in others:
    print(f"  {f} failed too, though the bug is in {category}")
sys.exit(0 if ours and not others else 1)
EOF
}

failures=0
step=$SECONDS
grade reference "$root/target/debug/threadchat"
if verdict reference; then
    echo "calibrate: reference: 100 % ($((SECONDS - step)) s)"
else
    echo "calibrate: reference: FAILED, it should score 100 %:"
    cat "$out/reference.txt"
    failures=$((failures + 1))
fi

if [ $# -gt 0 ]; then
    names=("$@")
else
    names=()
    for patch in labs/grading/broken/*.patch; do
        names+=("$(basename "$patch" .patch)")
    done
fi

# One scratch copy for every patch, each undone after its run.
rm -rf "$scratch"
mkdir -p "$scratch"
cp -r Cargo.toml Cargo.lock src "$scratch/"
applied=""
undo() {
    if [ -n "$applied" ]; then
        (cd "$scratch" && git apply -R "$applied")
        applied=""
    fi
}
trap undo EXIT

for name in "${names[@]}"; do
    step=$SECONDS
    category=${name%%-*}
    patch=$root/labs/grading/broken/$name.patch
    if ! (cd "$scratch" && git apply "$patch"); then
        echo "calibrate: $name: FAILED, its patch no longer applies"
        failures=$((failures + 1))
        continue
    fi
    applied=$patch
    if ! (cd "$scratch" && CARGO_TARGET_DIR=$out/target cargo build -q --bin threadchat \
        > "$out/$name.build.log" 2>&1); then
        echo "calibrate: $name: FAILED, the broken server does not build (target/grading/$name.build.log)"
        failures=$((failures + 1))
        undo
        continue
    fi
    built=$((SECONDS - step))
    grade "broken-$name" "$out/target/debug/threadchat"
    undo
    if verdict "broken-$name" "$category"; then
        lost=$(wc -l < "$out/broken-$name.failed")
        echo "calibrate: $name: ok, $lost $category tests failed and no other ($built s to build, $((SECONDS - step)) s in all)"
    else
        echo "calibrate: $name: FAILED (target/grading/broken-$name.txt):"
        cat "$out/broken-$name.txt"
        failures=$((failures + 1))
    fi
done

# What no broken server caught: each such test passes with every patch.
all=$(/usr/bin/python3 -c 'import json,sys; [print(t["name"].rsplit(": ",1)[1]) for t in json.load(open(sys.argv[1]))["tests"]]' "$out/reference.json")
caught=$(cat "$out"/broken-*.failed 2>/dev/null | sort -u)
uncaught=$(comm -23 <(echo "$all" | sort -u) <(echo "$caught"))
if [ -n "$uncaught" ]; then
    echo "calibrate: tests no broken server made fail ($(echo "$uncaught" | wc -l) of $(echo "$all" | wc -l)):"
    echo "$uncaught" | sed 's/^/  /'
fi
echo "calibrate: $failures failed, $((SECONDS - started)) s"
[ "$failures" -eq 0 ]
