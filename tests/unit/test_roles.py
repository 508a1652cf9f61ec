"""The role conventions of roles/README.md, checked on every role's files.

Each check parses the role's YAML and README and fails naming the role, the
file and the variable (or handler) that breaks the convention:

* a public variable is in ``defaults/main.yml`` (a default, or a commented
  ``# name:`` line when it has none), in ``meta/argument_specs.yml`` (any entry
  point) and in the README's *Variables* table, or in none of them;
* what a role computes for itself (``vars/main.yml``, ``set_fact``,
  ``register``, task ``vars:``) is named ``__<role>_...``; variables handed to
  another role's task files carry that role's prefix; the only public facts are
  the README's *Outputs*;
* every handler a task notifies exists; systemd handlers restart or reload
  with ``daemon_reload``, and services are started after the handlers are
  flushed, with ``daemon_reload``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"
ROLE_NAMES = sorted(p.name for p in ROLES.iterdir() if (p / "tasks").is_dir())
COMMENTED_VARIABLE = re.compile(r"^#\s*([a-z_][a-z0-9_]*):(\s|$)")
SET_FACT = {"ansible.builtin.set_fact", "set_fact"}
ROLE_INCLUDES = {
    "ansible.builtin.include_role",
    "ansible.builtin.import_role",
    "include_role",
    "import_role",
}
SYSTEMD = {"ansible.builtin.systemd_service", "ansible.builtin.systemd", "systemd_service"}
FLUSH = "flush_handlers"
BLOCK_KEYS = ("block", "rescue", "always")


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text()) if path.exists() else None


def markdown_table(readme: Path, heading: str) -> list[str]:
    """First cells of the table under `## heading` of a README."""
    cells: list[str] = []
    in_section = False
    for line in readme.read_text().splitlines():
        if line.startswith("## "):
            in_section = line[3:].strip() == heading
        elif in_section and line.startswith("|") and not re.match(r"^\|\s*-", line):
            cells.append(line.split("|")[1])
    return cells[1:]  # without the header row


def names_in(cells: list[str], prefix: str) -> set[str]:
    return {
        n
        for cell in cells
        for n in re.findall(r"`([a-z_][a-z0-9_]*)`", cell)
        if n.startswith(prefix)
    }


@dataclass(frozen=True)
class Role:
    name: str

    @property
    def path(self) -> Path:
        return ROLES / self.name

    @property
    def prefix(self) -> str:
        return self.name + "_"

    @property
    def internal(self) -> str:
        return "__" + self.name + "_"

    def defaults(self) -> set[str]:
        path = self.path / "defaults" / "main.yml"
        if not path.exists():
            return set()
        given = set(load(path) or {})
        commented = {
            m.group(1)
            for line in path.read_text().splitlines()
            if (m := COMMENTED_VARIABLE.match(line.strip())) and m.group(1).startswith(self.prefix)
        }
        return given | commented

    def argument_specs(self) -> set[str]:
        specs = load(self.path / "meta" / "argument_specs.yml") or {}
        return {
            option
            for entry in (specs.get("argument_specs") or {}).values()
            for option in (entry.get("options") or {})
        }

    def readme_variables(self) -> set[str]:
        return names_in(markdown_table(self.path / "README.md", "Variables"), self.prefix)

    def outputs(self) -> set[str]:
        return names_in(markdown_table(self.path / "README.md", "Outputs"), self.prefix)

    def task_files(self) -> Iterator[Path]:
        for sub in ("tasks", "handlers"):
            yield from sorted((self.path / sub).glob("*.yml"))


def tasks_of(items: Any) -> Iterator[dict[str, Any]]:
    """Every task of a task list, blocks included (the block itself too)."""
    for task in items or []:
        yield task
        for key in BLOCK_KEYS:
            if key in task:
                yield from tasks_of(task[key])


def action(task: dict[str, Any]) -> tuple[str, Any]:
    """(module, its arguments) of a task."""
    for key, value in task.items():
        if "." in key or key in SET_FACT | ROLE_INCLUDES | {"meta", "systemd_service"}:
            return key, value
    return "", None


@pytest.fixture(params=ROLE_NAMES)
def role(request: pytest.FixtureRequest) -> Role:
    return Role(request.param)


def test_every_role_has_the_three_variable_lists(role: Role) -> None:
    for rel in ("defaults/main.yml", "meta/argument_specs.yml", "README.md"):
        assert (role.path / rel).is_file(), f"role {role.name}: {rel} is missing"


def test_defaults_argument_specs_and_readme_list_the_same_variables(role: Role) -> None:
    lists = {
        "defaults/main.yml": role.defaults(),
        "meta/argument_specs.yml": role.argument_specs(),
        "README.md (Variables table)": role.readme_variables(),
    }
    every = set().union(*lists.values())
    problems = [
        f"role {role.name}: {name} is in {', '.join(k for k, v in lists.items() if name in v)} "
        f"but not in {', '.join(k for k, v in lists.items() if name not in v)}"
        for name in sorted(every)
        if not all(name in v for v in lists.values())
    ]
    assert not problems, "\n".join(problems)
    wrong = sorted(n for n in every if not n.startswith(role.prefix))
    assert not wrong, (
        f"role {role.name}: public variables without the prefix {role.prefix}: {wrong}"
    )


def test_internal_names_have_the_internal_prefix(role: Role) -> None:
    problems: list[str] = []
    for name in load(role.path / "vars" / "main.yml") or {}:
        if not name.startswith(role.internal):
            problems.append(f"vars/main.yml: {name}")
    outputs = role.outputs()
    for path in role.task_files():
        rel = path.relative_to(role.path)
        for task in tasks_of(load(path)):
            module, args = action(task)
            label = f"{rel}: task {task.get('name', '?')!r}:"
            if task.get("register") and not task["register"].startswith(role.internal):
                problems.append(f"{label} register {task['register']}")
            if module in SET_FACT:
                for key in args or {}:
                    if (
                        key != "cacheable"
                        and not key.startswith(role.internal)
                        and key not in outputs
                    ):
                        problems.append(f"{label} set_fact {key} (not a README output)")
            passed_to = args.get("name") if module in ROLE_INCLUDES else None
            for key in task.get("vars") or {}:
                ok = key.startswith(role.internal) or (
                    passed_to not in (None, role.name) and key.startswith(f"{passed_to}_")
                )
                if not ok:
                    problems.append(f"{label} vars {key}")
    assert not problems, f"role {role.name}: internal names must start with {role.internal}:\n" + (
        "\n".join(problems)
    )


def handlers(role: Role) -> dict[str, dict[str, Any]]:
    return {h["name"]: h for h in tasks_of(load(role.path / "handlers" / "main.yml"))}


def test_notified_handlers_exist(role: Role) -> None:
    known = set(handlers(role))
    missing = [
        f"{path.relative_to(role.path)}: task {task.get('name')!r} notifies {name!r}"
        for path in role.task_files()
        for task in tasks_of(load(path))
        for name in (
            [task["notify"]] if isinstance(task.get("notify"), str) else task.get("notify") or []
        )
        if "{{" not in name and name not in known
    ]
    assert not missing, f"role {role.name}: no such handler:\n" + "\n".join(missing)


def test_systemd_handlers_reload_units(role: Role) -> None:
    problems = []
    for name, handler in handlers(role).items():
        module, args = action(handler)
        if module not in SYSTEMD:
            continue
        if not re.match(r"^(Restart|Reload) ", name) or args.get("state") not in (
            "restarted",
            "reloaded",
        ):
            problems.append(
                f"{name!r}: a systemd handler is 'Restart <service>' or 'Reload <service>'"
            )
        if args.get("daemon_reload") is not True:
            problems.append(f"{name!r}: needs daemon_reload: true")
    assert not problems, f"role {role.name}: handlers/main.yml:\n" + "\n".join(problems)


def test_services_start_after_the_handlers_with_daemon_reload(role: Role) -> None:
    problems = []
    for path in role.task_files():
        flushed = False
        for task in tasks_of(load(path)):
            module, args = action(task)
            if module in ("meta", "ansible.builtin.meta") and args == FLUSH:
                flushed = True
            if module in SYSTEMD and str(args.get("state", "")).startswith(("started", "{{")):
                label = f"{path.relative_to(role.path)}: task {task.get('name')!r}"
                if not flushed:
                    problems.append(f"{label} starts a service before meta: flush_handlers")
                if args.get("daemon_reload") is not True:
                    problems.append(f"{label} starts a service without daemon_reload: true")
    assert not problems, f"role {role.name}:\n" + "\n".join(problems)
