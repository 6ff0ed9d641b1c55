"""Offline checks of the operator features of the template: the optional HTTPS load balancer,
its access-log bucket, the rules that refuse an incomplete one, the alarms, ECS Exec and the
UI certificate secret. Each check runs on the template's variants (tests/template/cfn_variants.py:
load balancer and every setting off, then all on), so both sides of every condition are seen.

    python -m tests.template.check_operate check       run every check; exit 1 on any failure
    python -m tests.template.check_operate self-test   plant one fault per check on copies; exit 1
                                              unless every check catches its fault
"""

import argparse
import copy
import re
import sys

from tests.template import cfn_variants
from tests.template.model import ROOT, load_template
from tests.template.model import ref_target as ref

CREATE_SERVICE = ROOT / "scripts" / "create-service.sh"
TLS13_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
UI_PORT = 3000
# EC2's pattern for security group and rule descriptions.
EC2_DESCRIPTION = re.compile(r"^[a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]*$")
LOAD_BALANCER_TYPES = {
    "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "AWS::ElasticLoadBalancingV2::Listener",
    "AWS::ElasticLoadBalancingV2::TargetGroup",
    "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy",
}


# ---------------------------------------------------------------- helpers
def of_type(template, type_name):
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_name}


def one(template, type_name, where=lambda r: True):
    found = [r for r in of_type(template, type_name).values() if where(r)]
    return found[0]["Properties"] if len(found) == 1 else None


def as_list(value):
    return value if isinstance(value, list) else [value]


def sub_text(value):
    """The text of a literal or of a !Sub."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        value = value["Fn::Sub"]
        return value if isinstance(value, str) else value[0]
    return value if isinstance(value, str) else None


def task_sg(template):
    return next(
        (
            k
            for k, v in of_type(template, "AWS::EC2::SecurityGroup").items()
            if "task" in sub_text(v["Properties"]["GroupDescription"]).lower()
        ),
        None,
    )


def ingress_to(template, group):
    """Every ingress rule on GROUP: inline and standalone, as property dicts."""
    rules = list(template["Resources"][group]["Properties"].get("SecurityGroupIngress", []))
    rules += [
        r["Properties"]
        for r in of_type(template, "AWS::EC2::SecurityGroupIngress").values()
        if ref(r["Properties"]["GroupId"]) == group
    ]
    return rules


# ---------------------------------------------------------------- rules
class RuleEvaluator:
    """CloudFormation's Rules functions over parameter values (strings; lists for lists)."""

    def __init__(self, values):
        self.values = values

    def __call__(self, node):
        if isinstance(node, dict) and len(node) == 1:
            ((function, args),) = node.items()
            if function == "Ref":
                return self.values[args]
            if function == "Fn::Equals":
                return self(args[0]) == self(args[1])
            if function == "Fn::Not":
                return not self(args[0])
            if function == "Fn::And":
                return all(self(a) for a in args)
            if function == "Fn::Or":
                return any(self(a) for a in args)
            if function == "Fn::EachMemberEquals":
                return all(m == self(args[1]) for m in self(args[0]))
            if function == "Fn::Contains":
                return self(args[1]) in self(args[0])
            raise ValueError(f"unsupported rule function {function}")
        return node


def refused_by_rules(template, values):
    """The AssertDescriptions of the rules the parameter VALUES break."""
    evaluate = RuleEvaluator(cfn_variants.parameter_values(template, values))
    broken = []
    for rule in template.get("Rules", {}).values():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"]):
            continue
        broken += [a.get("AssertDescription", "?") for a in rule["Assertions"] if not evaluate(a["Assert"])]
    return broken


