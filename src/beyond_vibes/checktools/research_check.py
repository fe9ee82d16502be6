"""A comparative-research task's check (stdlib only: it runs inside the sandbox with the toolchain's Python, mounted
read-only at /opt/bv/checktools): the report exists, has the requested comparison table (a column per compared
product, enough rows, the named criteria, no empty cells) and a "Recommendation" section that names a product, and
what it cites is real: every /materials/<name>/... path exists in the task's materials, and every code identifier
in backticks is found in the materials of the product it is said of (or in the repository at $BV_BASE_COMMIT).

    python /opt/bv/checktools/research_check.py docs/report.md --product "MLflow=mlflow" \\
        --product "Phoenix=phoenix,phoenix-otel" --row licen --row "opentelemetry|otel" --min-rows 5 --min-citations 8

--product NAME=MAT,MAT   a compared product and the materials (/materials/MAT) that are its sources; NAME may be
                         "Name|Alias" (matched case-insensitively in the table header and the text)
--row TERM|TERM          the table has a row whose first cell contains one of the terms (repeatable)
--min-rows N             body rows of the table
--min-words N            words of the Recommendation section's body
--min-citations K        distinct real citations: existing materials paths and identifiers found in the materials
--min-per-product M      real citations of each product's own materials

What counts as a cited identifier: an inline `code span` (fenced blocks are examples, not claims) that is a dotted
name (`mlflow.dspy.autolog`, `phoenix.otel.register()`), an environment variable (`LANGFUSE_HOST`, `$X=1`), a
snake_case name (`log_traces_from_compile`), a CamelCase name (`DSPyInstrumentor`) or a CLI flag (`--port`). Its
product: the table column it sits in, else the products the line names, else any. A dotted name is found when the
text occurs in a material's file, or when a module path of it is a file there (mlflow/dspy/__init__.py) holding
the rest as words, or when one file holds every part as a word. Materials are at $BV_MATERIALS (default /materials).

Exit 0 when it holds; otherwise 1 with one line per problem (a lazy report that cites invented files fails here).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

FENCE = re.compile(r"^\s*(```|~~~)")
SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
CODE = re.compile(r"`([^`\n]+)`")
MAT_PATH = re.compile(r"(?<![\w/.])/materials/([A-Za-z0-9][A-Za-z0-9._-]*)((?:/[^\s`'\"()\[\]<>,;|*]*)?)")
LINE_REF = re.compile(r"(?::\d+(?:-\d+)?|#L\d+(?:-L?\d+)?)$")
DOTTED = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")
ENV = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
SNAKE = re.compile(r"^_*[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")
CAMEL = re.compile(r"^[A-Za-z]\w*$")
FLAG = re.compile(r"^--[a-z][a-z0-9-]+$")
FILE_EXTS = ("py", "toml", "yaml", "yml", "md", "json", "cfg", "ini", "txt", "sh", "lock", "js", "ts", "tsx", "rst",
             "lua", "html", "css", "ipynb", "sample", "env", "conf", "tpl", "j2")
EMPTY_CELLS = {"", "-", "?", "tbd", "todo", "...", "…", "xxx"}
MAX_FILE = 1 << 20  # larger files (bundled JS, tokenizer tables) are data, not sources


class Sources:
    """The text files of a folder (a material) or of the base commit, loaded once, for identifier look-ups."""

    def __init__(self, files: dict[str, str]):
        self.files = files
        self._all: str | None = None

    @classmethod
    def of_folder(cls, root: Path) -> "Sources":
        files = {}
        for dirpath, _, names in os.walk(root):
            for name in names:
                path = os.path.join(dirpath, name)
                try:
                    if os.path.islink(path) or os.path.getsize(path) > MAX_FILE:
                        continue
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                if b"\0" not in data[:8192]:
                    files[os.path.relpath(path, root)] = data.decode("utf-8", "replace")
        return cls(files)

    @classmethod
    def of_commit(cls, commit: str) -> "Sources":
        out = subprocess.run(["git", "archive", "--format=tar", commit], capture_output=True, check=False)
        files = {}
        if out.returncode == 0:
            with tarfile.open(fileobj=io.BytesIO(out.stdout)) as t:
                for m in t.getmembers():
                    if m.isfile() and m.size <= MAX_FILE:
                        data = t.extractfile(m).read()
                        if b"\0" not in data[:8192]:
                            files[m.name] = data.decode("utf-8", "replace")
        return cls(files)

    @property
    def text(self) -> str:
        if self._all is None:
            self._all = "\n".join(self.files.values())
        return self._all

    def has(self, ident: str) -> bool:
        """Whether the sources define or mention `ident` (see the module doc for dotted names)."""
        if not DOTTED.match(ident):
            return re.search(rf"(?<![\w-]){re.escape(ident)}(?![\w-])", self.text) is not None
        if ident in self.text:
            return True
        parts = ident.split(".")
        for k in range(len(parts) - 1, 0, -1):  # a module path, then the names inside it
            module = "/" + "/".join(parts[:k])
            for rel, text in self.files.items():
                if ("/" + rel).endswith((f"{module}.py", f"{module}/__init__.py")) and _words(text, parts[k:]):
                    return True
        last = parts[-1]
        return any(last in text and _words(text, parts) for text in self.files.values())


def _words(text: str, words: list[str]) -> bool:
    return all(re.search(rf"\b{re.escape(w)}\b", text) for w in words)


def identifier(span: str) -> str | None:
    """The code identifier an inline code span cites, or None when it is prose, a path, a snippet or a value."""
    s = span.strip().removeprefix("$")
    s = s.split("=", 1)[0] if re.match(r"^[A-Za-z_][\w.-]*=", s) else s
    if "(" in s:
        s = s[:s.index("(")] if s.endswith(")") else s
    s = s.rstrip(":")
    if not s or any(c in s for c in " /\\\"'<>{}[]") or s.rsplit(".", 1)[-1].lower() in FILE_EXTS and "." in s:
        return None
    if DOTTED.match(s) or ENV.match(s) or SNAKE.match(s) or FLAG.match(s):
        return s
    if CAMEL.match(s) and re.search(r"[a-z][A-Z]", s) and "_" not in s:
        return s
    return None


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line outside fenced code blocks."""
    out, fenced = [], False
    for n, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            out.append((n, line))
    return out


