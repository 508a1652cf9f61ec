variable "project_id" {
  description = "GCP project the platform lives in."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project id (6-30 characters: lowercase letters, digits, hyphens)."
  }
}

variable "region" {
  description = "Region of the state bucket (use the platform's region)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region name such as <area>-<location><n>."
  }
}

variable "state_bucket_name" {
  description = "Name of the Terraform state bucket; null means <project_id>-mlpipe-tfstate."
  type        = string
  default     = null

  validation {
    condition     = var.state_bucket_name == null || can(regex("^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$", var.state_bucket_name))
    error_message = "state_bucket_name must be a valid bucket name (3-63 lowercase characters)."
  }
}

variable "state_versions_kept" {
  description = "Older versions of each state file kept in the bucket."
  type        = number
  default     = 20

  validation {
    condition     = var.state_versions_kept >= 1
    error_message = "state_versions_kept must be >= 1."
  }
}

variable "services" {
  description = "APIs the platform needs, enabled once per project (never disabled on destroy)."
  type        = list(string)
  default = [
    "compute.googleapis.com",
    "iam.googleapis.com",
    "iap.googleapis.com",
    "oslogin.googleapis.com",
    "storage.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "cloudresourcemanager.googleapis.com",
  ]

  validation {
    condition     = alltrue([for s in var.services : endswith(s, ".googleapis.com")])
    error_message = "services must be API names ending in .googleapis.com."
  }
}