# ---------------------------------------------------------------- checks
def check_rules(raw, variants):
    """Rules refuse a load balancer without certificate, subnets or CIDR, and no load
    balancer without UiIngressCidr; both shipped variants pass them."""
    errors = []
    for name, values in cfn_variants.VARIANTS.items():
        if broken := refused_by_rules(raw, values):
            errors.append(f"variant {name} is refused by the rules: {broken}")
    lb = cfn_variants.VARIANTS["load-balancer"]
    for missing in ("LoadBalancerCertificateArn", "LoadBalancerSubnetIds", "LoadBalancerIngressCidr"):
        if not refused_by_rules(raw, {**lb, missing: ""}):
            errors.append(f"a load balancer without {missing} is not refused by the rules")
    if not refused_by_rules(raw, {**cfn_variants.VARIANTS["default"], "UiIngressCidr": ""}):
        errors.append("no load balancer and no UiIngressCidr is not refused by the rules")
    for name in ("LoadBalancerIngressCidr", "UiIngressCidr"):
        if raw["Parameters"][name].get("Default", "") not in ("",):
            errors.append(f"parameter {name} must not have a default that opens it")
    return errors


def check_load_balancer(raw, variants):
    """With a load balancer: HTTPS with a TLS 1.3 policy, an optional redirect, HTTPS to the
    task's IP on 3000 with a health check, invalid headers dropped, access logs to a private,
    encrypted, TLS-only bucket with a lifecycle rule that ELB may write to. Without: none of it."""
    errors = []
    off, on = variants["default"], variants["load-balancer"]
    if any(r["Type"] in LOAD_BALANCER_TYPES for r in off["Resources"].values()):
        errors.append("the default variant holds load balancer resources")
    https = one(on, "AWS::ElasticLoadBalancingV2::Listener", lambda r: r["Properties"].get("Protocol") == "HTTPS")
    if not https or https.get("SslPolicy") != TLS13_POLICY or https.get("Port") != 443 or not https.get("Certificates"):
        errors.append(f"the HTTPS listener must listen on 443 with a certificate and {TLS13_POLICY}")
    http = one(on, "AWS::ElasticLoadBalancingV2::Listener", lambda r: r["Properties"].get("Protocol") == "HTTP")
    if http and [a.get("Type") for a in http["DefaultActions"]] != ["redirect"]:
        errors.append("the HTTP listener may only redirect")
    if http and http["DefaultActions"][0].get("RedirectConfig", {}).get("Protocol") != "HTTPS":
        errors.append("the HTTP listener must redirect to HTTPS")
    tg = one(on, "AWS::ElasticLoadBalancingV2::TargetGroup") or {}
    want = {
        "TargetType": "ip",
        "Protocol": "HTTPS",
        "Port": UI_PORT,
        "HealthCheckProtocol": "HTTPS",
        "HealthCheckPath": "/",
    }
    if {k: tg.get(k) for k in want} != want or not tg.get("Matcher", {}).get("HttpCode"):
        errors.append(f"the target group must be {want} with a matcher")
    lb = one(on, "AWS::ElasticLoadBalancingV2::LoadBalancer") or {}
    attributes = {a["Key"]: a["Value"] for a in lb.get("LoadBalancerAttributes", [])}
    if attributes.get("routing.http.drop_invalid_header_fields.enabled") != "true":
        errors.append("the load balancer must drop invalid header fields")
    if attributes.get("access_logs.s3.enabled") != "true":
        errors.append("the load balancer must write access logs")
    bucket_id = ref(attributes.get("access_logs.s3.bucket"))
    bucket = on["Resources"].get(bucket_id, {}).get("Properties", {})
    if (
        any(v is not True for v in bucket.get("PublicAccessBlockConfiguration", {"x": False}).values())
        or len(bucket.get("PublicAccessBlockConfiguration", {})) != 4
    ):
        errors.append("the access-log bucket must block all public access")
    if not bucket.get("BucketEncryption") or not bucket.get("LifecycleConfiguration", {}).get("Rules"):
        errors.append("the access-log bucket must be encrypted and have a lifecycle rule")
    policy = one(on, "AWS::S3::BucketPolicy", lambda r: ref(r["Properties"]["Bucket"]) == bucket_id) or {}
    statements = policy.get("PolicyDocument", {}).get("Statement", [])
    if not any(
        s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        for s in statements
    ):
        errors.append("the access-log bucket policy must deny requests without TLS")
    if not any(s["Effect"] == "Allow" and "s3:PutObject" in as_list(s["Action"]) for s in statements):
        errors.append("the access-log bucket policy must let Elastic Load Balancing write")
    return errors


