#!/usr/bin/env bash
# Makes a student's copy of threadchat for one lab's diagnose form
# (docs/LABS.md): the last commit's tree with the lab's change applied
# without its comments, as a new git repository of one commit, so that
# neither a diff nor the history shows the change. The labs' patches and
# their answers are left out; docs/LABS.md becomes the lab's report (the
# symptom, as a user told it) and what to hand in.
#
# bash labs/diagnose.sh NN DIR   (DIR must not exist yet)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 2 ]; then
    echo "usage: bash labs/diagnose.sh NN DIR" >&2
    exit 2
fi
lab=""
for dir in labs/"$1"-*/; do
    [ -f "$dir/change.patch" ] && lab=${dir%/}
done
if [ -z "$lab" ]; then
    echo "no lab $1 with a patch (a measurement lab has no diagnose form)" >&2
    exit 2
fi
copy=$2
if [ -e "$copy" ]; then
    echo "$copy already exists" >&2
    exit 2
fi
mkdir -p "$copy"
git archive HEAD | tar -x -C "$copy"
git -C "$copy" init -q
grep -v -E '^\+[[:space:]]*//' "$lab/change.patch" | git -C "$copy" apply --recount
rm -rf "$copy"/labs/[0-9][0-9]-* "$copy/labs/ANSWERS.md"
{
    echo "# A bug report"
    echo
    echo "Users of this copy of threadchat have noticed something wrong. This is"
    echo "what they report:"
    echo
    sed 's/^/> /' "$lab/report.md"
    echo
    sed -n '/^<!-- handout -->$/,/^<!-- end of handout -->$/p' docs/LABS.md | sed '1d;$d'
} > "$copy/docs/LABS.md"
git -C "$copy" add -A
git -C "$copy" -c user.name=threadchat -c user.email=labs@threadchat.invalid \
    commit -q -m "threadchat, for a lab"
echo "$copy: a copy with lab ${lab#labs/}'s change and its report in docs/LABS.md"
