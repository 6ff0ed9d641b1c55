"""Offline rules for kinds of template faults that pass cfn-lint and the local AWS yet fail,
or silently do nothing, in real AWS. Each rule finds the class, not one instance:

- a parameter without Default whose AllowedPattern accepts "": CloudFormation demands a value
  for it on every CreateStack and IMPORT change set ("Parameters: [X] must have values"),
  although "" would pass its own pattern;
- a parameter that feeds a create-only property of a load balancer (the provider schema's
  createOnlyProperties, as cfn-lint ships them) while a target group behind one of its
  listeners does not change with it: the new load balancer's listener then fails with
  TargetGroupAssociationLimit (a target group belongs to one load balancer only);
- an alarm action on a topic encrypted with an AWS-managed key (alias/aws/...): CloudWatch
  cannot use such a key, whose policy cannot be changed, so every notification is dropped;
- a proxy URL parameter whose port the task's security group does not open (or opens twice,
  which EC2 refuses), for the variants and the proxy scenarios below;
- a region cfn-lint knows that the ELB log-delivery mapping lacks (a lookup would miss).

    python -m tests.template.check_fault_classes check       exit 1 on any finding
    python -m tests.template.check_fault_classes self-test   plant one fault per rule on a copy
"""

import argparse
import copy
import re
import sys
from pathlib import Path

import cfnlint
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from tests.template import cfn_variants, planted_faults
from tests.template.check_operate import of_type, task_sg
from tests.template.model import load_template
from tests.template.model import ref_target as ref

# Proxy settings the proxy rule checks besides the variants: two ports, the HTTPS port only,
# the same port twice, a trailing slash.
PROXY_SCENARIOS = [
    {"CoreHttpProxy": "http://proxy.example.com:8080", "CoreHttpsProxy": "http://proxy.example.com:3128"},
    {"CoreHttpsProxy": "http://proxy.example.com:443/"},
    {"CoreHttpProxy": "http://proxy.example.com:3128/", "CoreHttpsProxy": "http://proxy.example.com:3128"},
    {"CoreHttpProxy": "http://proxy.example.com:8080"},
]
# Regions that are not commercial, China or GovCloud ones (isolated partitions, SAM's schema).
NOT_A_REGION = re.compile(r"^(us-iso[a-z]?-|eu-isoe-|eusc-|sam$)")


def parameters_in(node):
    """The parameters (and pseudo parameters) NODE's value depends on."""
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::Sub":
                text, local = (value, {}) if isinstance(value, str) else (value[0], value[1])
                found |= {n for n in re.findall(r"\$\{([A-Za-z0-9:]+)\}", text) if n not in local}
                found |= parameters_in(local)
            else:
                found |= parameters_in(value)
    elif isinstance(node, list):
        for item in node:
            found |= parameters_in(item)
    return found


def create_only(resource_type, properties):
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(cfn_variants.REGION, resource_type).schema
    names = [p.split("/")[2] for p in schema.get("createOnlyProperties", []) if p.count("/") == 2]
    return {name: properties[name] for name in names if name in properties}


# ---------------------------------------------------------------- rules
def check_empty_without_default(template, variants):
    errors = []
    for name, spec in template["Parameters"].items():
        if "Default" in spec or spec.get("Type", "String") != "String" or int(spec.get("MinLength", 0)) > 0:
            continue
        if re.fullmatch(spec.get("AllowedPattern", ".*"), ""):
            errors.append(
                f"parameter {name} has no Default although its pattern accepts the empty string: "
                'CloudFormation demands a value on every create and IMPORT change set; give it Default: ""'
            )
    return errors


def check_target_group_replaced_with_load_balancer(template, variants):
    errors = []
    parameters = set(template["Parameters"])
    resources = template["Resources"]
    for lb_id, lb in of_type(template, "AWS::ElasticLoadBalancingV2::LoadBalancer").items():
        fed = parameters_in(create_only(lb["Type"], lb.get("Properties", {}))) & parameters
        for listener in of_type(template, "AWS::ElasticLoadBalancingV2::Listener").values():
            if ref(listener["Properties"].get("LoadBalancerArn")) != lb_id:
                continue
            for action in listener["Properties"].get("DefaultActions", []):
                tg_id = ref(action.get("TargetGroupArn"))
                if tg_id not in resources:
                    continue
                tg = resources[tg_id]
                follows = parameters_in(create_only(tg["Type"], tg.get("Properties", {})))
                for parameter in sorted(fed - follows):
                    errors.append(
                        f"{lb_id}: parameter {parameter} replaces it (create-only), but target group {tg_id} "
                        "outlives it: the new listener fails with TargetGroupAssociationLimit; feed the "
                        "parameter into a create-only property of the target group (its Name)"
                    )
    return errors


