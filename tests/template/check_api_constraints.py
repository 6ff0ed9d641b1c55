"""Checks the template's literal property values against the constraints of the AWS APIs
CloudFormation calls with them, as botocore's service models state them: patterns, lengths,
enums and ranges, plus the constraints EC2 states only in its documentation text (allowed
characters and lengths of security group and rule descriptions and group names, tag keys).

cfn-lint checks CloudFormation's own resource schemas, which leave many of these out (for
example a security group rule's Description: cfn-lint takes any string, EC2 refuses an
apostrophe), and moto checks none of them, so a template can pass both and still fail on
its first real deploy.

    check_api_constraints.py check [--template FILE]   exit 1 on any violation
    check_api_constraints.py self-test                 plant one fault per kind of constraint
                                                       in a copy of the template and exit 1
                                                       unless each is caught

Values are evaluated as CloudFormation would: Ref and Fn::Sub of parameters with each
parameter's default and with its longest allowed value (MaxLength), pseudo parameters with
long examples, both branches of Fn::If, Fn::Join of what is known. A value built from another
resource's Ref or GetAtt is an id or ARN that AWS made, and is not checked.

Each resource type maps to the API operation that creates it (TYPES); a property of the same
name (compared without case) in the operation's input is checked against its shape, and
PROPERTY_SHAPES names the ones whose names differ. A resource type missing from TYPES fails
the check, so a new kind of resource is mapped before it is deployed.
"""

import argparse
import copy
import html
import itertools
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import botocore.session
import regex

from tests.template import cfn_variants
from tests.template.model import TEMPLATE, load_template

# Resource type -> (service, operation whose input creates it); None: nothing to check
# (CloudFormation-only resources, custom resources).
TYPES = {
    "AWS::EC2::SecurityGroup": ("ec2", "CreateSecurityGroup"),
    "AWS::EC2::SecurityGroupIngress": ("ec2", "AuthorizeSecurityGroupIngress"),
    "AWS::EC2::SecurityGroupEgress": ("ec2", "AuthorizeSecurityGroupEgress"),
    "AWS::EC2::VPCEndpoint": ("ec2", "CreateVpcEndpoint"),
    "AWS::EFS::FileSystem": ("efs", "CreateFileSystem"),
    "AWS::EFS::MountTarget": ("efs", "CreateMountTarget"),
    "AWS::EFS::AccessPoint": ("efs", "CreateAccessPoint"),
    "AWS::SecretsManager::Secret": ("secretsmanager", "CreateSecret"),
    "AWS::Logs::LogGroup": ("logs", "CreateLogGroup"),
    "AWS::IAM::Role": ("iam", "CreateRole"),
    "AWS::IAM::RolePolicy": ("iam", "PutRolePolicy"),
    "AWS::IAM::Policy": ("iam", "PutRolePolicy"),
    "AWS::Lambda::Function": ("lambda", "CreateFunction"),
    "AWS::Lambda::Permission": ("lambda", "AddPermission"),
    "AWS::ECS::Cluster": ("ecs", "CreateCluster"),
    "AWS::ECS::Service": ("ecs", "CreateService"),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": ("elbv2", "CreateLoadBalancer"),
    "AWS::ElasticLoadBalancingV2::TargetGroup": ("elbv2", "CreateTargetGroup"),
    "AWS::ElasticLoadBalancingV2::Listener": ("elbv2", "CreateListener"),
    "AWS::ElasticLoadBalancingV2::ListenerRule": ("elbv2", "CreateRule"),
    "AWS::SNS::Topic": ("sns", "CreateTopic"),
    "AWS::KMS::Key": ("kms", "CreateKey"),
    "AWS::SNS::Subscription": ("sns", "Subscribe"),
    "AWS::SNS::TopicPolicy": None,  # a policy document; IAM's grammar, not a shape
    "AWS::CloudWatch::Alarm": ("cloudwatch", "PutMetricAlarm"),
    "AWS::Route53::HostedZone": ("route53", "CreateHostedZone"),
    "AWS::Route53::RecordSet": ("route53", "ChangeResourceRecordSets"),
    # A bucket's properties are spread over a dozen Put* calls; its name is generated here.
    "AWS::S3::Bucket": None,
    "AWS::S3::BucketPolicy": None,  # a policy document; IAM's grammar, not a shape
    "AWS::CloudFormation::WaitConditionHandle": None,
    "AWS::CloudFormation::WaitCondition": None,
}
CUSTOM_TYPE = re.compile(r"^(Custom::|AWS::CloudFormation::CustomResource$)")

