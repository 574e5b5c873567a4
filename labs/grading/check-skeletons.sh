#!/usr/bin/env bash
# Checks the skeleton (docs/ASSIGNMENT.md): for each assignment, a1 to a3,
# labs/grading/skeleton.sh makes the student tree, which must hold none of
# the teacher's files, build with no warning and, graded with its
# assignment's rubric, score under half and finish within two minutes;
# then this server, the reference put back, must score 100 % on every
# assignment.
#
# Run from anywhere: bash labs/grading/check-skeletons.sh
# Each tree is made at the same place, target/grading/skeleton, and built
# in a target directory of its own (target/grading/skeleton-target), so the
# three builds are incremental and no other binary is mistaken for theirs.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
started=$SECONDS
source labs/grading/common.sh
tree=$out/skeleton
rubric=$root/labs/grading/assignments.txt

failures=0
for assignment in a1 a2 a3; do
    step=$SECONDS
    rm -rf "$tree"
    bash labs/grading/skeleton.sh "$assignment" "$tree" > /dev/null
    # The teacher's files stay out of it, and nothing names them.
    leaked=$(cd "$tree" && { ls -d labs/ANSWERS.md labs/grading/broken 2>/dev/null || true
        grep -rl --include='*.md' 'labs/ANSWERS.md' . || true; })
    if [ -n "$leaked" ]; then
        echo "check-skeletons: $assignment: FAILED, the student tree has the teacher's files or names them:"
        echo "$leaked" | sed 's/^/  /'
        failures=$((failures + 1))
        continue
    fi
    log=$out/skeleton-$assignment.build.log
    if ! (cd "$tree" && CARGO_TARGET_DIR=$out/skeleton-target cargo build --bin threadchat) > "$log" 2>&1; then
        echo "check-skeletons: $assignment: FAILED, it does not build (target/grading/skeleton-$assignment.build.log)"
        failures=$((failures + 1))
        continue
    fi
    if grep -q '^warning' "$log"; then
        echo "check-skeletons: $assignment: FAILED, it builds with warnings:"
        grep -A5 '^warning' "$log"
        failures=$((failures + 1))
        continue
    fi
    built=$((SECONDS - step))
    graded=$out/skeleton-$assignment.txt
    status=0
    timeout 120 "$grader" --exe "$out/skeleton-target/debug/threadchat $flags" --monitor-every 1 \
        --quick --jobs 3 --quiet --rubric "$rubric" --assignment "$assignment" > "$graded" 2>&1 || status=$?
    percent=$(sed -n 's/^total .*(\([0-9]*\) %).*/\1/p' "$graded")
    if [ "$status" -eq 124 ]; then
        echo "check-skeletons: $assignment: FAILED, grading it took over 120 s"
        failures=$((failures + 1))
    elif [ "$status" -ne 1 ] || [ -z "$percent" ] || [ "$percent" -ge 50 ]; then
        echo "check-skeletons: $assignment: FAILED, it should score under 50 % (exit status $status):"
        cat "$graded"
        failures=$((failures + 1))
    else
        echo "check-skeletons: $assignment: ok, no warning, $percent % ($built s to build, $((SECONDS - step)) s in all)"
    fi
done

# The reference put back: full marks on all three.
step=$SECONDS
if "$grader" --exe "$root/target/debug/threadchat $flags" --monitor-every 1 --quick --jobs 3 --quiet \
    --rubric "$rubric" > "$out/skeleton-reference.txt" 2>&1; then
    echo "check-skeletons: the reference: 100 % on a1, a2 and a3 ($((SECONDS - step)) s)"
else
    echo "check-skeletons: the reference: FAILED, it should score 100 % on every assignment:"
    cat "$out/skeleton-reference.txt"
    failures=$((failures + 1))
fi
echo "check-skeletons: $failures failed, $((SECONDS - started)) s"
[ "$failures" -eq 0 ]
