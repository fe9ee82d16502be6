"""A planning task's check (stdlib only: it runs inside the sandbox with the toolchain's Python, mounted read-only
at /opt/bv/checktools): the plan exists, has the requested sections, cites enough distinct repository paths to be
specific, and every path it cites exists at the base commit ($BV_BASE_COMMIT, through the harness's git).

    python /opt/bv/checktools/plan_check.py docs/plan.md --section "Threat model" --section Steps --min-paths 3

Optional, for plans about larger repositories:
  --min-section-words N   each --section's body (down to the next heading of its level) has at least N words
  --mention "a|b"         the plan mentions a or b (case-insensitive); repeat for several terms that must all appear
  --cite "prefix|prefix"  at least one existing path it cites lies under one of the prefixes: inside a folder
                          ("a/b/": the folder alone is not enough), a file, or a file name's start
                          ("ansible/roles/proxmox/tasks/ceph" takes ceph.yml and ceph-rgw.yml)
  --allow-new             a path that does not exist yet is accepted as a proposal when a line of the plan calls it
                          new (the word "new" on its line) and it lies under an existing folder; anything inside a
                          new folder is accepted too. New paths never count toward --min-paths.

Exit 0 when it holds; otherwise 1 with one line per problem (a lazy plan that cites invented files fails here).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

# Words that look like repository paths: with a "/" or a file extension. Only some are *claims* (they must exist):
# a word with a "/" and a known extension, or one that ends in "/" or has two "/" and starts with a top-level entry
# of the repository. Not claims: prose ("id/secret", "AlphaFold2/ColabFold/OpenFold"), bare file names
# ("values.yaml": the plan names a kind of file, not a path), image and API references whose first part is a host
# ("ghcr.io/org/image", "ceph.rook.io/v1"), relative references ("../secrets.yaml"), URLs and absolute paths.
EXTS = ("py", "toml", "yaml", "yml", "md", "nix", "json", "cfg", "ini", "txt", "sh", "lock", "tf", "ipynb", "sample",
        "j2", "tpl", "conf", "env", "js", "ts")
URL = re.compile(r"\w+://\S+")
WORD = re.compile(r"[\w./-]+")
FENCE = re.compile(r"^\s*(```|~~~)")
NEW = re.compile(r"\bnew\b", re.IGNORECASE)


def _ext(word: str) -> str:
    name = word.rstrip("/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name.lstrip(".") else ""


def _host(word: str) -> bool:
    """A first part with a dot inside ("ghcr.io/...", "raw.githubusercontent.com/..."): a host, not a folder."""
    return "/" in word and "." in word.split("/", 1)[0].lstrip(".")


def is_claim(word: str, top: set[str]) -> bool:
    """Whether the plan claims `word` is a path of this repository (so it must exist). `top`: the repository's
    top-level entries, which tell a path without an extension ("kubernetes/manifests/base") from prose."""
    if "/" not in word or word.startswith(("-", "../")) or _host(word):
        return False
    if _ext(word) in EXTS:
        return True
    return (word.endswith("/") or word.count("/") >= 2) and word.split("/", 1)[0] in top


def tracked(commit: str) -> set[str]:
    """Every file of the base commit and every folder above one (folders end in "/")."""
    out = subprocess.run(["git", "ls-tree", "-r", "--name-only", commit], capture_output=True, text=True, check=True)
    return with_folders(set(out.stdout.splitlines()))


def with_folders(files: set[str]) -> set[str]:
    """The files and every folder above one (folders end in "/")."""
    return files | {"/".join(f.split("/")[:i]) + "/" for f in files for i in range(1, f.count("/") + 1)}


def suffixes(known: set[str]) -> set[str]:
    """The tail parts of every known path ("base/ceph/csi-rbd-all.yaml"): a plan may name a real file by its path
    inside a folder it already named. Such a partial path is not invented, but it does not count as cited either."""
    return {"/".join(p.split("/")[i:]) for p in known for i in range(1, p.rstrip("/").count("/") + 1)}


def cited(text: str) -> set[str]:
    words = (w.rstrip(".,:;").lstrip(",:;").removeprefix("./") for w in WORD.findall(URL.sub(" ", text)))
    return {w for w in words if w and not w.startswith("/") and w not in (".", "..") and ("/" in w or _ext(w) in EXTS)}


def _exists(path: str, known: set[str]) -> bool:
    return path in known or path.rstrip("/") + "/" in known


def _normal(path: str, known: set[str]) -> str:
    """An existing path as the repository spells it: folders with a trailing "/", so "a/b" and "a/b/" are one."""
    return path if path in known else path.rstrip("/") + "/"


def prose_lines(text: str) -> list[tuple[bool, str]]:
    """The plan's lines, each with whether it lies inside a fenced code block (a "# comment" there is no heading)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            lines.append((True, line))
        else:
            lines.append((fenced, line))
    return lines


