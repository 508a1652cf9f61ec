variable "project_id" {
  description = "GCP project to build the platform in (MLPIPE_GCP_PROJECT, or terraform.tfvars)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project id (6-30 characters: lowercase letters, digits, hyphens)."
  }
}

variable "region" {
  description = "Region of the subnet, VMs and buckets (MLPIPE_GCP_REGION, or terraform.tfvars)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region name such as <area>-<location><n>."
  }
}

variable "zones" {
  description = "Zones to spread each tier over; empty means every zone of the region that is UP."
  type        = list(string)
  default     = []
}

variable "environment" {
  description = "Environment name, used in labels (env=<this>) and the state prefix."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.environment))
    error_message = "environment must be lowercase letters, digits and hyphens (max 20)."
  }
}

variable "name" {
  description = "Name prefix of every resource; use a different one per environment sharing a project."
  type        = string
  default     = "mlpipe"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,11}$", var.name))
    error_message = "name must start with a letter, use lowercase letters, digits and hyphens, and be at most 12 characters."
  }
}

variable "subnet_cidr" {
  description = "Private IPv4 range of the platform subnet (mlpipe_private_cidr)."
  type        = string
  default     = "10.42.0.0/24"
}

variable "ssh_source_ranges" {
  description = "CIDRs that may reach SSH on the VMs; default the IAP TCP-forwarding range (SSH through IAP only)."
  type        = list(string)
  default     = ["35.235.240.0/20"]
}

variable "tiers" {
  description = "VM-group settings replacing a tier's gcp block in tiers.yml as a whole (same attributes, see the compute module); for single values use tier_overrides."
  type = map(object({
    count             = number
    machine_type      = string
    disk_size_gb      = number
    disk_type         = optional(string, "pd-balanced")
    data_disk_size_gb = optional(number, 0)
    data_disk_type    = optional(string, "pd-balanced")
    image             = optional(string, "debian-cloud/debian-12")
    labels            = optional(map(string), {})
    stateful          = optional(bool, false)
  }))
  default = {}
}

variable "tier_overrides" {
  description = "Per-tier changes merged over tiers.yml's gcp blocks (and var.tiers), e.g. { dlg_worker = { count = 4 } } to scale a tier. Tiers must be listed in tiers.yml."
  type = map(object({
    count             = optional(number)
    machine_type      = optional(string)
    disk_size_gb      = optional(number)
    disk_type         = optional(string)
    data_disk_size_gb = optional(number)
    data_disk_type    = optional(string)
    image             = optional(string)
    labels            = optional(map(string))
    stateful          = optional(bool)
  }))
  default = {}
}

variable "labels" {
  description = "Extra labels on every resource that takes labels."
  type        = map(string)
  default     = {}
}

variable "admin_members" {
  description = "Operators (user:/group:) who get OS Login admin (sudo) on the VMs and may tunnel SSH through IAP."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.admin_members : can(regex("^(user|group|serviceAccount):", m))])
    error_message = "admin_members must be IAM members: user:, group: or serviceAccount:."
  }
}

variable "backup_retention_days" {
  description = "Days backups are kept in the backups bucket."
  type        = number
  default     = 90
}

variable "buckets_force_destroy" {
  description = "Let `make destroy` delete the buckets even when they hold objects (data loss!)."
  type        = bool
  default     = false
}

variable "kms_key_self_link" {
  description = "Optional Cloud KMS key for disks and buckets (CMEK); null uses Google-managed encryption."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Deletion protection on the VMs of stateful tiers (tiers.yml gcp.stateful: mlflow, postgresql, ngas)."
  type        = bool
  default     = false
}

variable "storage_audit_logs" {
  description = "Enable Cloud Audit Data Access logs for Cloud Storage in the project (who read/wrote which object)."
  type        = bool
  default     = true
}

variable "mlflow_artifact_store" {
  description = "Where MLflow keeps run and model artifacts: \"ngas\" (the archive, through the mlpipe plugin) or \"gcs\" (a bucket of their own, output bucket_mlflow_artifacts; docs/gcp.md compares the two)."
  type        = string
  default     = "ngas"

  validation {
    condition     = contains(["ngas", "gcs"], var.mlflow_artifact_store)
    error_message = "mlflow_artifact_store must be \"ngas\" or \"gcs\"."
  }
}
