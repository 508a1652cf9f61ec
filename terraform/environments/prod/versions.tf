terraform {
  required_version = ">= 1.7"

  # Partial configuration: terraform/scripts/provision.sh passes
  # -backend-config="bucket=$MLPIPE_TF_STATE_BUCKET" -backend-config="prefix=mlpipe/<env>".
  backend "gcs" {}

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
  }
}
