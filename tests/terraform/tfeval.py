"""Evaluate the expressions of a Terraform directory with Terraform itself, offline.

No google provider can be installed here, so a module with resources cannot be
planned. What decides the platform's shape (which VMs exist, which get an external
IP, which ports a firewall rule opens) is expressions, though: locals, and the
``for_each`` / attribute expressions of resources and dynamic blocks. ``Harness``
builds a provider-free root module out of a directory's variables.tf, its
``locals`` blocks and its calls of provider-free modules (terraform/modules/tiers),
with every reference to a resource, data source or other module replaced by a
value the test gives (``fakes``), then asks Terraform for the values of the
expressions the test names. The expressions are read from the .tf files with
python-hcl2, so the test runs the code as written, not a copy of it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

TERRAFORM = shutil.which("terraform")
PROVIDER_FREE = ("tiers",)  # modules/<name> without resources: called as they are


def blocks(text: str, kind: str) -> list[str]:
    """The raw text of every top-level block ``kind ... { ... }`` (strings, comments and
    heredocs skipped while matching braces)."""
    out, i, n = [], 0, len(text)
    depth, start = 0, None
    while i < n:
        c = text[i]
        if c == "#" or text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
            continue
        if text.startswith("/*", i):
            i = text.index("*/", i) + 2
            continue
        if c == '"':
            i += 1
            while text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            continue
        m = re.compile(r"<<-?([A-Z]+)\n").match(text, i)
        if m:
            end = re.compile(rf"^\s*{m.group(1)}$", re.M).search(text, m.end())
            assert end, f"unterminated heredoc {m.group(1)}"
            i = end.end()
            continue
        if (
            depth == 0
            and re.compile(rf"{kind}\b").match(text, i)
            and (i == 0 or text[i - 1] == "\n")
        ):
            start = i
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0 and start is not None:
                out.append(text[start : i + 1])
                start = None
        i += 1
    return out


def dynamic(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The ``dynamic "<name>"`` block of a resource (or nested block) body."""
    for d in body.get("dynamic", []):
        for label, inner in d.items():
            if label.strip('"') == name:
                found: dict[str, Any] = inner
                return found
    raise KeyError(f"no dynamic {name} block")


