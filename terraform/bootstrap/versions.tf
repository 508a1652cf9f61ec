terraform {
  required_version = ">= 1.7"

  # The bootstrap keeps its own (tiny) state locally: it creates the bucket every
  # environment's remote state lives in. Keep terraform.tfstate of this directory
  # safe, or re-import the bucket (see README.md).
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
  }
}
