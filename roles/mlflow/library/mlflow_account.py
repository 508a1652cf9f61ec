#!/usr/bin/python
"""Ansible module: one MLflow basic-auth account and its grants, idempotently."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import fetch_url

DOCUMENTATION = r"""
module: mlflow_account
short_description: An MLflow basic-auth account and its permission grants
description:
  - Creates, updates (password) or deletes one account of an MLflow server run with
    C(--app-name basic-auth), through its REST API as the admin.
  - Sets the account's grants (resource type, resource pattern, permission) on its own
    role; grants not listed (for example the MANAGE an account gets on what it creates)
    are left alone.
  - Any answer other than the documented ones (401 of the admin, 5xx, a timeout) fails
    the task; it is never read as "absent".
options:
  url: {description: The MLflow server, e.g. http://10.0.0.5:5000., type: str, required: true}
  admin_username: {description: The admin account., type: str, required: true}
  admin_password: {description: The admin's password., type: str, required: true}
  name: {description: The account., type: str, required: true}
  password: {description: Its password (state=present)., type: str}
  state: {description: present or absent., type: str, default: present, choices: [present, absent]}
  grants:
    description: Grants of the account (state=present).
    type: list
    elements: dict
    default: []
    suboptions:
      resource_type: {type: str, required: true, choices: [experiment, registered_model]}
      resource: {description: Experiment id, model name or C(*)., type: str, default: "*"}
      permission: {type: str, required: true, choices: [READ, USE, EDIT, MANAGE]}
  timeout: {description: Seconds per request., type: int, default: 30}
"""

RETURN = r"""
actions:
  description: What was done (or would be, in check mode), e.g. C(created), C(password),
    C(grant experiment * READ).
  type: list
  returned: always
"""

API2 = "/api/2.0/mlflow"
API3 = "/api/3.0/mlflow"


class Api:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.url = module.params["url"].rstrip("/")

    def call(
        self,
        method: str,
        path: str,
        auth: tuple[str, str],
        query: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> tuple[int, dict[str, Any]]:
        url = self.url + path + ("?" + urlencode(query) if query else "")
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        resp, info = fetch_url(
            self.module,
            url,
            data=data,
            headers=headers,
            method=method,
            timeout=self.module.params["timeout"],
        )
        status = int(info.get("status", -1))
        raw = resp.read() if resp is not None else info.get("body", b"")
        try:
            doc = json.loads(raw or b"{}")
        except ValueError:
            doc = {"raw": raw.decode(errors="replace")[:300] if isinstance(raw, bytes) else raw}
        if status not in ok:
            where = f"{method} {self.url}{path}"
            if status == 401 and auth[0] == self.module.params["admin_username"]:
                hint = "the admin's credentials are refused: check mlflow_admin_password"
            elif status == -1:
                hint = f"no answer ({info.get('msg')}): is MLflow up at {self.url}?"
            else:
                hint = f"HTTP {status}: {doc.get('message') or doc}"
            self.module.fail_json(
                msg=f"mlflow_account {self.module.params['name']}: {where}: {hint}"
            )
        return status, doc


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "admin_username": {"type": "str", "required": True},
            "admin_password": {"type": "str", "required": True, "no_log": True},
            "name": {"type": "str", "required": True},
            "password": {"type": "str", "no_log": True},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
            "grants": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "resource_type": {
                        "type": "str",
                        "required": True,
                        "choices": ["experiment", "registered_model"],
                    },
                    "resource": {"type": "str", "default": "*"},
                    "permission": {
                        "type": "str",
                        "required": True,
                        "choices": ["READ", "USE", "EDIT", "MANAGE"],
                    },
                },
            },
            "timeout": {"type": "int", "default": 30},
        },
        required_if=[("state", "present", ["password"])],
        supports_check_mode=True,
    )
    p = module.params
    api = Api(module)
    admin = (p["admin_username"], p["admin_password"])
    name = p["name"]
    if name == p["admin_username"]:
        module.fail_json(msg=f"mlflow_account {name}: the admin is managed by the role itself")
    actions: list[str] = []

    status, _ = api.call("GET", f"{API2}/users/get", admin, {"username": name}, ok=(200, 404))
    exists = status == 200
    if p["state"] == "absent":
        if exists:
            actions.append("deleted")
            if not module.check_mode:
                api.call("DELETE", f"{API2}/users/delete", admin, body={"username": name})
        module.exit_json(changed=bool(actions), actions=actions)

    if not exists:
        actions.append("created")
        if not module.check_mode:
            api.call(
                "POST",
                f"{API2}/users/create",
                admin,
                body={"username": name, "password": p["password"]},
            )
    else:
        # the account's own login tells whether its password is the wanted one
        mine, _ = api.call(
            "GET", f"{API2}/users/get", (name, p["password"]), {"username": name}, ok=(200, 401)
        )
        if mine == 401:
            actions.append("password")
            if not module.check_mode:
                api.call(
                    "PATCH",
                    f"{API2}/users/update-password",
                    admin,
                    body={"username": name, "password": p["password"]},
                )

    current: dict[tuple[str, str], str] = {}
    if exists:
        _, doc = api.call("GET", f"{API3}/users/permissions/list", admin, {"username": name})
        for g in doc.get("permissions", []):
            if str(g.get("role_name", "")).startswith("__user_"):
                current[(g["resource_type"], g["resource_pattern"])] = g["permission"]
    for g in p["grants"]:
        key = (g["resource_type"], g["resource"])
        have = current.get(key)
        if have == g["permission"]:
            continue
        actions.append(
            f"grant {key[0]} {key[1]} {g['permission']}" + (f" (was {have})" if have else "")
        )
        if module.check_mode:
            continue
        ident = {"username": name, "resource_type": key[0], "resource_id": key[1]}
        if have is not None:
            api.call("POST", f"{API3}/users/permissions/revoke", admin, body=ident)
        api.call(
            "POST",
            f"{API3}/users/permissions/grant",
            admin,
            body={**ident, "permission": g["permission"]},
        )
    module.exit_json(changed=bool(actions), actions=actions)


if __name__ == "__main__":
    main()
