#!/usr/bin/env python3
"""Checks Slither's JSON report (stdin) against the triage file (argv[1]).

Fails on any High or Medium finding (a false positive is marked where it occurs, with a
`slither-disable-next-line` comment that says why), on any other finding the triage file
does not explain, and on triage entries that no longer match anything (so the file stays
true). Each triage entry: {"check": detector, "where": text in the finding's first line,
"why": the explanation}.
"""
import json
import sys


def main() -> int:
    triage = json.load(open(sys.argv[1]))
    report = json.load(sys.stdin)
    if not report.get("success"):
        print(f"slither failed: {report.get('error')}", file=sys.stderr)
        return 2
    findings = report.get("results", {}).get("detectors", [])
    used = [False] * len(triage)
    problems = []
    for f in findings:
        first = f["description"].strip().splitlines()[0]
        if f["impact"] in ("High", "Medium"):
            problems.append(f"{f['impact']} {f['check']}: {first}")
            continue
        hits = [i for i, t in enumerate(triage) if t["check"] == f["check"] and t["where"] in first]
        if not hits:
            problems.append(f"untriaged {f['impact']} {f['check']}: {first}")
        for i in hits:
            used[i] = True
    for t, u in zip(triage, used):
        if not u:
            problems.append(f"triage entry matches nothing (remove it): {t['check']} / {t['where']}")
    for p in problems:
        print(p, file=sys.stderr)
    counts = {}
    for f in findings:
        counts[f["impact"]] = counts.get(f["impact"], 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"
    print(f"slither: {len(findings)} findings ({summary}); {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
