# shellcheck shell=bash
# The local AWS for scripts/demo.sh and every shell test: start the local_aws package (moto
# with the gaps listed in local_aws/gaps.py closed, or plain moto) on 127.0.0.1, point the AWS
# CLI at it with dummy credentials, create a VPC with two subnets in two Availability Zones,
# and stop it all again.
# Sourced only; defines functions, runs nothing. Needs log/die (scripts/lib/tools.sh).

LOCAL_AWS_PID=""
LOCAL_AWS_LOG=""

# Environment for every aws call from here on: the local endpoint and dummy credentials
# (the one place they are written). The user's own configuration and credentials files are
# hidden, so nothing can reach AWS.
local_aws_environment() { # PORT [REGION]
  export AWS_ENDPOINT_URL="http://127.0.0.1:$1"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
  export AWS_REGION="${2:-us-east-1}" AWS_DEFAULT_REGION="${2:-us-east-1}"
  export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
  export AWS_PAGER=""
  unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE
}

# Starts the server in the background (its output goes to LOG), waits for its ready line and
# points the AWS CLI at it (local_aws_environment). A custom resource that never answers
# fails after min(its ServiceTimeout, LOCAL_AWS_MAX_SERVICE_TIMEOUT) seconds (default 5)
# instead of CloudFormation's full wait. With --plain: moto without the project's gaps closed
# and no EFS folder (tests of a script's own API calls); moto's settings such as
# MOTO_ECS_SERVICE_RUNNING pass through the environment.
local_aws_start() { # PORT EFS_DIR LOG | --plain PORT LOG
  local repo waited=0 args
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  if [[ $1 == --plain ]]; then
    args=(--port "$2" --plain)
    LOCAL_AWS_LOG="$3"
    shift
  else
    args=(--port "$1" --efs-dir "$2" --max-service-timeout "${LOCAL_AWS_MAX_SERVICE_TIMEOUT:-5}")
    LOCAL_AWS_LOG="$3"
  fi
  : >"$LOCAL_AWS_LOG" # exists before the first grep below
  (cd "$repo" && exec python -m local_aws "${args[@]}") >"$LOCAL_AWS_LOG" 2>&1 &
  LOCAL_AWS_PID=$!
  until grep -q '^local AWS .* ready on' "$LOCAL_AWS_LOG"; do
    if ! kill -0 "$LOCAL_AWS_PID" 2>/dev/null || ((waited >= 300)); then
      cat "$LOCAL_AWS_LOG" >&2
      die "the local AWS server did not start on 127.0.0.1:$1"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  local_aws_environment "$1"
}

# Stops the server and any function process it still runs (they are its children).
local_aws_stop() {
  [[ -n $LOCAL_AWS_PID ]] || return 0
  local waited=0
  kill -TERM "$LOCAL_AWS_PID" 2>/dev/null || true
  while kill -0 "$LOCAL_AWS_PID" 2>/dev/null && ((waited < 50)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  if kill -0 "$LOCAL_AWS_PID" 2>/dev/null; then
    pkill -KILL -P "$LOCAL_AWS_PID" 2>/dev/null || true
    kill -KILL "$LOCAL_AWS_PID" 2>/dev/null || true
  fi
  wait "$LOCAL_AWS_PID" 2>/dev/null || true
  LOCAL_AWS_PID=""
}

# Creates a VPC and two private subnets in two Availability Zones whose route table sends
# 0.0.0.0/0 to a NAT gateway (in a third, public subnet), so a function in them reaches S3 as
# in AWS; prints "vpc-... subnet-a,subnet-b". With NO_NAT=1 the private subnets get a route
# table of their own without that route (pass it to deploy.sh --route-tables for an S3
# gateway endpoint); its id is then printed as a third word.
local_aws_network() {
  local vpc subnet1 subnet2 public eip nat table
  vpc="$(aws ec2 create-vpc --cidr-block 10.42.0.0/16 --query Vpc.VpcId --output text)"
  subnet1="$(aws ec2 create-subnet --vpc-id "$vpc" --cidr-block 10.42.1.0/24 \
    --availability-zone us-east-1a --query Subnet.SubnetId --output text)"
  subnet2="$(aws ec2 create-subnet --vpc-id "$vpc" --cidr-block 10.42.2.0/24 \
    --availability-zone us-east-1b --query Subnet.SubnetId --output text)"
  table="$(aws ec2 create-route-table --vpc-id "$vpc" --query RouteTable.RouteTableId --output text)"
  aws ec2 associate-route-table --route-table-id "$table" --subnet-id "$subnet1" >/dev/null
  aws ec2 associate-route-table --route-table-id "$table" --subnet-id "$subnet2" >/dev/null
  if [[ ${NO_NAT:-0} == 1 ]]; then
    printf '%s %s,%s %s\n' "$vpc" "$subnet1" "$subnet2" "$table"
    return
  fi
  public="$(aws ec2 create-subnet --vpc-id "$vpc" --cidr-block 10.42.0.0/24 \
    --availability-zone us-east-1a --query Subnet.SubnetId --output text)"
  eip="$(aws ec2 allocate-address --domain vpc --query AllocationId --output text)"
  nat="$(aws ec2 create-nat-gateway --subnet-id "$public" --allocation-id "$eip" \
    --query NatGateway.NatGatewayId --output text)"
  aws ec2 create-route --route-table-id "$table" --destination-cidr-block 0.0.0.0/0 \
    --nat-gateway-id "$nat" >/dev/null
  printf '%s %s,%s\n' "$vpc" "$subnet1" "$subnet2"
}

# Builds the Lambda for this machine and zips it as Lambda expects; prints the archive's path.
# The local tests and the demo use cargo's dev profile, not the release profile that goes to
# AWS (scripts/deploy.sh: cargo lambda, arm64, LTO) and into the benchmark: `cargo test` and
# tests/runtime/lambda-invoke.sh already build this bootstrap, so here it costs a link at
# most, where a release build would compile every dependency again and run a whole-program
# LTO link (minutes on two cores). Same source, same panic strategy (Cargo.toml keeps
# "unwind" in both); the local build also keeps overflow checks and debug assertions on.
# Its symbols are stripped from the copy that is zipped (93 MB -> 15 MB).
local_aws_build_lambda() { # REPO_ROOT
  local dir="$1/target/lambda-local" binary
  log "building the Lambda for this machine (cargo build, dev profile)"
  (cd "$1" && cargo build --locked --quiet -p ce-efs-tree --bin bootstrap >&2)
  mkdir -p "$dir"
  # Another clone sharing the build directory may build it too: zip a private copy, and
  # replace the archive in one rename.
  binary="$(mktemp "${dir}/bootstrap.XXXXXX")"
  cp "$1/target/debug/bootstrap" "$binary"
  if command -v strip >/dev/null 2>&1; then strip "$binary"; fi
  local_aws_zip "$binary" "${binary}.zip"
  mv -f "${binary}.zip" "${dir}/bootstrap.zip"
  rm -f "$binary"
  printf '%s\n' "${dir}/bootstrap.zip"
}

# Zips FILE as an executable "bootstrap" at the archive's root, as Lambda expects.
local_aws_zip() { # FILE ZIP
  python3 -c 'import sys, zipfile
info = zipfile.ZipInfo("bootstrap")
info.external_attr = 0o755 << 16
info.compress_type = zipfile.ZIP_DEFLATED
with zipfile.ZipFile(sys.argv[2], "w") as archive:
    archive.writestr(info, open(sys.argv[1], "rb").read())' "$1" "$2"
}
