# Shared by the default-model recipes: one deadline for every stage, so results always come back.
# Needs BUDGET (seconds), T0 (start, epoch seconds) and LOG (file) set by the caller.
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
stage() {   # stage NAME MAX_SECONDS CMD...: run under min(MAX, time left); log the outcome
  local name=$1 max=$2; shift 2
  local t=$(left); (( t > max )) && t=$max
  if (( t < 10 )); then echo "[$name] skipped: no time left" | tee -a "$LOG"; return 1; fi
  local s=$(date +%s)
  timeout "$t" "$@" >> "$LOG" 2>&1; local rc=$?
  echo "[$name] rc=$rc in $(( $(date +%s) - s )) s (limit $t s)" | tee -a "$LOG"
  return $rc
}