# (resource type, property) -> where its constraints live when the names differ:
# "Shape" (a shape of the type's service), "Operation.Member[.Member...]" or None
# (deliberately unchecked, with the reason in a comment).
PROPERTY_SHAPES = {
    ("AWS::EC2::SecurityGroup", "GroupDescription"): "CreateSecurityGroup.Description",
    ("AWS::EC2::SecurityGroup", "Tags"): "TagList",
    ("AWS::EC2::SecurityGroup", "SecurityGroupIngress"): "rules",
    ("AWS::EC2::SecurityGroup", "SecurityGroupEgress"): "rules",
    ("AWS::EC2::VPCEndpoint", "Tags"): "TagList",
    ("AWS::EC2::VPCEndpoint", "PolicyDocument"): "CreateVpcEndpoint.PolicyDocument",
    ("AWS::EFS::FileSystem", "FileSystemTags"): "CreateFileSystem.Tags",
    ("AWS::EFS::FileSystem", "BackupPolicy"): "PutBackupPolicy.BackupPolicy",
    ("AWS::EFS::FileSystem", "FileSystemPolicy"): "PutFileSystemPolicy.Policy",
    ("AWS::EFS::FileSystem", "LifecyclePolicies"): "PutLifecycleConfiguration.LifecyclePolicies",
    ("AWS::EFS::MountTarget", "SecurityGroups"): "CreateMountTarget.SecurityGroups",
    ("AWS::EFS::AccessPoint", "AccessPointTags"): "CreateAccessPoint.Tags",
    ("AWS::SecretsManager::Secret", "GenerateSecretString"): "GetRandomPassword",
    ("AWS::Logs::LogGroup", "RetentionInDays"): "PutRetentionPolicy.retentionInDays",
    ("AWS::IAM::Role", "Policies"): "policies",
    ("AWS::IAM::Policy", "Roles"): None,  # role names made by this stack (Refs)
    ("AWS::IAM::RolePolicy", "RoleName"): "PutRolePolicy.RoleName",
    ("AWS::Lambda::Function", "Code"): None,  # a local path `aws cloudformation package` replaces
    ("AWS::Lambda::Function", "LoggingConfig"): "CreateFunction.LoggingConfig",
    ("AWS::ElasticLoadBalancingV2::LoadBalancer", "LoadBalancerAttributes"): "ModifyLoadBalancerAttributes.Attributes",
    ("AWS::ElasticLoadBalancingV2::TargetGroup", "TargetGroupAttributes"): "ModifyTargetGroupAttributes.Attributes",
    ("AWS::SNS::Topic", "TopicName"): "CreateTopic.Name",
    ("AWS::KMS::Key", "KeyPolicy"): "CreateKey.Policy",
    ("AWS::KMS::Key", "EnableKeyRotation"): None,  # EnableKeyRotation's own call, a boolean
    ("AWS::CloudWatch::Alarm", "AlarmActions"): "PutMetricAlarm.AlarmActions",
}

# Values for the pseudo parameters: the longest of their kind.
PSEUDO = {
    "AWS::Region": "ap-southeast-2",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws-us-gov",
    "AWS::StackName": "S" * 128,
    "AWS::URLSuffix": "amazonaws.com.cn",
    "AWS::StackId": "arn:aws:cloudformation:ap-southeast-2:123456789012:stack/s/0",
}
# Example values of parameter types that have no default.
TYPE_EXAMPLES = {
    "AWS::EC2::VPC::Id": "vpc-0123456789abcdef0",
    "AWS::EC2::Subnet::Id": "subnet-0123456789abcdef0",
    "String": "x",
    "Number": "1",
    "CommaDelimitedList": "",
}
UNKNOWN = object()  # a value AWS makes (a resource's id or ARN)


