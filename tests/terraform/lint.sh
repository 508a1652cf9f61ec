#!/usr/bin/env bash
# Offline checks of terraform/ (make lint-terraform):
#   1. terraform fmt -check -recursive terraform      (skipped if terraform is absent)
#      and `terraform test` of the provider-free modules (modules/tiers), offline
#   2. checkov, zero failed checks; every skip is justified inline in the .tf
#      (#checkov:skip=ID:reason). checkov lives in .venv-checkov, created here on
#      first use from tests/terraform/requirements-checkov.txt: it cannot share
#      .venv (it pins packaging<24, which pytest 9 rejects).
#   3. only with a provider mirror (TF_PLUGIN_MIRROR=<dir holding
#      the hashicorp/google provider in the mirror layout>): terraform init -backend=false,
#      validate and `terraform test` (mock_provider) in every module/environment.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

# A TF_CLI_CONFIG_FILE pointing to a missing file only makes terraform warn.
if [ -n "${TF_CLI_CONFIG_FILE:-}" ] && [ ! -f "$TF_CLI_CONFIG_FILE" ]; then
  unset TF_CLI_CONFIG_FILE
fi
export CHECKPOINT_DISABLE=1

tf=$(command -v terraform || true)
if [ -z "$tf" ]; then
  echo "lint-terraform: terraform not found on PATH: SKIPPED terraform fmt/validate/test (install terraform >= 1.7 to run them)"
else
  echo "lint-terraform: terraform fmt -check -recursive terraform"
  if ! "$tf" fmt -check -recursive -diff terraform; then
    echo "lint-terraform: FAILED: run 'terraform fmt -recursive terraform'" >&2
    exit 1
  fi
  # A module with no resource needs no provider: its tests run here, offline.
  for dir in terraform/modules/*/; do
    if grep -q '^resource ' "$dir"*.tf || ! compgen -G "$dir/tests/*.tftest.hcl" >/dev/null; then
      continue
    fi
    echo "lint-terraform: terraform test in ${dir%/} (no provider needed)"
    data=$(mktemp -d)
    if ! (cd "$dir" && TF_DATA_DIR=$data "$tf" init -input=false -no-color >/dev/null && TF_DATA_DIR=$data "$tf" test -no-color); then
      rm -rf "$data"
      echo "lint-terraform: FAILED: terraform test in ${dir%/}" >&2
      exit 1
    fi
    rm -rf "$data"
  done
fi

venv=$top/.venv-checkov
req=$top/tests/terraform/requirements-checkov.txt
stamp=$venv/.installed
if [ ! -f "$stamp" ] || [ "$req" -nt "$stamp" ]; then
  echo "lint-terraform: installing checkov into $venv (first use only)"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  # pip installs uv, uv checkov (as for the other venvs: several times faster)
  "$venv/bin/pip" install -q --disable-pip-version-check --no-compile "uv==${MLPIPE_UV_VERSION:-0.13.9}"
  "$venv/bin/uv" pip install -q --system-certs --compile-bytecode --python "$venv/bin/python" -r "$req"
  touch "$stamp"
fi
echo "lint-terraform: checkov (terraform framework, offline)"
# --skip-download: no call home for guidelines/policies (works offline, same checks).
"$venv/bin/checkov" -d terraform --framework terraform --quiet --compact --skip-download

# Plain-text secrets in the repository: checkov's secrets framework over every file
# git tracks or would add (a copy of them: ignored files such as .vault-pass, the venvs
# and the generated vault files stay out), zero findings. Encrypted vault files
# ($ANSIBLE_VAULT) are left out: their ciphertext is high-entropy by design. A
# deliberate weak test password carries an inline checkov:skip with its reason.
echo "lint-terraform: checkov (secrets framework, the repository's files)"
tree=$(mktemp -d)
while IFS= read -r -d '' f; do
  [ -f "$top/$f" ] || continue
  if head -c 14 "$top/$f" | grep -q '^[$]ANSIBLE_VAULT'; then continue; fi
  mkdir -p "$tree/$(dirname "$f")" && cp "$top/$f" "$tree/$f"
done < <(git -C "$top" ls-files -z --cached --others --exclude-standard)
rc=0
"$venv/bin/checkov" -d "$tree" --framework secrets --quiet --compact --skip-download || rc=$?
rm -rf "$tree"
[ "$rc" -eq 0 ] || { echo "lint-terraform: FAILED: plain-text secrets in the repository (above)" >&2; exit 1; }

if [ -z "${TF_PLUGIN_MIRROR:-}" ]; then
  echo "lint-terraform: TF_PLUGIN_MIRROR not set: SKIPPED terraform init/validate and terraform test (mock_provider); no provider can be downloaded here"
  exit 0
fi
if [ -z "$tf" ] || [ ! -d "$TF_PLUGIN_MIRROR" ]; then
  echo "lint-terraform: FAILED: TF_PLUGIN_MIRROR=$TF_PLUGIN_MIRROR needs terraform and an existing mirror directory" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/terraformrc" <<CFG
provider_installation {
  filesystem_mirror {
    path    = "$TF_PLUGIN_MIRROR"
  }
}
CFG
export TF_CLI_CONFIG_FILE=$work/terraformrc
for dir in terraform/modules/* terraform/environments/* terraform/bootstrap terraform/examples/*; do
  [ -d "$dir" ] || continue
  name=$(echo "$dir" | tr '/' '_')
  echo "lint-terraform: $dir: init, validate, test"
  export TF_DATA_DIR=$work/$name
  (cd "$dir" && "$tf" init -input=false -backend=false -no-color >/dev/null)
  (cd "$dir" && "$tf" validate -no-color)
  if compgen -G "$dir/tests/*.tftest.hcl" >/dev/null; then
    (cd "$dir" && "$tf" test -no-color)
  fi
done
echo "lint-terraform: terraform validate + test OK"