def check_task_ingress(raw, variants):
    """Port 3000 of the task admits the load balancer's group alone when there is one, and
    UiIngressCidr otherwise; every rule description fits EC2's pattern."""
    errors = []
    for name, template in variants.items():
        group = task_sg(template)
        rules = [r for r in ingress_to(template, group) if r.get("FromPort", 0) <= UI_PORT <= r.get("ToPort", -1)]
        lb_groups = [
            k
            for k, v in of_type(template, "AWS::EC2::SecurityGroup").items()
            if "load balancer" in sub_text(v["Properties"]["GroupDescription"]).lower()
        ]
        want = [{"CidrIp": "UiIngressCidr"}] if name == "default" else [{"SourceSecurityGroupId": g} for g in lb_groups]
        got = [{k: ref(v) for k, v in r.items() if k in ("CidrIp", "SourceSecurityGroupId", "CidrIpv6")} for r in rules]
        if got != want or not want:
            errors.append(f"variant {name}: port {UI_PORT} must admit exactly {want}, admits {got}")
        for logical_id, resource in template["Resources"].items():
            props = resource.get("Properties", {})
            texts = []
            if resource["Type"] == "AWS::EC2::SecurityGroup":
                texts = [sub_text(props["GroupDescription"])] + [
                    r.get("Description", "")
                    for r in props.get("SecurityGroupIngress", []) + props.get("SecurityGroupEgress", [])
                ]
            elif resource["Type"] in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
                texts = [props.get("Description", "")]
            for text in texts:
                if text is not None and not EC2_DESCRIPTION.match(re.sub(r"\$\{[^}]*\}", "x", text)):
                    errors.append(f"{logical_id}: description {text!r} has characters EC2 refuses")
    return errors


def check_alarms(raw, variants):
    """Alarms notify the topic encrypted with the stack's own key that CloudWatch may use: no
    running task (missing data breaching, on the cluster and service the stack's outputs name
    and create-service.sh reads), the tree Lambda's errors, memory near the limit and, with a
    load balancer, unhealthy targets."""
    errors = []
    script = CREATE_SERVICE.read_text()
    library = (ROOT / "scripts" / "lib" / "aws.sh").read_text()
    if 'stack_output "$stack" DefaultClusterName)' not in script or 'stack_service_name "$stack")' not in script:
        errors.append("create-service.sh does not take its cluster and service from the stack's outputs")
    if not re.search(r'stack_service_name\(\) \{[^}]*stack_output "\$1" ServiceName', library):
        errors.append("scripts/lib/aws.sh's stack_service_name does not read the output ServiceName")
    for name, template in variants.items():
        outputs = template["Outputs"]
        cluster, service = outputs["DefaultClusterName"]["Value"], outputs["ServiceName"]["Value"]
        topics = of_type(template, "AWS::SNS::Topic")
        key = ref((next(iter(topics.values()))["Properties"].get("KmsMasterKeyId")) if len(topics) == 1 else None)
        statements = template["Resources"].get(key, {}).get("Properties", {}).get("KeyPolicy", {}).get("Statement", [])
        if len(topics) != 1 or not any(
            s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"
            and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(as_list(s["Action"]))
            for s in statements
        ):
            errors.append(f"variant {name}: one alarm topic encrypted with a key of the stack CloudWatch may use")
        topic = next(iter(topics), None)
        alarms = of_type(template, "AWS::CloudWatch::Alarm")
        metrics = {}
        for logical_id, alarm in alarms.items():
            props = alarm["Properties"]
            if [ref(a) for a in props.get("AlarmActions", [])] != [topic]:
                errors.append(f"variant {name}: {logical_id} does not notify the alarm topic")
            for stat in [props] + [m.get("MetricStat", {}).get("Metric", {}) for m in props.get("Metrics", [])]:
                if stat.get("MetricName"):
                    metrics[(stat.get("Namespace"), stat["MetricName"])] = (logical_id, props, stat)
        running = metrics.get(("ECS/ContainerInsights", "RunningTaskCount"))
        if not running:
            errors.append(f"variant {name}: no alarm on ECS/ContainerInsights RunningTaskCount")
        else:
            dims = {d["Name"]: d["Value"] for d in running[2]["Dimensions"]}
            if dims != {"ClusterName": cluster, "ServiceName": service}:
                errors.append(
                    f"variant {name}: RunningTaskCount dimensions {dims} differ from the outputs "
                    f"create-service.sh reads (cluster {cluster}, service {service})"
                )
            if (
                running[1].get("TreatMissingData") != "breaching"
                or running[1].get("ComparisonOperator") != "LessThanThreshold"
            ):
                errors.append(f"variant {name}: no running task must alarm, and missing data must be breaching")
        lambda_errors = metrics.get(("AWS/Lambda", "Errors"))
        if not lambda_errors or [ref(d["Value"]) for d in lambda_errors[2]["Dimensions"]] != list(
            of_type(template, "AWS::Lambda::Function")
        ):
            errors.append(f"variant {name}: no AWS/Lambda Errors alarm on the tree function")
        if not (
            metrics.get(("ECS/ContainerInsights", "MemoryUtilized")) or metrics.get(("AWS/ECS", "MemoryUtilization"))
        ):
            errors.append(f"variant {name}: no memory alarm")
        has_lb = bool(of_type(template, "AWS::ElasticLoadBalancingV2::LoadBalancer"))
        if has_lb != bool(metrics.get(("AWS/ApplicationELB", "UnHealthyHostCount"))):
            errors.append(f"variant {name}: an unhealthy-target alarm must exist exactly when the load balancer does")
    return errors