def check_alarm_topics_usable(template, variants):
    errors = []
    topics = of_type(template, "AWS::SNS::Topic")
    for alarm_id, alarm in of_type(template, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        for action in (
            props.get("AlarmActions", []) + props.get("OKActions", []) + props.get("InsufficientDataActions", [])
        ):
            topic = topics.get(ref(action))
            key = (topic or {}).get("Properties", {}).get("KmsMasterKeyId")
            if isinstance(key, str) and re.match(r"^(arn:[^:]+:kms:[^:]*:[0-9]*:)?alias/aws/", key):
                errors.append(
                    f"{alarm_id}: notifies topic {ref(action)}, encrypted with the AWS-managed key {key}, "
                    "which CloudWatch cannot use: every alarm action would fail"
                )
    return list(dict.fromkeys(errors))


def task_egress(template):
    """(from, to) of every tcp egress rule of the task's security group, as values."""
    resolver = cfn_variants.Resolver(template, {})
    group = task_sg(template)
    rules = list(template["Resources"][group]["Properties"].get("SecurityGroupEgress", []))
    rules += [
        r["Properties"]
        for r in of_type(template, "AWS::EC2::SecurityGroupEgress").values()
        if ref(r["Properties"]["GroupId"]) == group
    ]
    return [
        (
            int(resolver.value(r["FromPort"])),
            int(resolver.value(r["ToPort"])),
            str(r.get("CidrIp", r.get("DestinationSecurityGroupId"))),
        )
        for r in rules
        if str(r.get("IpProtocol")) in ("tcp", "6", "-1")
    ]


def check_proxy_ports_open(template, variants):
    errors = []
    scenarios = dict(cfn_variants.VARIANTS)
    for index, values in enumerate(PROXY_SCENARIOS):
        scenarios[f"proxy-{index}"] = {**cfn_variants.VARIANTS["default"], **values}
    for name, values in scenarios.items():
        resolved = variants.get(name) or cfn_variants.resolve(template, values)
        rules = task_egress(resolved)
        duplicates = {rule for rule in rules if rules.count(rule) > 1}
        if duplicates:
            errors.append(f"{name}: the task's egress holds the same rule twice (EC2 refuses it): {sorted(duplicates)}")
        for parameter, url in sorted(values.items()):
            match = re.fullmatch(r"https?://[^/:]+:([0-9]+)/?", str(url)) if parameter.endswith("Proxy") else None
            if match and not any(low <= int(match.group(1)) <= high for low, high, _ in rules):
                errors.append(
                    f"{name}: {parameter} {url}: the task's security group opens no egress to port {match.group(1)}"
                )
    return errors


def check_log_delivery_regions(template, variants):
    # cfn-lint ships one provider-schema file per region it knows.
    known = {path.stem for path in (Path(cfnlint.__file__).parent / "data" / "schemas" / "providers").glob("*.json")}
    mapped = set(template.get("Mappings", {}).get("ElbLogDeliveryAccount", {}))
    missing = {region for region in known - mapped if not NOT_A_REGION.match(region)}
    return [f"ElbLogDeliveryAccount has no entry for region {region}" for region in sorted(missing)]


CHECKS = {
    "parameter-empty-without-default": check_empty_without_default,
    "target-group-replaced-with-load-balancer": check_target_group_replaced_with_load_balancer,
    "alarm-topic-key-usable-by-cloudwatch": check_alarm_topics_usable,
    "proxy-ports-open-in-task-egress": check_proxy_ports_open,
    "elb-log-delivery-every-region": check_log_delivery_regions,
}


# ---------------------------------------------------------------- planted faults
def _resources(template):
    return template["Resources"]


MUTATIONS = [
    (
        "parameter-empty-without-default",
        "UiIngressCidr without its Default",
        lambda t: t["Parameters"]["UiIngressCidr"].pop("Default"),
        "parameter UiIngressCidr has no Default",
    ),
    (
        "target-group-replaced-with-load-balancer",
        "a target group named without the scheme",
        lambda t: _resources(t)["TargetGroup"]["Properties"].pop("Name"),
        "parameter LoadBalancerScheme replaces it",
    ),
    (
        "alarm-topic-key-usable-by-cloudwatch",
        "the topic under alias/aws/sns",
        lambda t: _resources(t)["AlarmTopic"]["Properties"].update(KmsMasterKeyId="alias/aws/sns"),
        "encrypted with the AWS-managed key alias/aws/sns",
    ),
    (
        "proxy-ports-open-in-task-egress",
        "no egress rule for the HTTP proxy's port",
        lambda t: _resources(t).pop("TaskToHttpProxyEgress"),
        "opens no egress to port 8080",
    ),
    (
        "proxy-ports-open-in-task-egress",
        "one rule per proxy even when both use the same port",
        lambda t: _resources(t)["TaskToHttpProxyEgress"].update(Condition="HasCoreHttpProxy"),
        "the same rule twice",
    ),
    (
        "elb-log-delivery-every-region",
        "a newer region left out of the mapping",
        lambda t: t["Mappings"]["ElbLogDeliveryAccount"].pop("il-central-1"),
        "no entry for region il-central-1",
    ),
]


def run(template):
    variants = {name: cfn_variants.resolve(template, values) for name, values in cfn_variants.VARIANTS.items()}
    return lambda check: check(template, variants)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["check", "self-test"])
    args = parser.parse_args()
    template = load_template()
    if args.mode == "check":
        ok = planted_faults.run_checks(CHECKS, run(template), "fault-class checks")
    else:

        def plant(mutate, check):
            broken = copy.deepcopy(template)
            mutate(broken)
            return run(broken)(check)

        ok = planted_faults.self_test(CHECKS, MUTATIONS, plant, "fault-class self-test")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
