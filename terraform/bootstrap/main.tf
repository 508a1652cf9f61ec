/**
 * One-time bootstrap of a project for mlpipe: enables the APIs and creates
 * the versioned bucket that holds every environment's Terraform state.
 */

provider "google" {
  project = var.project_id
  region  = var.region
}

locals {
  state_bucket = coalesce(var.state_bucket_name, "${var.project_id}-mlpipe-tfstate")
}

resource "google_project_service" "api" {
  for_each = toset(var.services)

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

resource "google_storage_bucket" "state" {
  #checkov:skip=CKV_GCP_62:State access is audited with Cloud Audit Logs (Data Access logs), not legacy usage logs.
  project                     = var.project_id
  name                        = local.state_bucket
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = { app = "mlpipe", purpose = "terraform-state" }

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      num_newer_versions = var.state_versions_kept
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle {
    prevent_destroy = true
  }

  depends_on = [google_project_service.api]
}
