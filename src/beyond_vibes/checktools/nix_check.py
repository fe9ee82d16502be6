"""A Nix feature task's checks (stdlib only, plus the host's `nix-instantiate`; it runs inside the sandbox with the
toolchain's Python, mounted read-only at /opt/bv/checktools). Three questions, one sub-command each:

    python /opt/bv/checktools/nix_check.py parse --changed nix/modules/gui/neovim-kubernetes.nix
    python /opt/bv/checktools/nix_check.py imported nix/modules/gui/neovim-kubernetes.nix --root nix/modules
    python /opt/bv/checktools/nix_check.py attrs nix/modules/gui/neovim-kubernetes.nix \
        --option cfg.neovim.kubernetes.enable --guard cfg.neovim.kubernetes.enable \
        --set 'config.home-manager.users.*.programs.nvf.settings.vim.languages.helm.enable=true'

- parse: each file (and with --changed every .nix file changed since $BV_BASE_COMMIT, new ones included) parses
  with `nix-instantiate --parse --store dummy://` (no Nix store needed, none written).
- imported: the module is listed in the `imports` of its folder's default.nix, and that folder in its parent's,
  up to --root: the way this kind of repository imports its modules.
- attrs: on the parsed form (`nix-instantiate --parse` prints the expression with `a.b.c = x;` already nested and
  comments gone, so every spelling of an attribute path reads the same), --option PATH is declared under
  `options` with mkEnableOption or a bool mkOption defaulting to false; --set PATH=VALUE binds PATH (dotted, `*`
  for one component such as `${shared.username}`) to VALUE (lib.mkDefault/mkForce around it allowed), and with
  --guard it does so inside a `mkIf` whose condition mentions `config.<guard>` (simple `let cfg = config.x;`
  aliases resolved).

What it can prove is structure, not evaluation: the file parses, the option is declared and the attribute is bound
where asked, under a condition that names the option. Attribute sets anywhere inside a binding's value (through
mkIf, mkMerge, parentheses, lists, if-then-else) count as under that binding's path; it does not evaluate the
condition, build the system or check that nvf knows the option. Exit 0 when all holds; otherwise 1 with one line
per problem.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field

PUNCT = set("{}()[];:,=@")
CLOSE = {"{": "}", "(": ")", "[": "]"}
WRAPPERS = re.compile(r"^(?:lib\.)?(?:mkDefault|mkForce|mkOverride\s+\d+)\s+")
SELECT = re.compile(r"^[A-Za-z_][\w'-]*(?:\.[A-Za-z_][\w'-]*)*$")


@dataclass
class Group:
    """A bracketed part of the expression: `{ ... }`, `( ... )` or `[ ... ]`, with its tokens and sub-groups."""

    open: str
    items: list = field(default_factory=list)


@dataclass
class Binding:
    path: tuple[str, ...]
    value: list
    guards: list[str]


def parse_text(path: str) -> tuple[str | None, str | None]:
    """`nix-instantiate --parse` of a file: (normalized expression, None) or (None, its first error line)."""
    try:
        # The dummy store: parsing needs none, and the sandbox has no /nix to create one in.
        out = subprocess.run(["nix-instantiate", "--parse", "--store", "dummy://", path], capture_output=True,
                             text=True, timeout=60, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return None, "nix-instantiate is not installed (Debian/Ubuntu: apt-get install nix-bin)"
    if out.returncode != 0:
        lines = [line.strip() for line in out.stderr.splitlines() if line.strip()]
        error = next((line for line in lines if line.startswith("error:")), lines[0] if lines else "no output")
        where = next((line for line in lines if line.startswith("at ")), "")
        return None, f"{error} {where}".strip()
    return out.stdout, None


def _string_end(text: str, i: int) -> int:
    """The index after the string that opens at text[i] ('"'), interpolations and escapes included."""
    j = i + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
        elif text[j] == '"':
            return j + 1
        elif text.startswith("${", j):
            j = _interpolation_end(text, j + 2)
        else:
            j += 1
    return j


def _interpolation_end(text: str, j: int) -> int:
    depth = 1
    while j < len(text) and depth:
        if text[j] == '"':
            j = _string_end(text, j)
            continue
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        j += 1
    return j


def tokenize(text: str) -> list[str]:
    """Tokens of the normalized expression: strings whole, punctuation alone, everything else as runs ("(lib).mkIf"
    gives "(", "lib", ")", ".mkIf")."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c == '"':
            j = _string_end(text, i)
            out.append(text[i:j])
            i = j
        elif c in PUNCT:
            if c == "=" and text.startswith("==", i):
                out.append("==")
                i += 2
            else:
                out.append(c)
                i += 1
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in PUNCT and text[j] != '"':
                j += 1
            if j < len(text) and text[j] == "=" and text[j - 1] in "!<>":  # != <= >=
                j += 1
            out.append(text[i:j])
            i = j
    return out


