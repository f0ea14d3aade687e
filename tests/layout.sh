#!/usr/bin/env bash
# layout.sh - holds the code to the architecture in README.md ("Layout").
#
# Fails, naming file and line, when:
#  - an include is not written from the root ("cdp/cdp.h", not "../cdp/cdp.h"),
#  - a folder includes one it may not (the table below),
#  - two modules include each other (a.c/a.h including b.h while b.c/b.h
#    includes a.h),
#  - a file under agent/ names a DevTools protocol method or event
#    (cdp/ owns the protocol),
#  - a task status is spelled as a string outside server/task.c and the
#    store's schema (server/task.h owns the task's life),
#  - the dashboard's page (ui/) loads anything from another origin (a CDN,
#    a font): it is served by Portier alone, and its CSP would block it.
# Usage: tests/layout.sh [ROOT]
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2

# folder -> the folders of ours it may include (besides itself).
declare -A allowed=(
  [util]=""
  [http]="util"
  [cdp]="util"
  [agent]="cdp util"
  [server]="agent cdp http util"
  [portals]="http util"
  [cli]="agent cdp http server portals util"
)
ours="util http cdp agent server portals cli tests bench"
fail=0
bad() { echo "layout: $*"; fail=1; }

files=$(git ls-files 'util/*.[ch]' 'http/*.[ch]' 'cdp/*.[ch]' 'agent/*.[ch]' 'server/*.[ch]' \
  'portals/*.[ch]' 'cli/*.[ch]' 2>/dev/null)
[ -n "$files" ] || files=$(find util http cdp agent server portals cli -name '*.[ch]' | sort)

# module (path without extension) -> the modules it includes
declare -A deps
for f in $files; do
  top=${f%%/*}
  mod=${f%.*}
  while IFS=: read -r line inc; do
    inc=${inc#*\"}
    inc=${inc%%\"*}
    case "$inc" in
    ../* | ./*) bad "$f:$line: include \"$inc\" is relative: write it from the root"; continue ;;
    */*) ;;
    *) # a generated header beside the build (dom_js.h) or a typo
      [ -e "$(dirname "$f")/$inc" ] && bad "$f:$line: include \"$inc\": write it from the root"
      continue ;;
    esac
    itop=${inc%%/*}
    case " $ours " in *" $itop "*) ;; *) continue ;; esac
    if [ "$itop" != "$top" ] && [[ " ${allowed[$top]} " != *" $itop "* ]]; then
      bad "$f:$line: $top/ may not include $inc (allowed: ${allowed[$top]:-nothing of ours})"
    fi
    [ -e "$inc" ] || bad "$f:$line: include \"$inc\": no such file"
    deps[$mod]+=" ${inc%.*}"
  done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | sed 's/:/:/')
done

for a in "${!deps[@]}"; do
  for b in ${deps[$a]}; do
    [ "$a" = "$b" ] && continue
    if [[ " ${deps[$b]:-} " == *" $a "* ]] && [[ "$a" < "$b" ]]; then
      bad "$a and $b include each other"
    fi
  done
done

# cdp/ owns the protocol: no "Domain.method" or "Domain.event" under agent/.
domains='Page|Runtime|DOM|Input|Fetch|Network|Target|Browser|Emulation|Accessibility|CSS|Log|Security|Storage|Overlay|Debugger|Performance|DOMSnapshot|IO'
if grep -nE "\"($domains)\.[a-zA-Z]+\"" agent/*.c agent/*.h; then
  bad "agent/ names a DevTools protocol method or event (above): add it to cdp/"
fi

# The task statuses are spelled in server/task.c (and the store's schema).
statuses='pending|dispatching|running|waiting_for_input|pending_review|completed|completed_with_issues|failed'
if [ -f server/task.c ]; then
  hits=$(grep -nE "\"($statuses)\"" server/*.c cli/*.c | grep -v '^server/task\.c:' || true)
  if [ -n "$hits" ]; then
    echo "$hits"
    bad "a task status is spelled outside server/task.c (above): use enum task_status"
  fi
fi

# ui/ is served by Portier itself: no URL of another origin in it (an SVG's
# xmlns names a namespace, not a place to load from).
if [ -d ui ]; then
  hits=$(grep -nE "(https?:)?//[a-z0-9.-]+\.[a-z]{2,}" ui/* | grep -v 'xmlns="http://www.w3.org/2000/svg"' || true)
  if [ -n "$hits" ]; then
    echo "$hits"
    bad "ui/ loads from another origin (above): serve it from ui/ instead"
  fi
fi

if [ $fail -ne 0 ]; then
  echo "layout: FAILED"
  exit 1
fi
echo "layout: ok ($(echo "$files" | wc -w) files)"
