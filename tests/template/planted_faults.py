"""The one runner of the repository's offline checkers (tests/template/check_cfn.py,
tests/template/check_operate.py, tests/runtime/container_view.py, ...): a checker is a dict of named checks,
each returning its errors, and a list of planted faults, at least one per check.

    run_checks(checks, run)            runs each check, prints ok/FAIL and its errors
    self_test(checks, faults, plant)   plants each fault on a copy and proves its check
                                       reports it; a check without a fault is a miss too

A fault is (check name, description, mutate, text one of the check's errors must contain).
The checker supplies how a check is called (`run(check)`) and how a fault is planted on a
copy of its inputs (`plant(mutate, check)` returns the check's errors on that copy).
"""


def run_checks(checks, run, label="checks"):
    """Runs every check; True when none reports an error."""
    failed = 0
    for name, check in checks.items():
        errors = run(check)
        print(f"{'ok  ' if not errors else 'FAIL'} {name}")
        for error in errors:
            print(f"       {error}")
        failed += bool(errors)
    print(f"{label}: {len(checks) - failed} passed, {failed} failed")
    return failed == 0


def self_test(checks, faults, plant, label="self-test"):
    """Plants every fault; True when each is caught by its check and every check has one."""
    missed = 0
    for check_name, description, mutate, expected in faults:
        errors = plant(mutate, checks[check_name])
        caught = any(expected in error for error in errors)
        print(f"{'ok  ' if caught else 'MISS'} {check_name} catches: {description}")
        if not caught:
            for error in errors:
                print(f"       {error}")
        missed += not caught
    uncovered = sorted(set(checks) - {fault[0] for fault in faults})
    for name in uncovered:
        print(f"MISS {name} has no planted fault")
    print(f"{label}: {len(faults) - missed} of {len(faults)} faults caught")
    return missed == 0 and not uncovered