def groups(tokens: list[str]) -> list:
    """The tokens nested by their brackets."""
    stack = [Group("")]
    for tok in tokens:
        if tok in CLOSE:
            stack.append(Group(tok))
        elif tok in ("}", ")", "]") and len(stack) > 1:
            done = stack.pop()
            stack[-1].items.append(done)
        else:
            stack[-1].items.append(tok)
    while len(stack) > 1:  # unbalanced (not from nix-instantiate): close what is open
        done = stack.pop()
        stack[-1].items.append(done)
    return stack[0].items


def render(item) -> str:
    """Text of a token or group, selects written plainly: `(lib).mkIf` reads `lib.mkIf`."""
    if isinstance(item, Group):
        text = item.open + " " + " ".join(render(i) for i in item.items) + " " + CLOSE[item.open]
    elif isinstance(item, list):
        text = " ".join(render(i) for i in item)
    else:
        return item
    text = re.sub(r"\s+\.", ".", text)
    prev = None
    while prev != text:
        prev, text = text, re.sub(r"\(\s*([A-Za-z_][\w'-]*)\s*\)(?=\.)", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def plain_value(items: list) -> str:
    """A bound value without outer parentheses and priority wrappers: `(lib.mkDefault true)` is `true`."""
    text = render(items)
    prev = None
    while prev != text:
        prev = text
        if text.startswith("( ") and text.endswith(" )") and _balanced(text[1:-1]):
            text = text[1:-1].strip()
        text = WRAPPERS.sub("", text)
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for c in text:
        depth += {"(": 1, ")": -1}.get(c, 0)
        if depth < 0:
            return False
    return depth == 0


def _name(tok) -> list[str]:
    """Attribute path components of a binding's name token: dynamic names (`${...}`) are `*`."""
    if isinstance(tok, Group):
        return ["*"]
    if tok.startswith('"'):
        inner = tok[1:-1]
        return ["*"] if "${" in inner else [inner.replace('\\"', '"').replace("\\\\", "\\")]
    return tok.split(".")


def _is_pattern(items: list, i: int) -> bool:
    """A `{ ... }` that is a function's argument pattern (followed by ':' or '@', or after '@'), not an attrset."""
    after = items[i + 1] if i + 1 < len(items) else None
    before = items[i - 1] if i > 0 else None
    return after in (":", "@") or before == "@"


def _pieces(items: list) -> list[list]:
    out, cur = [], []
    for it in items:
        if it == ";":
            out.append(cur)
            cur = []
        else:
            cur.append(it)
    return out + ([cur] if cur else [])


def _is_mkif(item) -> bool:
    return isinstance(item, str) and (item == "mkIf" or item.endswith(".mkIf"))


class Module:
    """The bindings of one parsed Nix file with their attribute paths and the mkIf conditions above them."""

    def __init__(self, text: str):
        self.bindings: list[Binding] = []
        self.aliases: dict[str, str] = {}
        self._walk(groups(tokenize(text)), (), [])

    def _walk(self, items: list, path: tuple, guards: list[str]) -> None:
        for i, it in enumerate(items):
            if _is_mkif(it) and i + 1 < len(items):
                cond, j = [items[i + 1]], i + 2
                while j < len(items) and isinstance(items[j], str) and items[j].startswith("."):
                    cond.append(items[j])
                    j += 1
                self._walk(items[j:], path, guards + [render(cond)])
                return
            if not isinstance(it, Group):
                continue
            if it.open == "{" and not _is_pattern(items, i):
                self._attrset(it.items, path, guards)
            elif it.open == "(" and it.items[:1] == ["let"] and "in" in it.items:
                k = it.items.index("in")
                self._let(it.items[1:k])
                self._walk(it.items[k + 1:], path, guards)
            elif it.open in "([":
                self._walk(it.items, path, guards)

    def _attrset(self, items: list, path: tuple, guards: list[str]) -> None:
        for piece in _pieces(items):
            if not piece or piece[0] == "rec":
                piece = piece[1:]
            if not piece:
                continue
            if piece[0] == "inherit":
                for tok in piece[1:]:
                    if isinstance(tok, str):
                        self.bindings.append(Binding((*path, *_name(tok)), ["inherit"], guards))
                continue
            if "=" not in piece:
                continue
            k = piece.index("=")
            name = tuple(part for tok in piece[:k] for part in _name(tok))
            self.bindings.append(Binding((*path, *name), piece[k + 1:], guards))
            self._walk(piece[k + 1:], (*path, *name), guards)

    def _let(self, items: list) -> None:
        for piece in _pieces(items):
            if "=" in piece and piece.index("=") == 1 and isinstance(piece[0], str):
                value = plain_value(piece[2:])
                if SELECT.match(value):
                    self.aliases[piece[0]] = value

    def resolved(self, text: str) -> str:
        """A condition with `cfg.enable` spelled `config.cfg.x.enable` where `let cfg = config.cfg.x;`."""
        for _ in range(3):
            for name, value in self.aliases.items():
                text = re.sub(rf"(?<![\w.'-]){re.escape(name)}(?=\.)", value, text)
        return text

    def find(self, spec: str) -> list[Binding]:
        want = spec.split(".")
        return [b for b in self.bindings if len(b.path) == len(want)
                and all(w == "*" or w == p for w, p in zip(want, b.path))]


def mentions(condition: str, option: str) -> bool:
    return re.search(rf"(?<![\w.'-])config\.{re.escape(option)}(?![\w'-])", condition) is not None


def option_problems(module: Module, option: str) -> list[str]:
    found = module.find(f"options.{option}")
    if not found:
        return [f"declares no option {option} (options.{option} = lib.mkEnableOption ... or a bool lib.mkOption)"]
    text = render(found[0].value)
    if "mkEnableOption" in text:
        return []
    if "mkOption" in text and re.search(r"\bbool\b", text):
        return [] if re.search(r"\bdefault = false\b", text) else [f"option {option} does not default to false"]
    return [f"option {option} is not declared with mkEnableOption or a bool mkOption: {text[:120]}"]


def set_problems(module: Module, spec: str, guards: list[str]) -> list[str]:
    path, _, value = spec.partition("=")
    found = module.find(path)
    if not found:
        return [f"does not set {path}"]
    values = [plain_value(b.value) for b in found]
    right = [b for b, v in zip(found, values) if v == value]
    if not right:
        return [f"sets {path} to {', '.join(values)}, not {value}"]
    for guard in guards:
        if not any(any(mentions(module.resolved(g), guard) for g in b.guards) for b in right):
            conds = "; ".join(module.resolved(g) for b in right for g in b.guards) or "none"
            return [f"sets {path} = {value} but not inside a mkIf on config.{guard} (conditions: {conds})"]
    return []


def changed_nix_files() -> list[str]:
    """.nix files changed since $BV_BASE_COMMIT, tracked or new, that still exist."""
    base = os.environ.get("BV_BASE_COMMIT", "HEAD")
    git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True).stdout.splitlines()  # noqa: E731
    files = git("diff", "--name-only", base, "--", "*.nix")
    files += git("ls-files", "--others", "--exclude-standard", "--", "*.nix")
    return sorted({f for f in files if os.path.isfile(f)})