def check_exec(raw, variants):
    """ECS Exec's ssmmessages permissions go to the task role only when EnableExec is true."""
    errors = []
    for name, template in variants.items():
        grants = [
            (ref(p["Properties"].get("RoleName")), s)
            for p in of_type(template, "AWS::IAM::RolePolicy").values()
            for s in p["Properties"]["PolicyDocument"]["Statement"]
            if any(a.startswith("ssmmessages:") for a in as_list(s["Action"]))
        ]
        want = cfn_variants.VARIANTS[name].get("EnableExec", raw["Parameters"]["EnableExec"]["Default"]) == "true"
        if bool(grants) != want:
            errors.append(f"variant {name}: ssmmessages granted: {bool(grants)}, EnableExec: {want}")
        for role, statement in grants:
            if role != "TaskRole" or any(not a.startswith("ssmmessages:") for a in as_list(statement["Action"])):
                errors.append(f"variant {name}: the exec statement must give the task role ssmmessages actions only")
    return errors


def check_ui_certificate(raw, variants):
    """The execution role may read the operator's UI certificate secret, exactly that one, only
    when it is given; the parameter is never NoEcho-free text (an ARN, not the key)."""
    errors = []
    pattern = raw["Parameters"]["UiCertificateSecretArn"].get("AllowedPattern", "")
    if not pattern.startswith("^(arn:aws") or "BEGIN" in pattern:
        errors.append("UiCertificateSecretArn must only accept a secret ARN")
    for name, template in variants.items():
        grants = [
            (ref(p["Properties"].get("RoleName")), s)
            for p in of_type(template, "AWS::IAM::RolePolicy").values()
            for s in p["Properties"]["PolicyDocument"]["Statement"]
            if "secretsmanager:GetSecretValue" in as_list(s["Action"])
        ]
        given = bool(cfn_variants.VARIANTS[name].get("UiCertificateSecretArn"))
        if bool(grants) != given:
            errors.append(f"variant {name}: UI certificate secret readable: {bool(grants)}, given: {given}")
        for role, statement in grants:
            if role != "TaskExecutionRole" or [ref(r) for r in as_list(statement["Resource"])] != [
                "UiCertificateSecretArn"
            ]:
                errors.append(
                    f"variant {name}: only the execution role may read the UI certificate secret, and only it"
                )
    return errors


