# shellcheck shell=bash
# The stack-event follower of deploy.sh and destroy.sh: each CloudFormation event of a stack
# printed once, oldest first, one line per resource event (time, status, type, logical id,
# reason), as `rain` and the console show them, so a long create or delete is never silent.
# Sourced through scripts/lib/init.sh (after aws.sh); defines functions only.

# Prints the events of STACK (a name, or the id of a deleted stack) not printed yet, oldest
# first, as JSON lines, and adds their ids to the file SEEN. describe-stack-events lists
# newest first; its first page is enough at one poll every few seconds. A stack that no
# longer exists has no new events.
stack_events_new() { # STACK SEEN
  local events
  touch "$2"
  events="$(aws_cli cloudformation describe-stack-events --stack-name "$1" \
    --max-items 100 --output json 2>/dev/null | jq -c --rawfile seen "$2" '
      ($seen | split("\n") | map({(.): true}) | add // {}) as $old
      | .StackEvents | reverse | .[] | select($old[.EventId] | not)')" || return 0
  [[ -n $events ]] || return 0
  jq -r .EventId <<<"$events" >>"$2"
  printf '%s\n' "$events"
}

# Reads event JSON lines; prints one line each.
stack_events_print() {
  jq -r 'def pad($n): . + (" " * ([$n - length, 1] | max));
    "\(.Timestamp[11:19])  \(.ResourceStatus | pad(28))\(.ResourceType | pad(38))\(.LogicalResourceId)"
    + (if (.ResourceStatusReason // "") == "" then "" else "  \(.ResourceStatusReason)" end)'
}
