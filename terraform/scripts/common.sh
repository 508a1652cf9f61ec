# shellcheck shell=bash
# Shared by provision.sh and destroy.sh (sourced). Settings, all optional but
# the project/region (env or terraform.tfvars) and the state bucket:
#   MLPIPE_ENV               environment directory under terraform/environments (prod)
#   MLPIPE_GCP_PROJECT       GCP project id      (else project_id in terraform.tfvars)
#   MLPIPE_GCP_REGION        GCP region          (else region in terraform.tfvars)
#   MLPIPE_TF_STATE_BUCKET   bucket of the Terraform state (made by terraform/bootstrap)
#   GOOGLE_APPLICATION_CREDENTIALS, or gcloud application-default credentials
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
env_name=${MLPIPE_ENV:-prod}
env_dir=$top/terraform/environments/$env_name
tfvars=$env_dir/terraform.tfvars
# Used by provision.sh and destroy.sh, which source this file:
# shellcheck disable=SC2034
inv_dir=${MLPIPE_INVENTORY_DIR:-$top/inventories/gcp}
# shellcheck disable=SC2034
known_hosts=${MLPIPE_KNOWN_HOSTS:-$top/.cache/gcp-known-hosts-$env_name}
missing=()

# tfvar NAME: the string value of NAME in terraform.tfvars, if set there.
tfvar() {
  [ -f "$tfvars" ] || return 0
  sed -n -E "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\"([^\"]*)\".*/\\1/p" "$tfvars" | tail -n 1
}

# check_common: fill $missing with what the Terraform steps need; set project/region/state_bucket.
check_common() {
  if [ ! -d "$env_dir" ]; then
    local envs=() d
    for d in "$top"/terraform/environments/*/; do
      envs+=("$(basename "$d")")
    done
    missing+=("environment '$env_name': no directory terraform/environments/$env_name (set MLPIPE_ENV to one of: ${envs[*]})")
  fi
  if ! command -v terraform >/dev/null 2>&1; then
    missing+=("terraform: not found on PATH (install Terraform >= 1.7)")
  fi
  if [ -n "${GOOGLE_APPLICATION_CREDENTIALS:-}" ]; then
    if [ ! -r "$GOOGLE_APPLICATION_CREDENTIALS" ]; then
      missing+=("GCP credentials: GOOGLE_APPLICATION_CREDENTIALS=$GOOGLE_APPLICATION_CREDENTIALS is not a readable file")
    fi
  elif [ -z "${GOOGLE_OAUTH_ACCESS_TOKEN:-}" ] \
    && [ ! -r "${CLOUDSDK_CONFIG:-${HOME:-/nonexistent}/.config/gcloud}/application_default_credentials.json" ]; then
    missing+=("GCP credentials: set GOOGLE_APPLICATION_CREDENTIALS=<service-account key file>, or run 'gcloud auth application-default login' (no application-default credentials found)")
  fi
  project=${MLPIPE_GCP_PROJECT:-$(tfvar project_id)}
  if [ -z "$project" ]; then
    missing+=("GCP project id: set MLPIPE_GCP_PROJECT=<project-id>, or project_id in terraform/environments/$env_name/terraform.tfvars")
  fi
  region=${MLPIPE_GCP_REGION:-$(tfvar region)}
  if [ -z "$region" ]; then
    missing+=("GCP region: set MLPIPE_GCP_REGION=<region>, or region in terraform/environments/$env_name/terraform.tfvars")
  fi
  state_bucket=${MLPIPE_TF_STATE_BUCKET:-}
  if [ -z "$state_bucket" ]; then
    missing+=("Terraform state bucket: set MLPIPE_TF_STATE_BUCKET=<bucket> (create it once with terraform/bootstrap, see docs/gcp.md)")
  fi
}

# stop_if_missing WHAT: print every missing item and exit 2 before anything is touched.
stop_if_missing() {
  [ "${#missing[@]}" -eq 0 ] && return 0
  {
    echo "$1: cannot start, nothing was created or changed. Missing:"
    printf '  - %s\n' "${missing[@]}"
    echo "See docs/gcp.md (Prerequisites)."
  } >&2
  exit 2
}

# tf ARGS...: terraform in the environment directory, with the variables from the environment.
tf() {
  terraform -chdir="$env_dir" "$@"
}

tf_init() {
  export TF_VAR_project_id=$project TF_VAR_region=$region TF_VAR_environment=$env_name
  export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
  tf init -input=false -reconfigure \
    -backend-config="bucket=$state_bucket" -backend-config="prefix=mlpipe/$env_name"
}
