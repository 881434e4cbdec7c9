"""Rewrite the table of current figures in bench/README.md from bench/results/*.json.

    python bench/report.py           # rewrite the table between the two marker comments
    python bench/report.py --check   # exit 1 when the README's table is not what the results say

A figure is listed when it has a target, is a bench's headline (its last output line)
or was marked to be shown; every figure stays in the results file.
"""

from __future__ import annotations

import argparse
import sys

from _results import RESULTS, ROOT, read_all

README = ROOT / "bench" / "README.md"
BEGIN, END = "<!-- results:begin (python bench/report.py) -->", "<!-- results:end -->"


def _value(value: object, unit: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and (abs(value) >= 1000 or value.is_integer()):
        value = round(value)
    text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    if unit in ("%", "x"):
        return f"{text}{unit}"
    return f"{text} {unit}".strip()


def _when(record: dict) -> str:
    date = str(record["measured"])[:10]
    if not record.get("reproduced", True):
        return f"{date}, carried over"
    loads = [record.get(k, {}).get("loadavg") for k in ("load_start", "load_end")]
    load = " -> ".join(f"{v[0]:.1f}" for v in loads if v)
    dirty = " (dirty tree)" if record.get("git", {}).get("dirty") else ""
    return f"{date}, re-run, load {load}{dirty}"


def table(records: list[dict]) -> str:
    """The markdown table of the shown figures of every results file."""
    lines = ["| bench | figure | value | target | met | measured |", "|---|---|---|---|---|---|"]
    for record in records:
        when = _when(record)
        for fig in record["figures"]:
            if not (fig["target"] or fig["headline"] or fig["show"]):
                continue
            met = {True: "yes", False: "**no**", None: ""}[fig["met"]]
            lines.append(f"| {record['bench']} | {fig['name']} | {_value(fig['value'], fig['unit'])} | "
                         f"{fig['target'] or ''} | {met} | {when} |")
    return "\n".join(lines)


def render(text: str, records: list[dict]) -> str:
    """``text`` with the block between the markers replaced by the current table."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{README}: the markers {BEGIN!r} and {END!r} are missing")
    return text[:start + len(BEGIN)] + "\n" + table(records) + "\n" + text[end:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the README's table is stale")
    args = parser.parse_args()
    records = read_all(RESULTS)
    old = README.read_text()
    new = render(old, records)
    if args.check:
        if new != old:
            print(f"{README.relative_to(ROOT)}: the figures table is stale; run python bench/report.py")
            sys.exit(1)
        print(f"{README.relative_to(ROOT)}: figures table matches {len(records)} results files")
        return
    README.write_text(new)
    print(f"{README.relative_to(ROOT)}: figures table rewritten from {len(records)} results files")


if __name__ == "__main__":
    main()
