"""Only the edges commit: services, the store, connectors and the domain flush and
leave the transaction to the request, command or worker that runs them."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "suppression"
EDGES = ("api", "web", "cli", "worker")


def commits_in(tree: ast.AST) -> list[int]:
    """Lines that commit: `anything.commit(...)`, or calling a parameter named `commit`."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            parameters = node.args.args + node.args.kwonlyargs + node.args.posonlyargs
            lines += [p.lineno for p in parameters if p.arg == "commit"]
        called = node.func if isinstance(node, ast.Call) else None
        if isinstance(called, ast.Attribute) and called.attr == "commit":
            lines.append(called.lineno)
    return sorted(lines)


def modules_outside_the_edges() -> dict[str, list[int]]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.split("/")[0] in EDGES:
            continue
        lines = commits_in(ast.parse(path.read_text(), filename=str(path)))
        if lines:
            found[relative] = lines
    return found


def test_nothing_outside_the_edges_commits():
    assert modules_outside_the_edges() == {}, "commit at the edge (api, web, cli, worker)"


def test_the_check_finds_a_commit_and_a_commit_callback():
    source = (
        "def save(session):\n"
        "    session.commit()\n"
        "def load(session, commit):\n"
        "    commit()\n"
        "def fine(session):\n"
        "    session.flush()\n"
    )
    assert commits_in(ast.parse(source)) == [2, 3]