@dataclass
class Report:
    violations: list = field(default_factory=list)
    checked: int = 0
    unmapped: set = field(default_factory=set)  # (type, property) with no shape of that name

    def fail(self, where, message):
        self.violations.append(f"{where}: {message}")


# ---------------------------------------------------------------- values
def scenarios(template):
    """Parameter values to evaluate with: every default, then every longest allowed value,
    then the defaults with every optional part on (tests/template/cfn_variants.py's load-balancer
    variant), so resources behind a condition are checked too."""
    defaults, longest = {}, {}
    for name, spec in template.get("Parameters", {}).items():
        value = spec.get("Default", TYPE_EXAMPLES.get(spec.get("Type", "String"), "x"))
        defaults[name] = longest[name] = str(value) if not isinstance(value, list) else ",".join(value)
        if "MaxLength" in spec:
            candidate = "a" * int(spec["MaxLength"])
            if re.fullmatch(spec.get("AllowedPattern", ".*"), candidate):
                longest[name] = candidate
    return [defaults, longest, {**defaults, **cfn_variants.VARIANTS["load-balancer"]}]


def evaluate(node, params, resolver=None):
    """Every concrete value NODE can take (a list): plain data with intrinsics resolved,
    UNKNOWN where it depends on another resource. Fn::If takes the branch RESOLVER's
    condition picks (both branches without one)."""
    if isinstance(node, list):
        return [list(combo) for combo in itertools.product(*(evaluate(item, params, resolver) for item in node))][:8]
    if not isinstance(node, dict):
        return [node]
    if len(node) == 1:
        key, arg = next(iter(node.items()))
        if key == "Ref":
            if arg in params:
                return [params[arg]]
            return [PSEUDO[arg]] if arg in PSEUDO else [UNKNOWN]
        if key == "Fn::If":
            if resolver is not None:
                return evaluate(arg[1] if resolver.condition(arg[0]) else arg[2], params, resolver)
            return evaluate(arg[1], params) + evaluate(arg[2], params)
        if key == "Fn::Sub":
            text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

            def sub(match):
                name = match.group(1)
                if name.startswith("!"):
                    return "${" + name[1:] + "}"
                if name in local:
                    value = evaluate(local[name], params)[0]
                else:
                    value = params.get(name, PSEUDO.get(name, UNKNOWN))
                if value is UNKNOWN:
                    raise LookupError(name)
                return str(value)

            try:
                return [re.sub(r"\$\{([^}]+)\}", sub, text)]
            except LookupError:
                return [UNKNOWN]
        if key == "Fn::Join":
            parts = [evaluate(part, params)[0] for part in arg[1]] if isinstance(arg[1], list) else [UNKNOWN]
            if any(part is UNKNOWN for part in parts):
                return [UNKNOWN]
            return [arg[0].join(str(part) for part in parts)]
        if key.startswith("Fn::") or key == "Condition":
            return [UNKNOWN]
    keys = list(node)
    combos = itertools.product(*(evaluate(node[k], params, resolver) for k in keys))
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.islice(combos, 8)]


