"""Security: no code execution on user data anywhere in src/, non-root container, hash-pinned dependencies.

The source scan works on the syntax tree (not on text), so comments and docstrings that *mention*
``eval`` do not count, and aliased imports (``from pickle import loads``) do.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from dmpreserve.errors import DmpreserveError
from dmpreserve.files import load_yaml

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted((REPO / "src" / "dmpreserve").rglob("*.py"))

#: Modules that deserialise code or arbitrary objects.
FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal", "joblib"}
#: Builtins that run code.
FORBIDDEN_BUILTINS = {"eval", "exec", "compile", "__import__", "breakpoint"}
#: Attribute calls that run code or unpickle: (module alias, attribute).
FORBIDDEN_ATTRIBUTES = {
    ("yaml", "unsafe_load"),
    ("yaml", "full_load"),
    ("yaml", "load_all"),
    ("yaml", "unsafe_load_all"),
    ("yaml", "full_load_all"),
    ("os", "system"),
    ("os", "popen"),
    ("os", "execv"),
    ("os", "execvp"),
    ("pd", "read_pickle"),
    ("pandas", "read_pickle"),
    ("np", "fromfile"),
    ("torch", "load"),
}
#: The only Loader classes ``yaml.load`` may be given.
SAFE_LOADERS = {"SafeLoader", "CSafeLoader", "_StrictSafeLoader"}
UNSAFE_LOADER_NAMES = {"Loader", "UnsafeLoader", "FullLoader", "CLoader", "CUnsafeLoader", "CFullLoader"}


def _findings(path: Path) -> list[str]:
    return _scan(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))


def _scan(text: str, rel: str) -> list[str]:
    """Forbidden constructs in one module's source text, as ``file:line: construct``."""
    tree = ast.parse(text, filename=rel)
    out = []
    for node in ast.walk(tree):
        where = f"{rel}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            out += [f"{where}: import {a.name}" for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in FORBIDDEN_MODULES:
                out.append(f"{where}: from {node.module} import ...")
            if node.module == "yaml":
                out += [
                    f"{where}: from yaml import {a.name}"
                    for a in node.names
                    if a.name in {"load", "unsafe_load", "full_load", *UNSAFE_LOADER_NAMES}
                ]
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_BUILTINS and isinstance(node.ctx, ast.Load):
            out.append(f"{where}: {node.id}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in FORBIDDEN_ATTRIBUTES:
                out.append(f"{where}: {node.value.id}.{node.attr}")
            if node.value.id == "yaml" and node.attr in UNSAFE_LOADER_NAMES:
                out.append(f"{where}: yaml.{node.attr}")
        if isinstance(node, ast.Call):
            out += _call_findings(node, where)
    return out


def _call_findings(node: ast.Call, where: str) -> list[str]:
    out = []
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    keywords = {k.arg: k.value for k in node.keywords if k.arg}
    if isinstance(keywords.get("shell"), ast.Constant) and keywords["shell"].value is not False:
        out.append(f"{where}: {name}(shell=...)")
    elif "shell" in keywords and not isinstance(keywords["shell"], ast.Constant):
        out.append(f"{where}: {name}(shell=<expression>)")
    if isinstance(keywords.get("allow_pickle"), ast.Constant) and keywords["allow_pickle"].value:
        out.append(f"{where}: {name}(allow_pickle=True)")
    if (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "yaml"
        and func.attr == "load"
    ):
        loader = keywords.get("Loader") or (node.args[1] if len(node.args) > 1 else None)
        loader_name = getattr(loader, "attr", None) or getattr(loader, "id", None)
        if loader_name not in SAFE_LOADERS:
            out.append(f"{where}: yaml.load with Loader={loader_name}")
    return out


def test_sources_found() -> None:
    assert len(SOURCES) > 20
    assert any(p.name == "files.py" for p in SOURCES)


def test_no_code_execution_or_unpickling_in_sources() -> None:
    findings = [f for path in SOURCES for f in _findings(path)]
    assert findings == [], "forbidden constructs in src/:\n" + "\n".join(findings)


@pytest.mark.parametrize(
    "snippet",
    [
        "eval(text)",
        "exec(code)",
        "import pickle",
        "from pickle import loads",
        "import dill as d",
        "yaml.load(text)",
        "yaml.load(text, Loader=yaml.Loader)",
        "yaml.unsafe_load(text)",
        "yaml.full_load(text)",
        "subprocess.run(cmd, shell=True)",
        "subprocess.Popen(cmd, shell=flag)",
        "os.system(cmd)",
        "np.load(path, allow_pickle=True)",
        "__import__(name)",
        "from yaml import FullLoader",
    ],
    ids=lambda s: re.sub(r"\W+", "_", s).strip("_"),
)
def test_scanner_catches_forbidden_constructs(snippet: str) -> None:
    """The scanner itself works: every forbidden construct is reported."""
    assert _scan(f"import os, subprocess, yaml\nimport numpy as np\n{snippet}\n", "probe.py"), snippet


def test_scanner_accepts_safe_yaml() -> None:
    assert _scan("import yaml\nyaml.load(t, Loader=yaml.SafeLoader)\nyaml.safe_load(t)\n", "probe.py") == []


@pytest.mark.parametrize(
    "text",
    [
        "!!python/object/apply:os.system ['echo pwned']",
        "a: !!python/name:os.system",
        "a: !!python/object/new:subprocess.Popen [['true']]",
    ],
)
def test_yaml_loader_refuses_python_tags(text: str) -> None:
    with pytest.raises(DmpreserveError, match="not valid YAML"):
        load_yaml(text, path="x.yaml")


def test_yaml_loader_is_a_safe_loader() -> None:
    from dmpreserve import files as io

    assert issubclass(io._StrictSafeLoader, yaml.SafeLoader)


# ----------------------------------------------------------------------------------- container


def _dockerfile() -> str:
    path = REPO / "env" / "Dockerfile"
    if not path.is_file():
        pytest.skip("env/Dockerfile is absent")
    return path.read_text(encoding="utf-8")


def test_container_runs_as_non_root() -> None:
    text = _dockerfile()
    stages = re.split(r"(?m)^FROM\s", text)
    final = stages[-1]
    users = re.findall(r"(?m)^USER\s+(\S+)", final)
    assert users, "the final stage of env/Dockerfile sets no USER (it would run as root)"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, f"final USER is {users[-1]}"
    assert re.search(rf"useradd[^\n]*\b{re.escape(user)}\b", final) or user.isdigit(), (
        f"user {user} is not created in the final stage"
    )


def test_container_installs_only_prebuilt_hashed_wheels() -> None:
    text = _dockerfile()
    for match in re.finditer(r"pip install([^\n\\]*(\\\n[^\n\\]*)*)", text):
        cmd = match.group(0)
        assert "--no-index" in cmd or "--require-hashes" in cmd, f"unpinned pip install in the Dockerfile: {cmd}"


# -------------------------------------------------------------------------------- requirements


def _requirements() -> list[tuple[str, str]]:
    """(requirement line, the whole entry including its --hash continuation lines)."""
    text = (REPO / "env" / "requirements.txt").read_text(encoding="utf-8")
    entries, current = [], None
    for line in text.splitlines():
        if re.match(r"^[A-Za-z0-9]", line):
            current = [line]
            entries.append(current)
        elif current is not None and line.startswith("    --hash"):
            current.append(line)
    return [(e[0], "\n".join(e)) for e in entries]


def test_requirements_are_pinned_with_hashes() -> None:
    reqs = _requirements()
    assert len(reqs) > 20
    for first, entry in reqs:
        assert re.match(r"^[A-Za-z0-9_.\-]+==[^\s;]+", first), f"not pinned with ==: {first}"
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), f"no sha256 hash: {first}"


def test_install_enforces_hashes() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "--require-hashes" in makefile
    # the package declares its dependencies (pyproject.toml) but is installed with --no-deps, so that only the
    # hashed pins of env/requirements*.txt are ever installed
    assert "--no-deps" in makefile and "env/requirements-dev.txt" in makefile