def expr(value: Any) -> str:
    """python-hcl2's '${expr}' / '"literal"' / Python value -> HCL expression text."""
    if isinstance(value, str):
        if value.startswith("${") and value.endswith("}"):
            return value[2:-1]
        return value if value.startswith('"') else json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(expr(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{json.dumps(k.strip(chr(34)))} = {expr(v)}" for k, v in value.items())
        return "{ " + ", ".join(i for i in items if not i.startswith('"__')) + " }"
    return json.dumps(value)


@dataclass
class Harness:
    """A provider-free copy of ``source`` (a directory of .tf files) in ``work``."""

    source: Path
    work: Path
    fakes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.texts = {p.name: p.read_text() for p in sorted(self.source.glob("*.tf"))}
        self.parsed = {name: hcl2.loads(t) for name, t in self.texts.items()}

    # -- the parse tree
    def resource(self, rtype: str, name: str) -> dict[str, Any]:
        for doc in self.parsed.values():
            for b in doc.get("resource", []):
                if f'"{rtype}"' in b and f'"{name}"' in b[f'"{rtype}"']:
                    body: dict[str, Any] = b[f'"{rtype}"'][f'"{name}"']
                    return body
        raise KeyError(f"{self.source}: no resource {rtype}.{name}")

    def modules(self) -> dict[str, dict[str, Any]]:
        """Module calls: name => arguments (as python-hcl2 gives them)."""
        return {
            n.strip('"'): body
            for doc in self.parsed.values()
            for b in doc.get("module", [])
            for n, body in b.items()
        }

    def resources(self, rtype: str) -> list[str]:
        return [
            n.strip('"')
            for doc in self.parsed.values()
            for b in doc.get("resource", [])
            for n in b.get(f'"{rtype}"', {})
        ]

    # -- rewriting references
    def _references(self) -> dict[str, str]:
        """Reference prefix in the code => the local that stands in for it."""
        refs: dict[str, str] = {}
        for doc in self.parsed.values():
            for kind in ("resource", "data"):
                for b in doc.get(kind, []):
                    for t, named in b.items():
                        for n in named:
                            t_, n_ = t.strip('"'), n.strip('"')
                            ref = f"{t_}.{n_}" if kind == "resource" else f"data.{t_}.{n_}"
                            refs[ref] = "local.fake_" + ref.replace(".", "_")
            for n, body in self.modules().items():
                if Path(body["source"].strip('"')).name not in PROVIDER_FREE:
                    refs[f"module.{n}"] = f"local.fake_module_{n}"
        return refs

    def _rewrite(self, text: str) -> str:
        text = text.replace("path.module", json.dumps(str(self.source)))
        for ref, local in sorted(self._references().items(), key=lambda r: -len(r[0])):
            text = re.sub(rf"(?<![\w.]){re.escape(ref)}(?![\w-])", local, text)
        return text

    # -- running Terraform
    def evaluate(self, inputs: dict[str, Any], exprs: dict[str, str]) -> dict[str, Any]:
        """Values of the HCL expressions ``exprs`` (name => expression in the directory's
        terms) with the input variables ``inputs``."""
        assert TERRAFORM, "terraform is not on PATH"
        work = self.work
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        parts = [self.texts.get("variables.tf", "")]
        for text in self.texts.values():
            parts += [self._rewrite(b) for b in blocks(text, "locals")]
            for b in blocks(text, "module"):
                src = re.search(r'source\s*=\s*"([^"]+)"', b)
                assert src, b
                name = re.match(r'module\s+"([^"]+)"', b)
                assert name, b
                if Path(src.group(1)).name in PROVIDER_FREE:
                    b = b.replace(
                        src.group(0), f'source = "{(self.source / src.group(1)).resolve()}"'
                    )
                    parts.append(self._rewrite(b))
                else:
                    # The call's arguments as one object: output args_<module>.
                    body = b[b.index("{") + 1 : b.rindex("}")].replace(src.group(0), "")
                    args = self._rewrite(body)
                    parts.append(f'output "args_{name.group(1)}" {{\n  value = {{{args}}}\n}}\n')
        fakes = {k.replace("local.", ""): v for k, v in self._fake_locals().items()}
        parts.append("locals {\n" + "".join(f"  {k} = {v}\n" for k, v in fakes.items()) + "}\n")
        for name, e in exprs.items():
            parts.append(f'output "{name}" {{\n  value = {self._rewrite(e)}\n}}\n')
        (work / "main.tf").write_text("\n".join(parts))
        (work / "terraform.tfvars.json").write_text(json.dumps(inputs))
        env = dict(os.environ, CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1")
        env["TF_DATA_DIR"] = str(work / ".terraform")
        if env.get("TF_CLI_CONFIG_FILE") and not Path(env["TF_CLI_CONFIG_FILE"]).is_file():
            del env["TF_CLI_CONFIG_FILE"]
        for cmd in (
            ["init", "-input=false", "-no-color"],
            ["apply", "-auto-approve", "-input=false", "-no-color"],
        ):
            r = subprocess.run(
                [TERRAFORM, f"-chdir={work}", *cmd],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if r.returncode != 0:
                # Terraform wraps messages at 80 columns: one line, for matching.
                raise TerraformError(" ".join((r.stderr or r.stdout).split()))
        r = subprocess.run(
            [TERRAFORM, f"-chdir={work}", "output", "-json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return {k: v["value"] for k, v in json.loads(r.stdout).items()}

    def _fake_locals(self) -> dict[str, str]:
        refs = self._references()
        return {refs[ref]: json.dumps(value) for ref, value in self.fakes.items()}

    def per_instance(self, for_each: Any, attr: Any) -> str:
        """An expression: for_each key => ``attr`` evaluated for that instance."""
        body = re.sub(r"\beach\.key\b", "k", expr(attr))
        body = re.sub(r"\beach\.value\b", "v", body)
        return f"{{ for k, v in {expr(for_each)} : k => {body} }}"


class TerraformError(Exception):
    """terraform refused the harness (a failed validation, precondition or expression)."""