# ---------------------------------------------------------------- constraints
def doc_constraints(shape):
    """Constraints botocore states only in a member's documentation (EC2 does this)."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", shape.documentation or ""))
    text = re.sub(r"\s+", " ", text)
    found = {}
    if match := re.search(r"(?:Up to|maximum of|up to) (\d+) (?:Unicode |UTF-8 |ASCII )?characters", text):
        found["max"] = int(match.group(1))
    if match := re.search(r"(?:Allowed|Valid) characters(?: are|:) a-z, A-Z, 0-9, spaces, and (\S+)", text):
        chars = match.group(1)
        found["chars"] = "[a-zA-Z0-9 " + "".join(re.escape(c) for c in chars) + "]*"
    if match := re.search(r"(?:Cannot start with|May not begin with) (\S+?)\.?(?:\s|$)", text):
        found["prefix"] = match.group(1).rstrip(".")
    return found


def check_scalar(value, shape, where, report):
    report.checked += 1
    meta = shape.metadata
    if shape.type_name in ("integer", "long", "double", "float"):
        try:
            number = float(value) if shape.type_name in ("double", "float") else int(str(value), 10)
        except ValueError:
            report.fail(where, f"{value!r} is not a number ({shape.name})")
            return
        if "min" in meta and number < meta["min"]:
            report.fail(where, f"{number} is below the minimum {meta['min']} ({shape.name})")
        if "max" in meta and number > meta["max"]:
            report.fail(where, f"{number} is above the maximum {meta['max']} ({shape.name})")
        return
    if shape.type_name == "boolean":
        if str(value).lower() not in ("true", "false"):
            report.fail(where, f"{value!r} is not a boolean")
        return
    if shape.type_name != "string":
        return
    # A document given as YAML (a policy) is sent as JSON text; ids AWS makes count as a word.
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=lambda _: "id")
    docs = doc_constraints(shape)
    if "enum" in meta and text not in meta["enum"]:
        report.fail(where, f"{text!r} is not one of {meta['enum']} ({shape.name})")
    if "min" in meta and len(text) < meta["min"]:
        report.fail(where, f"{text!r} is shorter than {meta['min']} characters ({shape.name})")
    limit = meta.get("max", docs.get("max"))
    if limit is not None and len(text) > limit:
        report.fail(where, f"{len(text)} characters, more than {limit} ({shape.name}): {text[:60]!r}...")
    if "pattern" in meta and not regex.fullmatch(meta["pattern"], text):
        report.fail(where, f"{text!r} does not match {meta['pattern']} ({shape.name})")
    if "chars" in docs and not re.fullmatch(docs["chars"], text):
        bad = sorted({c for c in text if not re.fullmatch(docs["chars"], c)})
        report.fail(where, f"{text!r} holds characters the API refuses: {''.join(bad)!r} ({shape.name})")
    if "prefix" in docs and text.lower().startswith(docs["prefix"].lower()):
        report.fail(where, f"{text!r} starts with {docs['prefix']!r}, which the API refuses ({shape.name})")


def check_value(value, shape, where, report, rtype):
    """Walks VALUE (intrinsics resolved) along the botocore SHAPE."""
    if value is UNKNOWN or value is None:
        return
    if shape.type_name == "structure":
        if not isinstance(value, dict):
            return
        for key, item in value.items():
            member = member_named(shape, key)
            if member is None:
                report.unmapped.add((rtype, f"{where}.{key}"))
                continue
            check_value(item, member, f"{where}.{key}", report, rtype)
    elif shape.type_name == "list":
        if not isinstance(value, list):
            check_value(value, shape.member, where, report, rtype)
            return
        meta = shape.metadata
        if "max" in meta and len(value) > meta["max"]:
            report.fail(where, f"{len(value)} items, more than {meta['max']} ({shape.name})")
        for index, item in enumerate(value):
            check_value(item, shape.member, f"{where}[{index}]", report, rtype)
    elif shape.type_name == "map":
        if isinstance(value, dict):
            for key, item in value.items():
                check_scalar(key, shape.key, f"{where}.{key} (key)", report)
                check_value(item, shape.value, f"{where}.{key}", report, rtype)
    else:
        check_scalar(value, shape, where, report)


def member_named(shape, name):
    for member, member_shape in shape.members.items():
        if member.lower() == name.lower():
            return member_shape
    return None


def shape_at(model, path):
    """ "Operation.Member.Member" (an operation's input) or "ShapeName"."""
    head, *rest = path.split(".")
    shape = model.operation_model(head).input_shape if head in model.operation_names else model.shape_for(head)
    for name in rest:
        shape = shape.members[name]
    return shape


def rule_description_shape(model, rule):
    """EC2 constrains a rule's description by the kind of peer it names."""
    if "CidrIpv6" in rule:
        name = "Ipv6Range"
    elif any(k in rule for k in ("SourcePrefixListId", "DestinationPrefixListId")):
        name = "PrefixListId"
    elif any(k.endswith(("SecurityGroupId", "SecurityGroupName")) for k in rule):
        name = "UserIdGroupPair"
    else:
        name = "IpRange"
    return model.shape_for(name).members["Description"]


def check_rules(model, rules, where, report):
    for index, rule in enumerate(rules if isinstance(rules, list) else [rules]):
        if not isinstance(rule, dict):
            continue
        here = f"{where}[{index}]" if isinstance(rules, list) else where
        permission = model.shape_for("IpPermission")
        for key in ("IpProtocol", "FromPort", "ToPort"):
            if key in rule:
                check_value(rule[key], permission.members[key], f"{here}.{key}", report, "")
        if "Description" in rule:
            check_value(rule["Description"], rule_description_shape(model, rule), f"{here}.Description", report, "")


def check_policies(model, policies, where, report):
    put = model.operation_model("PutRolePolicy").input_shape
    for index, policy in enumerate(policies if isinstance(policies, list) else []):
        if isinstance(policy, dict):
            for key in ("PolicyName", "PolicyDocument"):
                if key in policy:
                    check_value(policy[key], put.members[key], f"{where}[{index}].{key}", report, "")


def check_template(template):
    session = botocore.session.get_session()
    models = {}
    report = Report()
    for params in scenarios(template):
        resolver = cfn_variants.Resolver(template, params)
        for logical_id, resource in template.get("Resources", {}).items():
            rtype = resource.get("Type", "")
            # A resource whose condition is false with these values is not created.
            if "Condition" in resource and not resolver.condition(resource["Condition"]):
                continue
            if CUSTOM_TYPE.match(rtype):
                continue
            if rtype not in TYPES:
                report.fail(logical_id, f"resource type {rtype} is not mapped to an API operation in TYPES")
                continue
            if TYPES[rtype] is None:
                continue
            service, operation = TYPES[rtype]
            model = models.setdefault(service, session.get_service_model(service))
            input_shape = model.operation_model(operation).input_shape
            for prop, raw in resource.get("Properties", {}).items():
                where = f"{logical_id}.{prop}"
                target = PROPERTY_SHAPES.get((rtype, prop), "")
                for value in evaluate(raw, params, resolver):
                    if target is None or value is UNKNOWN:
                        continue
                    if target == "rules" or rtype in (
                        "AWS::EC2::SecurityGroupIngress",
                        "AWS::EC2::SecurityGroupEgress",
                    ):
                        if target == "rules":
                            check_rules(model, value, where, report)
                        elif prop == "Description":
                            check_rules(model, resource_values(resource, params), logical_id, report)
                        elif prop in ("IpProtocol", "FromPort", "ToPort"):
                            check_value(value, model.shape_for("IpPermission").members[prop], where, report, rtype)
                        continue
                    if target == "policies":
                        check_policies(model, value, where, report)
                        continue
                    shape = shape_at(model, target) if target else member_named(input_shape, prop)
                    if shape is None:
                        report.unmapped.add((rtype, prop))
                        continue
                    check_value(value, shape, where, report, rtype)
    report.violations = list(dict.fromkeys(report.violations))
    return report


def resource_values(resource, params):
    return {k: evaluate(v, params)[0] for k, v in resource.get("Properties", {}).items()}


# ---------------------------------------------------------------- self-test
def _resource_of_type(template, rtype):
    return next(r for r in template["Resources"].values() if r.get("Type") == rtype)


def _rule_with_apostrophe(t):
    sg = next(
        r
        for r in t["Resources"].values()
        if r["Type"] == "AWS::EC2::SecurityGroup" and r["Properties"].get("SecurityGroupIngress")
    )
    sg["Properties"]["SecurityGroupIngress"][0]["Description"] = "the operators' CIDR"


def _group_description_too_long(t):
    _resource_of_type(t, "AWS::EC2::SecurityGroup")["Properties"]["GroupDescription"] = {
        "Fn::Sub": "x" * 240 + " (${EnvironmentName})"
    }


def _egress_rule_with_quote(t):
    _resource_of_type(t, "AWS::EC2::SecurityGroupEgress")["Properties"]["Description"] = 'NFS "out"'


def _group_name_sg_prefix(t):
    _resource_of_type(t, "AWS::EC2::SecurityGroup")["Properties"]["GroupName"] = "sg-cloud-exchange"


def _efs_tag_aws_prefix(t):
    _resource_of_type(t, "AWS::EFS::FileSystem")["Properties"]["FileSystemTags"].append(
        {"Key": "aws:owner", "Value": "ce"}
    )


def _access_point_path_too_deep(t):
    _resource_of_type(t, "AWS::EFS::AccessPoint")["Properties"]["RootDirectory"]["Path"] = "/a/b/c/d/e"


def _ec2_tag_key_aws_prefix(t):
    _resource_of_type(t, "AWS::EC2::SecurityGroup")["Properties"]["Tags"].append({"Key": "aws:x", "Value": "y"})


def _secret_description_too_long(t):
    _resource_of_type(t, "AWS::SecretsManager::Secret")["Properties"]["Description"] = "d" * 2049


def _throughput_mode_typo(t):
    _resource_of_type(t, "AWS::EFS::FileSystem")["Properties"]["ThroughputMode"] = "Elastic"


def _lambda_mount_path(t):
    _resource_of_type(t, "AWS::Lambda::Function")["Properties"]["FileSystemConfigs"][0]["LocalMountPath"] = "/efs"


def _unmapped_type(t):
    t["Resources"]["Planted"] = {"Type": "AWS::EC2::Instance", "Properties": {}}


FAULTS = [
    (
        "SG rule description with an apostrophe",
        _rule_with_apostrophe,
        'SecurityGroupIngress[0].Description: "the operators\' CIDR" holds',
    ),
    (
        "group description over 255 at the longest EnvironmentName",
        _group_description_too_long,
        "GroupDescription: 259 characters, more than 255",
    ),
    (
        "egress rule description with a double quote",
        _egress_rule_with_quote,
        "Egress.Description: 'NFS \"out\"' holds characters",
    ),
    ("group name starting with sg-", _group_name_sg_prefix, "starts with 'sg-'"),
    ("EC2 tag key starting with aws:", _ec2_tag_key_aws_prefix, "starts with 'aws:'"),
    ("EFS tag key starting with aws:", _efs_tag_aws_prefix, "'aws:owner' does not match"),
    ("access point path five levels deep", _access_point_path_too_deep, "'/a/b/c/d/e' does not match"),
    ("secret description over 2048", _secret_description_too_long, "more than 2048"),
    ("EFS throughput mode not in the enum", _throughput_mode_typo, "'Elastic' is not one of"),
    ("Lambda mount path outside /mnt", _lambda_mount_path, "'/efs' does not match"),
    ("resource type without a mapping", _unmapped_type, "AWS::EC2::Instance is not mapped"),
]


def self_test(template):
    """Each fault must add a violation the unchanged template does not have."""
    missed = 0
    clean = set(check_template(template).violations)
    for name, plant, expected in FAULTS:
        broken = copy.deepcopy(template)
        plant(broken)
        found = [v for v in check_template(broken).violations if expected in v and v not in clean]
        status = "caught" if found else "MISSED"
        print(f"self-test: {name}: {status}{': ' + found[0] if found else ''}")
        missed += not found
    return missed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["check", "self-test"])
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    args = parser.parse_args()
    template = load_template(args.template)
    if args.mode == "self-test":
        missed = self_test(template)
        print(f"self-test: {len(FAULTS) - missed} of {len(FAULTS)} planted faults caught")
        return 1 if missed else 0
    report = check_template(template)
    for violation in report.violations:
        print(f"api-constraints: {violation}")
    for rtype, prop in sorted(report.unmapped):
        print(f"api-constraints: note: {rtype} {prop} has no API field of that name; not checked")
    print(f"api-constraints: {report.checked} values checked, {len(report.violations)} violations")
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
