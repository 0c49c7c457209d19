#!/usr/bin/env python3
"""Offline parse and cross-reference check of a Terraform tree (python-hcl2).

`terraform validate` needs the provider plugins, which cannot be downloaded
everywhere. This stands in for the part of it that needs no provider schema:

* every .tf file parses (python-hcl2);
* every `var.X`, `local.X`, `data.T.N`, `T.N` (aws_/random_ resources) and
  `module.M.O` reference points at something declared in the same module,
  and module outputs exist in the called module;
* every module call passes only variables the module declares and all of
  its variables that have no default;
* every variable has a type and a description, every output a description,
  and no variable is declared without being used.

Usage: hcl_lint.py DIR   (DIR is the root module; ./modules/* are followed
through the `source` of module calls.)
"""

from __future__ import annotations

import pathlib
import re
import sys
from dataclasses import dataclass, field

import hcl2

META_ARGS = {"source", "version", "count", "for_each", "depends_on", "providers"}
SKIP_KEYS = {"__comments__", "__inline_comments__", "__is_block__", "__start_line__", "__end_line__"}

REF_VAR = re.compile(r"(?<![\w.])var\.([A-Za-z_][\w-]*)")
REF_LOCAL = re.compile(r"(?<![\w.])local\.([A-Za-z_][\w-]*)")
REF_MODULE = re.compile(r"(?<![\w.])module\.([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)")
REF_DATA = re.compile(r"(?<![\w.])data\.([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)")
REF_RESOURCE = re.compile(r"(?<![\w.])((?:aws|random)_[a-z0-9_]+)\.([A-Za-z_][\w-]*)")
INTERPOLATION = re.compile(r"\$\{(.*?)\}")


