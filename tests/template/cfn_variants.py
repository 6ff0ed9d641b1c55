"""The template as CloudFormation would see it for one set of parameter values: conditions
evaluated, resources and outputs whose condition is false dropped, every Fn::If replaced by
the branch it takes and AWS::NoValue removed. References to parameters stay as they are, and
each parameter's Default becomes the variant's value, so cfn-lint and checkov judge the
resources that would really exist, with the values they would really get. (cfn-lint's
W2001, "parameter not used", is expected on a variant: some parameters only feed conditions.)

    cfn_variants.py write DIR     write DIR/<variant>.json for every variant below

Used by tests/template/check-cfn.sh (cfn-lint and checkov on each variant) and tests/template/check_operate.py.
"""

import argparse
import copy
import json
import sys
from pathlib import Path

from tests.template.model import load_template

REGION = "us-east-1"

_NETWORK = {
    "VpcId": "vpc-0123456789abcdef0",
    "PrivateSubnet1Id": "subnet-0123456789abcdef0",
    "PrivateSubnet2Id": "subnet-0123456789abcdef1",
}
# Parameter values per variant (the rest keep their defaults).
VARIANTS = {
    # What deploy.sh gives by default: no load balancer, no operator settings.
    "default": {**_NETWORK, "UiIngressCidr": "10.0.0.0/16"},
    # Every optional part on.
    "load-balancer": {
        **_NETWORK,
        "UiIngressCidr": "",
        "LoadBalancerScheme": "internal",
        "LoadBalancerSubnetIds": "subnet-0123456789abcdef2,subnet-0123456789abcdef3",
        "LoadBalancerCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0f8e4c2a-1111-2222-3333-444455",
        "LoadBalancerIngressCidr": "10.0.0.0/8",
        "LoadBalancerHttpRedirect": "true",
        "CaCertificatesPem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "CoreHttpProxy": "http://proxy.example.com:3128",
        "CoreHttpsProxy": "http://proxy.example.com:3128",
        "CoreNoProxy": ".example.com",
        "UiCertificateSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ce-ui-certificate-AbCdEf",
        "EnableExec": "true",
        "AlarmEmail": "ops@example.com",
    },
}


def parameter_values(template, values):
    """Every parameter's value: the variant's, else its default (as a string, as CloudFormation
    passes them; list parameters as lists)."""
    resolved = {}
    for name, spec in template.get("Parameters", {}).items():
        value = values.get(name, spec.get("Default"))
        if value is None:
            raise ValueError(f"parameter {name} has no default and no value in the variant")
        value = str(value)
        if spec.get("Type", "").startswith("List<") or spec.get("Type") == "CommaDelimitedList":
            value = value.split(",")
        resolved[name] = value
    return resolved


class Resolver:
    def __init__(self, template, values):
        self.template = template
        self.params = parameter_values(template, values)
        self.pseudo = {"AWS::Region": REGION, "AWS::Partition": "aws", "AWS::AccountId": "123456789012"}
        self.conditions = {}

    def value(self, node):
        """A condition operand: a literal or a Ref to a parameter or pseudo parameter."""
        if isinstance(node, dict) and "Ref" in node:
            name = node["Ref"]
            if name in self.params:
                return self.params[name]
            if name in self.pseudo:
                return self.pseudo[name]
            raise ValueError(f"condition refers to {name}, which is not a parameter")
        if isinstance(node, dict) and "Fn::Join" in node:
            sep, items = node["Fn::Join"]
            items = self.value(items)
            return sep.join(self.value(i) for i in items)
        if isinstance(node, dict) and "Fn::Split" in node:
            sep, text = node["Fn::Split"]
            return self.value(text).split(sep)
        if isinstance(node, dict) and "Fn::Select" in node:
            index, items = node["Fn::Select"]
            items = self.value(items)
            if not 0 <= int(index) < len(items):
                raise ValueError(f"Fn::Select index {index} is out of range for {items}")
            return items[int(index)]
        if isinstance(node, list):
            return [self.value(i) for i in node]
        return node

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = self.evaluate(self.template["Conditions"][name])
        return self.conditions[name]

    def evaluate(self, node):
        ((function, args),) = node.items()
        if function == "Fn::Equals":
            return self.value(args[0]) == self.value(args[1])
        if function == "Fn::Not":
            return not self.evaluate(args[0])
        if function == "Fn::And":
            return all(self.evaluate(a) for a in args)
        if function == "Fn::Or":
            return any(self.evaluate(a) for a in args)
        if function == "Condition":
            return self.condition(args)
        raise ValueError(f"unsupported function in a condition: {function}")

    NO_VALUE = object()

    def resolve(self, node):
        if isinstance(node, dict):
            if set(node) == {"Fn::If"}:
                name, yes, no = node["Fn::If"]
                return self.resolve(yes if self.condition(name) else no)
            if node == {"Ref": "AWS::NoValue"}:
                return self.NO_VALUE
            out = {}
            for key, value in node.items():
                value = self.resolve(value)
                if value is not self.NO_VALUE:
                    out[key] = value
            return out
        if isinstance(node, list):
            return [v for v in (self.resolve(i) for i in node) if v is not self.NO_VALUE]
        return node


def resolve(template, values):
    """The variant of TEMPLATE for the parameter VALUES (a new dict)."""
    template = copy.deepcopy(template)
    resolver = Resolver(template, values)
    for section in ("Resources", "Outputs"):
        kept = {}
        for name, item in template.get(section, {}).items():
            if "Condition" in item:
                if not resolver.condition(item["Condition"]):
                    continue
                item = {k: v for k, v in item.items() if k != "Condition"}
            kept[name] = resolver.resolve(item)
        template[section] = kept
    template.pop("Conditions", None)
    if "Fn::FindInMap" not in json.dumps(template["Resources"]) + json.dumps(template["Outputs"]):
        template.pop("Mappings", None)
    for name, spec in template.get("Parameters", {}).items():
        if name in values:
            spec["Default"] = values[name]
            if "AllowedValues" in spec:
                spec["AllowedValues"] = [values[name]]
    return template


def variants():
    """{variant name: resolved template}."""
    template = load_template()
    return {name: resolve(template, values) for name, values in VARIANTS.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["write"])
    parser.add_argument("directory", type=Path)
    args = parser.parse_args()
    args.directory.mkdir(parents=True, exist_ok=True)
    for name, template in variants().items():
        (args.directory / f"{name}.json").write_text(json.dumps(template, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
