#!/usr/bin/env bash
# Makes the tree a student starts an assignment from (docs/ASSIGNMENT.md):
#
#   bash labs/grading/skeleton.sh a1 DIR     (or a2, a3)
#
# In the source, each function a student writes is marked with a comment
# pair, `// ASSIGNMENT a1: begin: WHAT TO WRITE` above its doc comment and
# `// ASSIGNMENT a1: end` after its closing brace. In DIR, the chosen
# assignment's functions keep their doc comments and signatures, and each
# body becomes `todo!("WHAT TO WRITE")`; the other assignments' markers go
# and their code stays, so the rest of the server works. Every test stays.
# What is the teacher's goes: the broken servers (labs/grading/broken/, whose
# context lines show the reference code), the labs' answer key
# (labs/ANSWERS.md) and the teacher part of docs/ASSIGNMENT.md. src/lib.rs
# allows what the todo!()s leave unused, so the tree builds with no warning.
set -euo pipefail
usage="usage: bash labs/grading/skeleton.sh a1|a2|a3 DIR"
[ $# -eq 2 ] || { echo "$usage" >&2; exit 2; }
assignment=$1
out=$2
case $assignment in
    a1 | a2 | a3) ;;
    *) echo "$usage" >&2; exit 2 ;;
esac
if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
    echo "skeleton: $out exists and is not empty" >&2
    exit 2
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/../.."

# The tracked files as they are in the working tree, less the teacher's.
git ls-files -z | while IFS= read -r -d '' file; do
    case $file in
        labs/grading/broken/* | labs/ANSWERS.md) continue ;;
    esac
    [ -e "$file" ] || continue
    mkdir -p "$out/$(dirname "$file")"
    cp -p "$file" "$out/$file"
done

# Regions of this assignment: keep what comes before the body's `{`, then
# todo!(); drop the body. Other assignments' markers: dropped.
regions() {
    awk -v want="$assignment" -v file="$1" '
        function fail(why) { print "skeleton: " file ":" NR ": " why > "/dev/stderr"; exit 1 }
        match($0, /^[ \t]*\/\/ ASSIGNMENT a[0-9]+: begin: /) {
            if (state) fail("a region begins inside another")
            tag = $0; sub(/^[ \t]*\/\/ ASSIGNMENT /, "", tag); sub(/:.*/, "", tag)
            if (tag == want) {
                state = 1
                indent = $0; sub(/[^ \t].*/, "", indent)
                what = substr($0, RLENGTH + 1)
                gsub(/\\/, "\\\\", what); gsub(/"/, "\\\"", what)
            }
            next
        }
        /^[ \t]*\/\/ ASSIGNMENT a[0-9]+: end$/ {
            if (state == 2) {
                if (last != indent "}") fail("the region does not end with its function")
                print indent "}"
            } else if (state == 1) {
                fail("the region has no function body")
            }
            state = 0; seen_fn = 0
            next
        }
        state == 1 {
            print
            if ($0 !~ /^[ \t]*\/\//) {
                if ($0 ~ /(^|[^A-Za-z0-9_])fn /) seen_fn = 1
                if (seen_fn && $0 ~ /\{[ \t]*$/) {
                    print indent "    todo!(\"" what "\")"
                    state = 2
                }
            }
            next
        }
        state == 2 { last = $0; next }
        { print }
        END { if (state) fail("a region is not closed") }
    ' "$1"
}
grep -rl --include='*.rs' '// ASSIGNMENT a[0-9]*: begin: ' "$out/src" | while read -r file; do
    regions "$file" > "$file.new"
    mv "$file.new" "$file"
done

# The lint allowance, after src/lib.rs's opening //! paragraph.
awk '
    !done && $0 !~ /^\/\/!/ {
        print "// The assignment'"'"'s todo!()s leave code unused until they are written:"
        print "// delete this line when they are."
        print "#![allow(dead_code, unused_variables, unused_imports)]"
        done = 1
    }
    { print }
' "$out/src/lib.rs" > "$out/src/lib.rs.new"
mv "$out/src/lib.rs.new" "$out/src/lib.rs"

# docs/LABS.md names the answer key, which this copy does not have.
perl -0pi -e 's/The answers, for the teacher, are in\s+labs\/ANSWERS\.md\./The answers are the teacher'"'"'s, not in this copy./' "$out/docs/LABS.md"

# The handout without the teacher's part.
awk '/^## For teachers/ { exit } { print }' "$out/docs/ASSIGNMENT.md" > "$out/docs/ASSIGNMENT.md.new"
mv "$out/docs/ASSIGNMENT.md.new" "$out/docs/ASSIGNMENT.md"

echo "skeleton: $assignment in $out: $(grep -rhc --include='*.rs' '^ *todo!("' "$out/src" | awk '{ n += $1 } END { print n }') functions to write"