def unquote(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == '"' else key


@dataclass
class Module:
    path: pathlib.Path
    files: list[pathlib.Path] = field(default_factory=list)
    variables: dict[str, dict] = field(default_factory=dict)
    outputs: dict[str, dict] = field(default_factory=dict)
    locals: set[str] = field(default_factory=set)
    resources: set[tuple[str, str]] = field(default_factory=set)
    data: set[tuple[str, str]] = field(default_factory=set)
    calls: dict[str, dict] = field(default_factory=dict)
    expressions: list[tuple[pathlib.Path, str]] = field(default_factory=list)


def expressions(value, out: list[str]) -> None:
    """Collect the expression text of every value (comments excluded)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k not in SKIP_KEYS:
                expressions(v, out)
    elif isinstance(value, list):
        for v in value:
            expressions(v, out)
    elif isinstance(value, str):
        if value.startswith("${") and value.endswith("}"):
            out.append(value[2:-1])
        else:  # a quoted literal: only its interpolations are code
            out.extend(INTERPOLATION.findall(value))


def labelled(blocks, depth: int):
    """Yield (labels, body) of blocks such as resource "T" "N" { ... }."""
    for block in blocks or []:
        stack = [((), block)]
        while stack:
            labels, body = stack.pop()
            if len(labels) == depth:
                yield labels, body
                continue
            for k, v in body.items():
                if k not in SKIP_KEYS:
                    stack.append((labels + (unquote(k),), v))


def load(path: pathlib.Path, errors: list[str]) -> Module:
    mod = Module(path)
    mod.files = sorted(path.glob("*.tf"))
    for f in mod.files:
        try:
            with f.open() as fh:
                doc = hcl2.load(fh)
        except Exception as exc:  # noqa: BLE001 - any parser error fails
            errors.append(f"{f}: does not parse: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            continue
        for (name,), body in labelled(doc.get("variable"), 1):
            mod.variables[name] = body
        for (name,), body in labelled(doc.get("output"), 1):
            mod.outputs[name] = body
        for block in doc.get("locals", []):
            mod.locals.update(k for k in block if k not in SKIP_KEYS)
        for (rtype, rname), _ in labelled(doc.get("resource"), 2):
            mod.resources.add((rtype, rname))
        for (dtype, dname), _ in labelled(doc.get("data"), 2):
            mod.data.add((dtype, dname))
        for (name,), body in labelled(doc.get("module"), 1):
            mod.calls[name] = body
        exprs: list[str] = []
        for k, v in doc.items():
            if k == "moved":  # `from` is an address that no longer exists; `to` must
                for block in v:
                    expressions(block.get("to"), exprs)
            elif k != "variable":  # variable blocks only reference themselves in validations
                expressions(v, exprs)
        for block in doc.get("variable", []):
            expressions(block, exprs)
        mod.expressions.extend((f, e) for e in exprs)
    return mod


def check(root: pathlib.Path) -> int:
    errors: list[str] = []
    modules: dict[pathlib.Path, Module] = {}
    queue = [root.resolve()]
    while queue:
        path = queue.pop()
        if path in modules:
            continue
        mod = modules[path] = load(path, errors)
        if not mod.files:
            errors.append(f"{path}: no .tf files")
        for name, body in mod.calls.items():
            source = unquote(str(body.get("source", "")))
            if source.startswith("./") or source.startswith("../"):
                queue.append((path / source).resolve())

    refs = 0
    used_vars: dict[pathlib.Path, set[str]] = {p: set() for p in modules}
    for path, mod in modules.items():
        rel = path.relative_to(root.resolve().parent) if path != root.resolve() else root
        for name, body in mod.variables.items():
            if "type" not in body:
                errors.append(f"{rel}: variable {name} has no type")
            if not unquote(str(body.get("description", ""))).strip():
                errors.append(f"{rel}: variable {name} has no description")
        for name, body in mod.outputs.items():
            if not unquote(str(body.get("description", ""))).strip():
                errors.append(f"{rel}: output {name} has no description")

        for f, expr in mod.expressions:
            where = f"{f.relative_to(root.resolve().parent)}"
            for m in REF_VAR.finditer(expr):
                refs += 1
                used_vars[path].add(m.group(1))
                if m.group(1) not in mod.variables:
                    errors.append(f"{where}: var.{m.group(1)} is not declared")
            for m in REF_LOCAL.finditer(expr):
                refs += 1
                if m.group(1) not in mod.locals:
                    errors.append(f"{where}: local.{m.group(1)} is not declared")
            for m in REF_DATA.finditer(expr):
                refs += 1
                if (m.group(1), m.group(2)) not in mod.data:
                    errors.append(f"{where}: data.{m.group(1)}.{m.group(2)} is not declared")
            for m in REF_RESOURCE.finditer(expr):
                refs += 1
                if (m.group(1), m.group(2)) not in mod.resources:
                    errors.append(f"{where}: resource {m.group(1)}.{m.group(2)} is not declared")
            for m in REF_MODULE.finditer(expr):
                refs += 1
                call = mod.calls.get(m.group(1))
                if call is None:
                    errors.append(f"{where}: module.{m.group(1)} is not declared")
                    continue
                target = modules.get((path / unquote(str(call.get("source", "")))).resolve())
                if target is not None and m.group(2) not in target.outputs:
                    errors.append(f"{where}: module {m.group(1)} has no output {m.group(2)}")

        for name, body in mod.calls.items():
            target = modules.get((path / unquote(str(body.get("source", "")))).resolve())
            if target is None:
                continue
            args = {k for k in body if k not in SKIP_KEYS and k not in META_ARGS}
            for arg in sorted(args - set(target.variables)):
                errors.append(f"{rel}: module {name} passes {arg}, which {target.path.name} does not declare")
            required = {v for v, b in target.variables.items() if "default" not in b}
            for arg in sorted(required - args):
                errors.append(f"{rel}: module {name} does not pass required variable {arg}")

    for path, mod in modules.items():
        for name in sorted(set(mod.variables) - used_vars[path]):
            errors.append(f"{path.name}: variable {name} is declared but never used")

    files = sum(len(m.files) for m in modules.values())
    for e in errors:
        print(f"  {e}", file=sys.stderr)
    print(f"{files} files in {len(modules)} modules parsed, {refs} references checked, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(check(pathlib.Path(sys.argv[1])))