def sections(text: str) -> list[tuple[str, int, str]]:
    """Each heading as (title in lower case, level, body): the body runs to the next heading of its level or above."""
    lines = prose_lines(text)
    heads = [(i, len(line) - len(line.lstrip("#")), line.lstrip("#").strip().lower())
             for i, (fenced, line) in enumerate(lines) if not fenced and line.startswith("#")]
    out = []
    for n, (i, level, title) in enumerate(heads):
        end = next((j for j, lv, _ in heads[n + 1:] if lv <= level), len(lines))
        out.append((title, level, "\n".join(line for _, line in lines[i + 1:end])))
    return out


def declared_new(text: str, known: set[str], top: set[str]) -> set[str]:
    """Claimed paths that do not exist, on lines that call them new: the plan's proposed files and folders."""
    found = set()
    for line in text.splitlines():
        if NEW.search(line):
            found |= {p for p in cited(line) if is_claim(p, top) and not _exists(p, known)}
    return found


def _under_existing_folder(path: str, known: set[str]) -> bool:
    parts = path.rstrip("/").split("/")
    return any("/".join(parts[:i]) + "/" in known for i in range(1, len(parts)))


def _proposed(path: str, new: set[str]) -> bool:
    """`path` is a declared new path, lies inside one, or is a new folder above one."""
    p = path.rstrip("/")
    return any(p == n.rstrip("/") or p.startswith(n.rstrip("/") + "/") or n.startswith(p + "/") for n in new)


def _split(values: list[str]) -> list[list[str]]:
    return [[v.strip() for v in value.split("|") if v.strip()] for value in values]


def problems_of(text: str, plan: str, known: set[str], args: argparse.Namespace) -> tuple[list[str], set[str]]:
    """Everything wrong with the plan, one line each, and the existing paths it cites."""
    problems = []
    secs = sections(text)
    for section in args.section:
        bodies = [body for title, _, body in secs if section.lower() in title]
        if not bodies:
            problems.append(f"no section '{section}' (headings: {', '.join(t for t, _, _ in secs) or 'none'})")
            continue
        words = max(len(re.findall(r"\w+", body)) for body in bodies)
        if words < args.min_section_words:
            problems.append(f"section '{section}' has {words} word(s), needs {args.min_section_words}")
    lowered = text.lower()
    for terms in _split(args.mention):
        if not any(t.lower() in lowered for t in terms):
            problems.append(f"does not mention {' or '.join(terms)}")
    top = {p.split("/", 1)[0] for p in known}
    paths = cited(text) - {plan, plan.removeprefix("./")}
    real = {_normal(p, known) for p in paths if _exists(p, known)}
    partial = suffixes(known)
    new = declared_new(text, known, top) if args.allow_new else set()
    outside = sorted(p for p in new if not _under_existing_folder(p, known))
    if outside:
        problems.append(f"proposes new paths outside the repository's existing folders: {', '.join(outside[:8])}")
    invented = sorted(p for p in paths if not _exists(p, known) and is_claim(p, top) and not _proposed(p, new)
                      and p not in partial and p.rstrip("/") + "/" not in partial)
    if invented:
        problems.append(f"cites paths that do not exist at the base commit: {', '.join(invented[:8])}")
    if len(real) < args.min_paths:
        listed = ", ".join(sorted(real)) or "none"
        problems.append(f"cites {len(real)} existing repository path(s), needs {args.min_paths}: {listed}")
    for prefixes in _split(args.cite):
        if not any(p.startswith(pre) and not (pre.endswith("/") and p == pre) for p in real for pre in prefixes):
            problems.append(f"cites no existing path under {' or '.join(prefixes)}")
    return problems, real


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("plan")
    ap.add_argument("--section", action="append", default=[],
                    help="a heading the plan must have (case-insensitive, substring)")
    ap.add_argument("--min-paths", type=int, default=3, help="distinct existing repository paths it must cite")
    ap.add_argument("--min-section-words", type=int, default=0, help="words each --section's body must have")
    ap.add_argument("--mention", action="append", default=[],
                    help="a term (or 'a|b' alternatives) the plan must mention")
    ap.add_argument("--cite", action="append", default=[],
                    help="a path prefix (or 'a|b') it must cite an existing path under")
    ap.add_argument("--allow-new", action="store_true", help="accept paths a line calls new, under existing folders")
    args = ap.parse_args(argv)
    try:
        with open(args.plan, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        print(f"{args.plan}: no plan written")
        return 1
    problems, real = problems_of(text, args.plan, tracked(os.environ.get("BV_BASE_COMMIT", "HEAD")), args)
    for p in problems:
        print(p)
    if not problems:
        print(f"ok: {len(real)} repository paths cited, sections present")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