def cmd_parse(args) -> list[str]:
    files = list(dict.fromkeys(args.files + (changed_nix_files() if args.changed else [])))
    out = []
    for f in files:
        if not os.path.isfile(f):
            out.append(f"{f}: no such file")
            continue
        _, error = parse_text(f)
        if error:
            out.append(f"{f}: does not parse: {error}")
    return out


def imports_of(default_nix: str) -> tuple[set[str] | None, str | None]:
    """The absolute paths in a default.nix's `imports` (nix-instantiate --parse makes ./x absolute)."""
    text, error = parse_text(default_nix)
    if error:
        return None, f"{default_nix}: does not parse: {error}"
    found = Module(text).find("imports")

    def atoms(items):
        for it in items:
            if isinstance(it, Group):
                yield from atoms(it.items)
            elif it.startswith("/"):
                yield os.path.normpath(it)
    return {a for b in found for a in atoms(b.value)}, None


def cmd_imported(args) -> list[str]:
    root = os.path.abspath(args.root)
    target = os.path.abspath(args.file)
    if not os.path.exists(target):
        return [f"{args.file}: no such file"]
    if not target.startswith(root + os.sep):
        return [f"{args.file}: not under {args.root}"]
    out = []
    node = os.path.dirname(target) if os.path.basename(target) == "default.nix" else target
    while node != root:
        parent = os.path.dirname(node)
        importer = os.path.join(parent, "default.nix")
        rel = os.path.relpath(importer)
        if not os.path.isfile(importer):
            out.append(f"{rel}: missing, so nothing imports {os.path.relpath(node)}")
            break
        listed, error = imports_of(importer)
        if error:
            out.append(error)
            break
        if not ({node, os.path.realpath(node)} & (listed | {os.path.realpath(p) for p in listed})):
            out.append(f"{os.path.relpath(node)}: not in the imports of {rel}")
        node = parent
    return out