def split_row(line: str) -> list[str]:
    """A markdown table row's cells (pipes inside `code` or escaped as \\| do not split)."""
    cells, cur, code = [], "", False
    body = line.strip()
    body = body.removeprefix("|")
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    for i, c in enumerate(body):
        if c == "`":
            code = not code
        if c == "|" and not code and (i == 0 or body[i - 1] != "\\"):
            cells.append(cur.strip())
            cur = ""
        else:
            cur += c
    return cells + [cur.strip()]


def tables(lines: list[tuple[int, str]]) -> list[tuple[list[str], list[tuple[int, list[str]]]]]:
    """Each markdown table as (header cells, [(line number, cells) of each body row])."""
    found, i = [], 0
    while i < len(lines) - 1:
        (_, head), (_, sep) = lines[i], lines[i + 1]
        if "|" in head and SEPARATOR.match(sep) and lines[i + 1][0] == lines[i][0] + 1:
            body, j = [], i + 2
            while j < len(lines) and "|" in lines[j][1] and lines[j][0] == lines[j - 1][0] + 1:
                body.append((lines[j][0], split_row(lines[j][1])))
                j += 1
            found.append((split_row(head), body))
            i = j
        else:
            i += 1
    return found


def sections(lines: list[tuple[int, str]]) -> list[tuple[str, str]]:
    """(heading in lower case, body down to the next heading of its level or above)."""
    heads = [(k, len(line) - len(line.lstrip("#")), line.lstrip("#").strip().lower())
             for k, (_, line) in enumerate(lines) if line.startswith("#")]
    out = []
    for n, (k, level, title) in enumerate(heads):
        end = next((j for j, lv, _ in heads[n + 1:] if lv <= level), len(lines))
        out.append((title, "\n".join(line for _, line in lines[k + 1:end])))
    return out