def check_ca_file(raw, variants):
    """CaCertificatesPem becomes one file in a declared directory of the tree, rewritten from
    the parameter (Overwrite true) and readable by all; no parameter, no file."""
    errors = []
    for name, template in variants.items():
        tree = template["Resources"]["EfsTree"]["Properties"]
        files = [f for f in tree.get("Files", []) if ref(f.get("Content")) == "CaCertificatesPem"]
        given = bool(cfn_variants.VARIANTS[name].get("CaCertificatesPem"))
        if len(files) != int(given):
            errors.append(f"variant {name}: {len(files)} files hold CaCertificatesPem, given: {given}")
        for entry in files:
            directory = entry["Path"].rsplit("/", 1)[0]
            if directory not in {d["Path"] for d in tree.get("Directories", [])}:
                errors.append(f"variant {name}: {entry['Path']}: directory {directory} is not declared")
            if not entry["Path"].endswith(".crt") or entry.get("Overwrite") != "true" or entry.get("Mode") != "0644":
                errors.append(f"variant {name}: {entry['Path']} must be a .crt, mode 0644, Overwrite true")
    return errors


CHECKS = {
    "rules-refuse-incomplete-front-doors": check_rules,
    "load-balancer-and-access-logs": check_load_balancer,
    "task-ui-port-ingress": check_task_ingress,
    "alarms": check_alarms,
    "ecs-exec-only-when-enabled": check_exec,
    "ui-certificate-secret": check_ui_certificate,
    "operator-ca-file": check_ca_file,
}


# ---------------------------------------------------------------- self-test
def _props(template, logical_id):
    return template["Resources"][logical_id]["Properties"]


def _drop_rule_assertion(raw, variants, text):
    for rule in raw["Rules"].values():
        rule["Assertions"] = [a for a in rule["Assertions"] if text not in a.get("AssertDescription", "")]


def _lb(variants):
    return variants["load-balancer"]


# (check, fault, mutation(raw, variants), text the check's error must contain)
def _ca_file(variants):
    files = variants["load-balancer"]["Resources"]["EfsTree"]["Properties"]["Files"]
    return next(f for f in files if ref(f.get("Content")) == "CaCertificatesPem")


