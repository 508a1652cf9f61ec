#!/usr/bin/env python3
"""Generate an inventory's secrets once and keep them in an ansible-vault file.

Usage: gen-secrets.py INVENTORY_DIR [VAULT_PASSWORD_FILE]

Writes INVENTORY_DIR/group_vars/all/vault.yml (encrypted with the vault
password file, default: the repository's .vault-pass). Existing values are
never changed: only names missing from the file are added, so re-running is
safe and a site's own vaulted values win. The file is git-ignored.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

# name -> length of the generated value (url-safe characters)
SECRETS: dict[str, int] = {
    "vault_mlflow_db_password": 32,
    "vault_mlflow_admin_password": 24,
    # MLflow accounts of the task scripts and of the results site (roles/mlflow mlflow_accounts)
    "vault_mlflow_pipeline_password": 24,
    "vault_mlflow_reader_password": 24,
    "vault_ngas_db_password": 32,
    # NGAS accounts (roles/ngas ngas_users): the operator, the pipeline/MLflow tiers, the web tier
    "vault_ngas_admin_password": 24,
    "vault_ngas_writer_password": 24,
    "vault_ngas_reader_password": 24,
    # slurmdbd's MariaDB account (roles/slurm)
    "vault_slurm_dbd_db_password": 32,
    # the munge key of every Slurm member, written as the key file: 172 url-safe
    # characters carry 1032 random bits, at least mungekey's default 1024-bit key
    "vault_slurm_munge_key": 172,
    # encrypts the results site's CA key on the controller (roles/webserver, site_ca)
    "vault_webserver_site_ca_passphrase": 32,
}

# SSH key pairs (ed25519, OpenSSH format), generated together: private key name ->
# public key name. The public half is vaulted beside it only so they stay a pair.
KEYPAIRS: dict[str, str] = {
    # the submitting hosts' key for the Slurm login node's submit account
    # (roles/slurm slurm_submit_authorized_keys, roles/pipeline pipeline_slurm_ssh_key)
    "vault_slurm_submit_ssh_private_key": "vault_slurm_submit_ssh_public_key",
}


def ssh_keypair(comment: str) -> tuple[str, str]:
    """A new ed25519 key pair: (private key in OpenSSH PEM form, public key line)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, f"{public.decode()} {comment}"


def vault(*args: str, password_file: Path) -> subprocess.CompletedProcess[str]:
    # the environment variable overrides ansible.cfg's vault_password_file, so
    # exactly one password is in play whichever config is active
    env = dict(os.environ, ANSIBLE_VAULT_PASSWORD_FILE=str(password_file.resolve()))
    beside = Path(sys.executable).parent / "ansible-vault"  # the venv's, when run from one
    cmd = [str(beside) if beside.exists() else "ansible-vault", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    top = Path(__file__).resolve().parents[2]
    inventory = Path(argv[1])
    password_file = Path(argv[2]) if len(argv) == 3 else top / ".vault-pass"
    if not password_file.is_file():
        print(
            f"gen-secrets: ERROR: vault password file {password_file} is missing; "
            "run `make venv` or create it (one line, keep it secret)",
            file=sys.stderr,
        )
        return 2
    target = inventory / "group_vars" / "all" / "vault.yml"
    current: dict[str, str] = {}
    if target.exists():
        shown = vault("view", str(target), password_file=password_file)
        if shown.returncode != 0:
            print(
                f"gen-secrets: ERROR: cannot decrypt {target} with {password_file}: "
                f"{shown.stderr.strip()}\nRestore the matching password file; the vault "
                "file is left untouched.",
                file=sys.stderr,
            )
            return 2
        current = yaml.safe_load(shown.stdout) or {}
    missing = [name for name in SECRETS if name not in current]
    # a pair missing either half is generated anew (both halves)
    pairs = [p for p, pub in KEYPAIRS.items() if p not in current or pub not in current]
    if not missing and not pairs:
        print(f"gen-secrets: {target}: all {len(SECRETS) + 2 * len(KEYPAIRS)} secrets present")
        return 0
    for name in missing:
        current[name] = secrets.token_urlsafe(SECRETS[name])[: SECRETS[name]]
    for name in pairs:
        comment = name.removeprefix("vault_").removesuffix("_private_key") + "@mlpipe"
        current[name], current[KEYPAIRS[name]] = ssh_keypair(comment)
        missing += [name, KEYPAIRS[name]]
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".vault-", suffix=".yml")
    try:
        with os.fdopen(fd, "w") as out:
            out.write("---\n")
            yaml.safe_dump(current, out, default_flow_style=False)
        done = vault("encrypt", tmp, password_file=password_file)
        if done.returncode != 0:
            print(
                f"gen-secrets: ERROR: ansible-vault encrypt failed: {done.stderr.strip()}",
                file=sys.stderr,
            )
            return 1
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print(f"gen-secrets: {target}: generated {', '.join(missing)} (vaulted)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
