"""A planning task's check (stdlib only: it runs inside the sandbox with the toolchain's Python, mounted read-only
at /opt/bv/checktools): the plan exists, has the requested sections, cites enough distinct repository paths to be
specific, and every path it cites exists at the base commit ($BV_BASE_COMMIT, through the harness's git).

    python /opt/bv/checktools/plan_check.py docs/plan.md --section "Threat model" --section Steps --min-paths 3

Exit 0 when it holds; otherwise 1 with one line per problem (a lazy plan that cites invented files fails here).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

# Words that look like repository paths: with a "/" or a file extension. A word is a *claim* (it must exist) when
# it has a known extension, ends in "/" or has two "/"; "id/secret" in prose is not. URLs and absolute paths are not
# repository paths.
EXTS = ("py", "toml", "yaml", "yml", "md", "nix", "json", "cfg", "ini", "txt", "sh", "lock", "tf", "ipynb", "sample",
        "j2", "tpl", "conf", "env", "js", "ts")
URL = re.compile(r"\w+://\S+")
WORD = re.compile(r"[\w./-]+")


def _ext(word: str) -> str:
    name = word.rstrip("/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name.lstrip(".") else ""


def is_claim(word: str) -> bool:
    return _ext(word) in EXTS or word.endswith("/") or word.count("/") >= 2


def tracked(commit: str) -> set[str]:
    out = subprocess.run(["git", "ls-tree", "-r", "--name-only", commit], capture_output=True, text=True, check=True)
    files = set(out.stdout.splitlines())
    folders = {"/".join(f.split("/")[:i]) + "/" for f in files for i in range(1, f.count("/") + 1)}
    return files | folders


def cited(text: str) -> set[str]:
    words = (w.rstrip(".,:;").lstrip(",:;").removeprefix("./") for w in WORD.findall(URL.sub(" ", text)))
    return {w for w in words if w and not w.startswith("/") and w not in (".", "..") and ("/" in w or _ext(w) in EXTS)}


def headings(text: str) -> list[str]:
    return [line.lstrip("#").strip().lower() for line in text.splitlines() if line.startswith("#")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("plan")
    ap.add_argument("--section", action="append", default=[], help="a heading the plan must have (case-insensitive, substring)")
    ap.add_argument("--min-paths", type=int, default=3, help="distinct existing repository paths it must cite")
    args = ap.parse_args(argv)
    try:
        text = open(args.plan, encoding="utf-8", errors="replace").read()
    except OSError:
        print(f"{args.plan}: no plan written")
        return 1
    problems = []
    heads = headings(text)
    for section in args.section:
        if not any(section.lower() in h for h in heads):
            problems.append(f"no section '{section}' (headings: {', '.join(heads) or 'none'})")
    known = tracked(os.environ.get("BV_BASE_COMMIT", "HEAD"))
    paths = cited(text) - {args.plan}
    real = {p for p in paths if p in known or p.rstrip("/") + "/" in known}
    invented = sorted(p for p in paths - real if is_claim(p))
    if invented:
        problems.append(f"cites paths that do not exist at the base commit: {', '.join(invented[:8])}")
    if len(real) < args.min_paths:
        problems.append(f"cites {len(real)} existing repository path(s), needs {args.min_paths}: {', '.join(sorted(real)) or 'none'}")
    for p in problems:
        print(p)
    if not problems:
        print(f"ok: {len(real)} repository paths cited, sections present")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