def cmd_attrs(args) -> list[str]:
    if not os.path.isfile(args.file):
        return [f"{args.file}: no such file"]
    text, error = parse_text(args.file)
    if error:
        return [f"{args.file}: does not parse: {error}"]
    module = Module(text)
    out = []
    for option in args.option:
        out += [f"{args.file}: {p}" for p in option_problems(module, option)]
    for spec in args.set:
        out += [f"{args.file}: {p}" for p in set_problems(module, spec, args.guard)]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("parse", help="the files parse with nix-instantiate --parse")
    p.add_argument("files", nargs="*")
    p.add_argument("--changed", action="store_true", help="also every .nix file changed since $BV_BASE_COMMIT")
    p = sub.add_parser("imported", help="the module is imported by its folder's default.nix, up to --root")
    p.add_argument("file")
    p.add_argument("--root", required=True, help="the modules' top folder (its own importers are not checked)")
    p = sub.add_parser("attrs", help="options declared and attributes set, structurally")
    p.add_argument("file")
    p.add_argument("--option", action="append", default=[], help="an option path declared under `options`")
    p.add_argument("--set", action="append", default=[], help="PATH=VALUE: an attribute bound to a value")
    p.add_argument("--guard", action="append", default=[], help="an option the --set bindings' mkIf must test")
    args = ap.parse_args(argv)
    problems = {"parse": cmd_parse, "imported": cmd_imported, "attrs": cmd_attrs}[args.command](args)
    for line in problems:
        print(line)
    if not problems:
        print(f"ok: {args.command}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
