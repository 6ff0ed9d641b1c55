# Timestamps as the AWS CLI prints them: epoch numbers from CLI v1 (ECS answers in epoch
# seconds and v1 prints them as they came), ISO 8601 strings from CLI v2 and CloudFormation.
# Used by scripts/status.sh (through status.jq) and scripts/create-service.sh:
#   jq -L scripts/lib 'include "time"; .createdAt | epoch'

# Epoch seconds of a timestamp (number or ISO 8601 string), or null if it cannot be read.
def epoch:
  if type == "number" then floor
  elif type == "string" then
    if test("^[0-9]+(\\.[0-9]+)?$") then tonumber | floor
    else (sub("\\.[0-9]+"; "") | sub("(\\+00:?00|Z)$"; "Z") | sub(" "; "T")
          | try fromdateiso8601 catch null)
    end
  else null end;

# "YYYY-MM-DDTHH:MM:SS" (UTC), or "-" when the value cannot be read.
def clock: (epoch) as $e | if $e == null then "-" else ($e | todate[0:19]) end;