class Product:
    def __init__(self, spec: str):
        names, _, mats = spec.partition("=")
        self.names = [n.strip() for n in names.split("|") if n.strip()]
        self.name = self.names[0]
        self.materials = [m.strip() for m in mats.split(",") if m.strip()]

    def named_in(self, text: str) -> bool:
        low = text.lower()
        return any(re.search(rf"(?<![a-z0-9]){re.escape(n.lower())}(?![a-z0-9])", low) for n in self.names)


def _normal_path(rel: str) -> str:
    rel = LINE_REF.sub("", rel.rstrip(".,:;!?")).rstrip(".,:;!?")
    return rel


class Report:
    def __init__(self, text: str, products: list[Product], root: Path, repo: Sources):
        self.text = text.replace(str(root).rstrip("/") + "/", "/materials/") if str(root) != "/materials" else text
        self.text = self.text.replace("$BV_MATERIALS/", "/materials/").replace("${BV_MATERIALS}/", "/materials/")
        self.lines = prose_lines(self.text)
        self.products = products
        self.root = root
        self.repo = repo
        self._sources: dict[str, Sources] = {}

    def sources(self, material: str) -> Sources | None:
        if material not in self._sources:
            folder = self.root / material
            self._sources[material] = Sources.of_folder(folder) if folder.is_dir() else None
        return self._sources[material]

    def materials_of(self, products: list[Product]) -> list[str]:
        return sorted({m for p in products for m in p.materials})

    def check_table(self, args) -> tuple[list[str], dict[int, list[tuple[int, Product]]]]:
        """Problems with the comparison table, and per table line the (column, product) of its product columns."""
        names = ", ".join(p.name for p in self.products)
        candidates = []
        for head, body in tables(self.lines):
            cols = {p.name: next((i for i, h in enumerate(head) if p.named_in(h)), None) for p in self.products}
            candidates.append((sum(c is not None for c in cols.values()), head, body, cols))
        if not candidates:
            return [f"no markdown comparison table (a header row with a column for each of {names})"], {}
        best = max(candidates, key=lambda c: (c[0], len(c[2])))
        _, head, body, cols = best
        problems = []
        missing = [n for n, c in cols.items() if c is None]
        if missing:
            return [f"the comparison table has no column for {', '.join(missing)} (header: {' | '.join(head)})"], {}
        if len(body) < args.min_rows:
            problems.append(f"the comparison table has {len(body)} row(s), needs {args.min_rows}")
        for terms in args.row:
            alts = [t.strip().lower() for t in terms.split("|") if t.strip()]
            if not any(any(t in (cells[0].lower() if cells else "") for t in alts) for _, cells in body):
                problems.append(f"the comparison table has no row for {' or '.join(repr(t) for t in alts)}")
        columns = {}
        by_name = {p.name: p for p in self.products}
        for n, cells in body:
            columns[n] = [(c, by_name[name]) for name, c in cols.items()]
            for name, c in cols.items():
                cell = cells[c] if c < len(cells) else ""
                if cell.strip().strip("*_").lower() in EMPTY_CELLS:
                    problems.append(f"table row {cells[0][:40]!r} (line {n}): no content for {name}")
        return problems, columns

    def check_recommendation(self, args) -> list[str]:
        bodies = [body for title, body in sections(self.lines) if "recommend" in title]
        if not bodies:
            titles = ", ".join(t for t, _ in sections(self.lines)) or "none"
            return [f"no 'Recommendation' section (headings: {titles})"]
        body = max(bodies, key=len)
        problems = []
        words = len(re.findall(r"\w+", body))
        if words < args.min_words:
            problems.append(f"the Recommendation section has {words} word(s), needs {args.min_words}")
        if not any(p.named_in(body) for p in self.products):
            problems.append(f"the Recommendation section names none of {', '.join(p.name for p in self.products)}")
        return problems

    def check_citations(self, args, columns: dict[int, list[tuple[int, Product]]]) -> list[str]:
        problems, real, per = [], set(), {p.name: set() for p in self.products}
        for p in self.products:
            if not any((self.root / m).is_dir() for m in p.materials):
                problems.append(f"{p.name}: none of its materials ({', '.join(p.materials)}) is under {self.root}")
        known = {m for p in self.products for m in p.materials}
        for n, line in self.lines:
            for name, rel in MAT_PATH.findall(line):
                rel = _normal_path(rel).strip("/")
                where = f"/materials/{name}/{rel}".rstrip("/")
                base = (self.root / name).resolve()
                target = (base / rel).resolve()
                if name not in known and not base.is_dir():
                    problems.append(f"line {n}: cites {where}, but there is no material {name!r}")
                elif not target.is_relative_to(base) or not target.exists():
                    problems.append(f"line {n}: cites {where}, which is not in the materials")
                elif rel:
                    real.add(where)
                    for p in self.products:
                        if name in p.materials:
                            per[p.name].add(where)
            for span, products in self.spans(n, line, columns):
                ident = identifier(span)
                if ident is None:
                    continue
                # A class name is said of a product less surely than a module path: any material will do.
                camel = not (DOTTED.match(ident) or ENV.match(ident) or SNAKE.match(ident) or FLAG.match(ident))
                mats = self.materials_of(products if products and not camel else self.products)
                hits = [m for m in mats if (s := self.sources(m)) is not None and s.has(ident)]
                if hits:
                    real.add(f"`{ident}`")
                    for p in products or self.products:
                        if set(hits) & set(p.materials):
                            per[p.name].add(ident)
                elif not self.repo.has(ident):
                    said = ", ".join(p.name for p in products) if products else "any product"
                    problems.append(f"line {n}: `{ident}` ({said}) is not in the materials "
                                    f"({', '.join('/materials/' + m for m in mats)}) nor in the repository")
        if len(real) < args.min_citations:
            problems.append(f"cites {len(real)} real file(s) or identifier(s) of the materials, "
                            f"needs {args.min_citations}")
        for p in self.products:
            if len(per[p.name]) < args.min_per_product:
                problems.append(f"cites {len(per[p.name])} real file(s) or identifier(s) of {p.name}'s materials "
                                f"({', '.join('/materials/' + m for m in p.materials)}), needs {args.min_per_product}")
        return problems

    def spans(self, n: int, line: str, columns: dict[int, list[tuple[int, Product]]]):
        """Each inline code span of a line with the products it is said of (its table column, else the line's)."""
        named = [p for p in self.products if p.named_in(line)]
        if n in columns:
            cells = split_row(line)
            owner = {c: p for c, p in columns[n]}
            for c, cell in enumerate(cells):
                for span in CODE.findall(cell):
                    yield span, ([owner[c]] if c in owner else named)
            return
        for span in CODE.findall(line):
            yield span, named


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--product", action="append", required=True, help="NAME=material,material")
    ap.add_argument("--row", action="append", default=[], help="a criterion (or 'a|b') the table must have a row for")
    ap.add_argument("--min-rows", type=int, default=4)
    ap.add_argument("--min-words", type=int, default=40)
    ap.add_argument("--min-citations", type=int, default=6)
    ap.add_argument("--min-per-product", type=int, default=1)
    args = ap.parse_args(argv)
    try:
        with open(args.report, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        print(f"{args.report}: no report written")
        return 1
    root = Path(os.environ.get("BV_MATERIALS") or "/materials")
    repo = Sources.of_commit(os.environ.get("BV_BASE_COMMIT", "HEAD"))
    report = Report(text, [Product(s) for s in args.product], root, repo)
    table_problems, columns = report.check_table(args)
    problems = table_problems + report.check_recommendation(args) + report.check_citations(args, columns)
    for p in problems:
        print(p)
    if not problems:
        print("ok: comparison table, recommendation, every citation found in the materials")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
