#!/usr/bin/env bash
# make provision: create the GCP platform with Terraform, write inventories/gcp/hosts.yml
# from its outputs, wait for SSH on every VM, then run ansible/site.yml on it.
# Settings (see also common.sh and docs/gcp.md):
#   MLPIPE_AUTO_APPROVE=1     apply without Terraform's interactive confirmation
#   MLPIPE_SSH_VIA            iap (default: SSH through IAP, needs gcloud) or direct
#   MLPIPE_SSH_USER           OS Login user name (default: asked from gcloud)
#   MLPIPE_SSH_KEY            private key for OS Login (default ~/.ssh/google_compute_engine)
#   MLPIPE_SSH_TIMEOUT        seconds to wait for SSH on every VM (300)
set -euo pipefail
# shellcheck source=terraform/scripts/common.sh
. "$(dirname "$0")/common.sh"
cd "$top"

ssh_via=${MLPIPE_SSH_VIA:-iap}
check_common
case "$ssh_via" in
  iap)
    if ! command -v gcloud >/dev/null 2>&1; then
      missing+=("gcloud: not found on PATH (the Google Cloud CLI opens the IAP SSH tunnels; or set MLPIPE_SSH_VIA=direct when this machine is inside the VPC)")
    fi ;;
  direct) ;;
  *) missing+=("MLPIPE_SSH_VIA=$ssh_via: must be iap or direct") ;;
esac
for tool in ansible ansible-playbook ssh; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool: not found on PATH (run via 'make provision', which installs the kit's tools)")
done
if [ -z "${MLPIPE_SSH_USER:-}" ] && ! command -v gcloud >/dev/null 2>&1; then
  missing+=("OS Login user: set MLPIPE_SSH_USER=<posix user name> (gcloud, which could look it up, is absent)")
fi
stop_if_missing "make provision"

py=$top/.venv/bin/python
[ -x "$py" ] || py=python3

echo "== terraform: environment $env_name, project $project, region $region, state gs://$state_bucket/mlpipe/$env_name"
tf_init
if [ "${MLPIPE_AUTO_APPROVE:-0}" = 1 ]; then
  tf apply -input=false -auto-approve
else
  tf apply
fi

echo "== inventory"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
tf output -json > "$out"
ssh_key=${MLPIPE_SSH_KEY:-$HOME/.ssh/google_compute_engine}
if [ ! -f "$ssh_key" ]; then
  echo "provision: creating SSH key $ssh_key for OS Login"
  mkdir -p "$(dirname "$ssh_key")"
  ssh-keygen -q -t ed25519 -N '' -C "mlpipe-$env_name" -f "$ssh_key"
fi
if command -v gcloud >/dev/null 2>&1; then
  # Idempotent: registers the public key with the caller's OS Login profile.
  gcloud compute os-login ssh-keys add --key-file="$ssh_key.pub" --project="$project" >/dev/null
fi
ssh_user=${MLPIPE_SSH_USER:-$(gcloud compute os-login describe-profile --project="$project" --format='value(posixAccounts[0].username)')}
if [ -z "$ssh_user" ]; then
  echo "provision: could not find your OS Login user name; set MLPIPE_SSH_USER" >&2
  exit 1
fi
mkdir -p "$(dirname "$known_hosts")"
"$py" terraform/scripts/tf_inventory.py --tf-output "$out" --out "$inv_dir/hosts.yml" \
  --ssh-user "$ssh_user" --ssh-key "$ssh_key" --ssh-via "$ssh_via" --known-hosts "$known_hosts"

timeout=${MLPIPE_SSH_TIMEOUT:-300}
echo "== waiting for SSH on every host (up to ${timeout}s)"
if ! ansible all -i "$inv_dir" -m ansible.builtin.wait_for_connection -a "timeout=$timeout" -o; then
  echo "provision: SSH still fails after ${timeout}s on the hosts above. The VMs are up;" \
    "fix access (OS Login roles, IAP firewall, MLPIPE_SSH_USER) and re-run make provision." >&2
  exit 1
fi

echo "== secrets (generated once, vaulted, git-ignored)"
"$py" ansible/scripts/gen-secrets.py "$inv_dir"
echo "== site"
"$py" ansible/scripts/runbook.py play site ansible/site.yml -i "$inv_dir"
public=$("$py" -c 'import sys, yaml; c = yaml.safe_load(open(sys.argv[1]))["all"]["children"]; print(" ".join(sorted({v["mlpipe_public_ip"] for g in c.values() for v in (g.get("hosts") or {}).values() if v and v.get("mlpipe_public_ip")})))' "$inv_dir/hosts.yml")
echo "make provision: done. Inventory: ${inv_dir#"$top"/}/hosts.yml; public IP(s) (web tier): ${public:-none}"