MUTATIONS = [
    ("operator-ca-file", "written once only", lambda r, v: _ca_file(v).update(Overwrite="false"), "Overwrite true"),
    (
        "operator-ca-file",
        "in an undeclared directory",
        lambda r, v: _ca_file(v).update(Path="data/elsewhere/operator-ca.crt"),
        "directory data/elsewhere is not declared",
    ),
    (
        "rules-refuse-incomplete-front-doors",
        "no certificate assertion",
        lambda r, v: _drop_rule_assertion(r, v, "LoadBalancerCertificateArn"),
        "without LoadBalancerCertificateArn is not refused",
    ),
    (
        "rules-refuse-incomplete-front-doors",
        "a default that opens the load balancer",
        lambda r, v: r["Parameters"]["LoadBalancerIngressCidr"].update(Default="0.0.0.0/0"),
        "must not have a default",
    ),
    (
        "load-balancer-and-access-logs",
        "a TLS 1.0 policy",
        lambda r, v: _props(_lb(v), "HttpsListener").update(SslPolicy="ELBSecurityPolicy-2016-08"),
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
    ),
    (
        "load-balancer-and-access-logs",
        "invalid headers forwarded",
        lambda r, v: _props(_lb(v), "LoadBalancer").update(
            LoadBalancerAttributes=[
                a for a in _props(_lb(v), "LoadBalancer")["LoadBalancerAttributes"] if "drop_invalid" not in a["Key"]
            ]
        ),
        "drop invalid header fields",
    ),
    (
        "load-balancer-and-access-logs",
        "a public log bucket",
        lambda r, v: _props(_lb(v), "AccessLogsBucket")["PublicAccessBlockConfiguration"].update(
            RestrictPublicBuckets=False
        ),
        "block all public access",
    ),
    (
        "load-balancer-and-access-logs",
        "plain HTTP to the task",
        lambda r, v: _props(_lb(v), "TargetGroup").update(Protocol="HTTP"),
        "the target group must be",
    ),
    (
        "task-ui-port-ingress",
        "the CIDR rule kept beside the load balancer",
        lambda r, v: _lb(v)["Resources"].update(
            Extra={
                "Type": "AWS::EC2::SecurityGroupIngress",
                "Properties": {
                    "Description": "extra",
                    "GroupId": {"Ref": "TaskSecurityGroup"},
                    "IpProtocol": "tcp",
                    "FromPort": 3000,
                    "ToPort": 3000,
                    "CidrIp": {"Ref": "UiIngressCidr"},
                },
            }
        ),
        "must admit exactly",
    ),
    (
        "task-ui-port-ingress",
        "an apostrophe in a rule description",
        lambda r, v: _props(v["default"], "TaskFromUiCidrIngress").update(Description="the operators' CIDR"),
        "has characters EC2 refuses",
    ),
    (
        "alarms",
        "missing data not breaching",
        lambda r, v: _props(v["default"], "NoRunningTaskAlarm").update(TreatMissingData="notBreaching"),
        "missing data must be breaching",
    ),
    (
        "alarms",
        "another service name",
        lambda r, v: _props(v["default"], "NoRunningTaskAlarm")["Dimensions"][1].update(Value="ce"),
        "differ from the outputs create-service.sh reads",
    ),
    (
        "alarms",
        "the AWS-managed SNS key",
        lambda r, v: _props(v["default"], "AlarmTopic").update(KmsMasterKeyId="alias/aws/sns"),
        "encrypted with a key of the stack CloudWatch may use",
    ),
    (
        "ecs-exec-only-when-enabled",
        "exec granted by default",
        lambda r, v: v["default"]["Resources"].update(
            TaskRoleExecPolicy=copy.deepcopy(_lb(v)["Resources"]["TaskRoleExecPolicy"])
        ),
        "ssmmessages granted: True, EnableExec: False",
    ),
    (
        "ui-certificate-secret",
        "every secret readable",
        lambda r, v: _props(_lb(v), "TaskExecutionRoleUiCertificatePolicy")["PolicyDocument"]["Statement"][0].update(
            Resource="*"
        ),
        "only the execution role may read the UI certificate secret",
    ),
]


def run_checks(raw, variants):
    failed = 0
    for name, check in CHECKS.items():
        errors = check(raw, variants)
        print(f"{'ok  ' if not errors else 'FAIL'} {name}")
        for error in errors:
            print(f"       {error}")
        failed += bool(errors)
    print(f"operate checks: {len(CHECKS) - failed} passed, {failed} failed")
    return failed == 0


def self_test(raw, variants):
    missed = 0
    for check_name, description, mutate, expected in MUTATIONS:
        r, v = copy.deepcopy(raw), copy.deepcopy(variants)
        mutate(r, v)
        caught = any(expected in error for error in CHECKS[check_name](r, v))
        print(f"{'ok  ' if caught else 'MISS'} {check_name} catches: {description}")
        missed += not caught
    uncovered = set(CHECKS) - {m[0] for m in MUTATIONS}
    for name in sorted(uncovered):
        print(f"MISS {name} has no mutation")
    print(f"operate self-test: {len(MUTATIONS) - missed} of {len(MUTATIONS)} faults caught")
    return missed == 0 and not uncovered


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["check", "self-test"])
    args = parser.parse_args()
    raw = load_template()
    variants = {name: cfn_variants.resolve(raw, values) for name, values in cfn_variants.VARIANTS.items()}
    ok = run_checks(raw, variants) if args.mode == "check" else self_test(raw, variants)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
