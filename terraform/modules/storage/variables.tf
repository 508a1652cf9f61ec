variable "project_id" {
  description = "GCP project of the buckets."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project id (6-30 characters: lowercase letters, digits, hyphens)."
  }
}

variable "location" {
  description = "Location of the buckets: a region (same as the VMs, cheapest) or a multi-region."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z]+(-[a-zA-Z]+[0-9]+)?$", var.location))
    error_message = "location must be a GCS location: a region name or a multi-region such as EU."
  }
}

variable "name" {
  description = "Name prefix of the buckets; they are named <project_id>-<name>-raw and <project_id>-<name>-backups unless overridden."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,11}$", var.name))
    error_message = "name must start with a letter, use lowercase letters, digits and hyphens, and be at most 12 characters."
  }
}

variable "raw_bucket_name" {
  description = "Name of the raw-data landing bucket; null derives it from project_id and name."
  type        = string
  default     = null

  validation {
    condition     = var.raw_bucket_name == null || can(regex("^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$", var.raw_bucket_name))
    error_message = "raw_bucket_name must be a valid bucket name (3-63 lowercase characters)."
  }
}

variable "backups_bucket_name" {
  description = "Name of the backups bucket; null derives it from project_id and name."
  type        = string
  default     = null

  validation {
    condition     = var.backups_bucket_name == null || can(regex("^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$", var.backups_bucket_name))
    error_message = "backups_bucket_name must be a valid bucket name (3-63 lowercase characters)."
  }
}

variable "raw_nearline_after_days" {
  description = "Raw data objects move to NEARLINE storage after this many days (0 disables the transition)."
  type        = number
  default     = 30

  validation {
    condition     = var.raw_nearline_after_days >= 0
    error_message = "raw_nearline_after_days must be >= 0."
  }
}

variable "noncurrent_version_days" {
  description = "Overwritten or deleted object versions are kept this many days in both buckets, then deleted."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_days >= 1
    error_message = "noncurrent_version_days must be >= 1."
  }
}

variable "backup_retention_days" {
  description = "Backups older than this many days are deleted (their noncurrent versions then age out too)."
  type        = number
  default     = 90

  validation {
    condition     = var.backup_retention_days >= 7
    error_message = "backup_retention_days must be >= 7."
  }
}

variable "raw_writers" {
  description = "IAM members (serviceAccount:..., group:...) that may read, create, overwrite and delete objects in the raw-data bucket (uploaders, the NGAS ingest)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.raw_writers : can(regex("^(serviceAccount|group|user):", m))])
    error_message = "raw_writers must be IAM members: serviceAccount:, group: or user:."
  }
}

variable "raw_readers" {
  description = "IAM members that may only read objects in the raw-data bucket."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.raw_readers : can(regex("^(serviceAccount|group|user):", m))])
    error_message = "raw_readers must be IAM members: serviceAccount:, group: or user:."
  }
}

variable "backup_writers" {
  description = "IAM members that write (create, read; never delete) backups in the backups bucket."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.backup_writers : can(regex("^(serviceAccount|group|user):", m))])
    error_message = "backup_writers must be IAM members: serviceAccount:, group: or user:."
  }
}

variable "kms_key_name" {
  description = "Cloud KMS key for the buckets' default encryption (CMEK); null uses Google-managed encryption."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete non-empty buckets (and every object version in them)."
  type        = bool
  default     = false
}

variable "labels" {
  description = "Labels on both buckets."
  type        = map(string)
  default     = {}
}
