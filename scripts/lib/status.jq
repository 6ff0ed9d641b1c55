# What scripts/status.sh shows and how it judges health, as jq functions over one snapshot
# object, so they can be tested on fixture JSON without AWS (tests/scripts/status.bats):
#
#   {now: EPOCH_SECONDS, region, stackName, cluster, serviceName,
#    stack: describe-stacks .Stacks[0] | null,
#    clusterStatus: "ACTIVE" | "MISSING" | ...,
#    service: describe-services .services[0] | null,
#    tasks: describe-tasks .tasks of the RUNNING tasks,
#    stoppedTasks: describe-tasks .tasks of the last stopped ones,
#    targets: describe-target-health .TargetHealthDescriptions | null (no load balancer)}
#
# Timestamps come as epoch numbers from AWS CLI v1 (ECS answers in epoch seconds and v1
# prints them as they came) and as ISO 8601 strings from CLI v2 and from CloudFormation.
# Used with: jq -L scripts/lib 'include "status"; screen'.

include "time";

# "YYYY-MM-DD HH:MM UTC", or the value as it came when it cannot be read.
def when:
  (epoch) as $e | if $e == null then (tostring) else ($e | strftime("%Y-%m-%d %H:%M UTC")) end;

def outputs: (.stack.Outputs // []) | map({(.OutputKey): .OutputValue}) | add // {};

def field($name): ($name + "              ")[0:13];

# The certificates the custom resource generated, by stack output.
def certificate_outputs:
  [["InternalCaNotAfter", "internal CA"], ["InternalTlsNotAfter", "internal TLS"], ["UiNotAfter", "UI"]];

# [{name, days, notAfter}] for each certificate output the stack has.
def certificates:
  (outputs) as $o | .now as $now
  | [certificate_outputs[] | select($o[.[0]] != null)
     | {name: .[1], notAfter: $o[.[0]], days: (($o[.[0]] | epoch) as $e
         | if $e == null then null else ((($e - $now) / 86400) | floor) end)}];

def task_ip:
  [.attachments[]? | select(.type == "ElasticNetworkInterface") | .details[]?
   | select(.name == "privateIPv4Address") | .value][0];

def primary: [(.service.deployments // [])[] | select(.status == "PRIMARY")][0];

def stack_ok:
  (.stack.StackStatus // "") as $s
  | ($s | test("^(CREATE|UPDATE|IMPORT)_COMPLETE$|^UPDATE_ROLLBACK_COMPLETE$|^UPDATE_(COMPLETE_CLEANUP_)?IN_PROGRESS$|^UPDATE_ROLLBACK_(COMPLETE_CLEANUP_)?IN_PROGRESS$"));

# Why CE is not healthy; empty when it is.
def reasons:
  [ if .stack == null then "stack \(.stackName) does not exist in \(.region)"
      elif stack_ok | not then "stack \(.stackName) is \(.stack.StackStatus)"
      else empty end,
      if .stack == null then empty
      elif .clusterStatus != "ACTIVE" then
        "cluster \(.cluster) does not exist or is not ACTIVE: run scripts/create-service.sh --stack-name \(.stackName)"
      elif .service == null or .service.status != "ACTIVE" then
        "service \(.serviceName) does not exist in cluster \(.cluster) (\(.service.status // "missing")): run scripts/create-service.sh --stack-name \(.stackName)"
      else
        (if (.service.desiredCount // 0) < 1 then "service \(.serviceName) wants no task (desired count 0)" else empty end),
        (if (.service.runningCount // 0) < (.service.desiredCount // 0) then
           "\(.service.runningCount // 0) of \(.service.desiredCount) tasks running" else empty end),
        (primary | if . != null and .rolloutState == "FAILED" then
           "the latest deployment failed: \(.rolloutStateReason // "no reason given")" else empty end),
        (if (.tasks | length) == 0 then
           "no running task"
           + ((.stoppedTasks[0] // null) | if . == null then " (and none stopped recently)"
              else "; last stopped task: \(.stoppedReason // "no reason given")"
                + ([.containers[]? | select(.reason != null or ((.exitCode // 0) != 0))
                    | " \(.name): \(.reason // "exit code \(.exitCode)")"] | join(";")) end)
         else empty end),
        (.tasks[]
         | if .lastStatus != "RUNNING" then "task \(.taskArn | split("/") | last) is \(.lastStatus)"
           elif .healthStatus != "HEALTHY" then
             "task \(.taskArn | split("/") | last) health is \(.healthStatus // "UNKNOWN")"
             + ([.containers[] | select(.lastStatus == "RUNNING" and .healthStatus != "HEALTHY")
                 | "\(.name) \(.healthStatus // "UNKNOWN")"] | if length > 0 then " (" + join(", ") + ")" else "" end)
           else empty end,
           (.containers[] | select(.lastStatus != "RUNNING" and (.exitCode // 0) != 0)
            | "container \(.name) exited with code \(.exitCode)\(if .reason then ": \(.reason)" else "" end)"))
      end,
      (if .targets == null then empty
       elif any(.targets[]; .TargetHealth.State == "healthy") then empty
       else "the load balancer has no healthy target"
         + ([.targets[] | "\(.Target.Id): \(.TargetHealth.State)\(if .TargetHealth.Reason then " (\(.TargetHealth.Reason))" else "" end)"]
            | if length > 0 then " (" + join(", ") + ")" else "" end) end),
      (certificates[] | select(.days != null and .days < 0) | "the \(.name) certificate expired on \(.notAfter | when)")
    ];

def container_line:
  "  \((.name + "                  ")[0:18]) \((.lastStatus // "?") + "         " | .[0:9]) "
  + "\(.healthStatus // "UNKNOWN")"
  + (if .exitCode != null then "  exit \(.exitCode)" else "" end)
  + (if .reason != null then "  \(.reason)" else "" end);

def screen:
  (outputs) as $o | (reasons) as $why
  | "Cloud Exchange: stack \(.stackName) in \(.region)",
    field("Stack") + (if .stack == null then "does not exist"
      else "\(.stack.StackStatus)  (last change \((.stack.LastUpdatedTime // .stack.CreationTime) | when))" end),
    (if .stack == null then empty
     else
       field("Service") + (if .service == null then "\(.serviceName): none in cluster \(.cluster)"
         else "\(.serviceName) in \(.cluster): \(.service.status), running \(.service.runningCount)/\(.service.desiredCount), pending \(.service.pendingCount // 0)" end),
       ((.service.deployments // [])[]
        | field("Deployment") + "\(.status) \(.taskDefinition | split("/") | last)  rollout \(.rolloutState // "?")"
          + "  running \(.runningCount)/\(.desiredCount)  since \(.createdAt | when)"),
       (if (.tasks | length) == 0 then field("Task") + "none running"
        else (.tasks[] | field("Task") + "\(.taskArn | split("/") | last) \(.lastStatus), health \(.healthStatus // "UNKNOWN")"
              + "  since \((.startedAt // .createdAt) | when)", (.containers[] | container_line)) end),
       field("UI") + (if $o.LoadBalancerUrl then $o.LoadBalancerUrl + " (load balancer)"
         else ([.tasks[] | task_ip | select(. != null)][0] as $ip
               | if $ip then "https://\($ip):3000 (task IP, from a network UiIngressCidr admits)"
                 else "unknown (no running task with an address)" end) end),
       (if .targets == null then empty
        else field("Targets") + (if (.targets | length) == 0 then "none registered"
          else [.targets[] | "\(.Target.Id) \(.TargetHealth.State)"] | join(", ") end) end),
       (certificates | if length == 0 then field("Certificates") + "no expiry dates in the stack outputs"
        else field("Certificates") + ([.[] | "\(.name) \(if .days == null then "unknown" else "\(.days) days" end)"] | join(", "))
          + (if any(.[]; .days != null and .days < 30) then "  (renew soon)" else "" end) end),
       "Last service events:",
       (if ((.service.events // []) | length) == 0 then "  (none)"
        else (.service.events[:5][] | "  \(.createdAt | when)  \(.message)") end)
     end),
    (if ($why | length) == 0 then field("Verdict") + "healthy"
     else field("Verdict") + "NOT HEALTHY", ($why[] | "  - " + .) end);
