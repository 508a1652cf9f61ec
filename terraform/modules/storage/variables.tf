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
  description = "Name prefix of the buckets; they are named <project_id>-<name>-<key> unless a bucket sets its name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,11}$", var.name))
    error_message = "name must start with a letter, use lowercase letters, digits and hyphens, and be at most 12 characters."
  }
}

variable "buckets" {
  description = <<-EOT
    Buckets (all versioned): key => {purpose (label), name (null: <project_id>-<name>-<key>),
    storage_class, lifecycle_rules (list of {action = {type, storage_class}, condition = {age,
    with_state, matches_storage_class, days_since_noncurrent_time, num_newer_versions}}),
    members (role => {key => IAM member}: the keys name the grants, so they are known before
    the members' service accounts exist)}.
  EOT
  type = map(object({
    purpose       = string
    name          = optional(string)
    storage_class = optional(string, "STANDARD")
    lifecycle_rules = optional(list(object({
      action = object({
        type          = string
        storage_class = optional(string)
      })
      condition = object({
        age                        = optional(number)
        with_state                 = optional(string)
        matches_storage_class      = optional(list(string))
        days_since_noncurrent_time = optional(number)
        num_newer_versions         = optional(number)
      })
    })), [])
    members = optional(map(map(string)), {})
  }))

  validation {
    condition     = alltrue([for k, b in var.buckets : can(regex("^[a-z0-9][a-z0-9-]{0,20}$", k)) && (b.name == null || can(regex("^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$", coalesce(b.name, "-"))))])
    error_message = "bucket keys must be short lowercase names (letters, digits, hyphens) and names valid bucket names (3-63 lowercase characters)."
  }

  validation {
    condition     = alltrue([for k, b in var.buckets : contains(["STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"], b.storage_class)])
    error_message = "storage_class must be STANDARD, NEARLINE, COLDLINE or ARCHIVE."
  }

  validation {
    condition     = alltrue([for k, b in var.buckets : length(b.lifecycle_rules) > 0])
    error_message = "every bucket needs lifecycle rules (old versions and stale objects must age out)."
  }

  validation {
    condition     = alltrue(flatten([for k, b in var.buckets : [for r in b.lifecycle_rules : contains(["Delete", "SetStorageClass", "AbortIncompleteMultipartUpload"], r.action.type)]]))
    error_message = "lifecycle rule actions must be Delete, SetStorageClass or AbortIncompleteMultipartUpload."
  }

  validation {
    condition = alltrue(flatten([for k, b in var.buckets : [for role, members in b.members : concat(
      [contains(["roles/storage.objectViewer", "roles/storage.objectCreator", "roles/storage.objectUser"], role) || can(regex("^custom/[a-zA-Z][a-zA-Z0-9_]{2,40}$", role))],
      [for m in values(members) : can(regex("^(serviceAccount|group|user):", m))],
    )]]))
    error_message = "bucket members: roles must be roles/storage.objectViewer, objectCreator, objectUser or custom/<a key of custom_roles> (no admin roles), members serviceAccount:, group: or user: (never allUsers)."
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
  description = "Labels on every bucket (each adds purpose = its purpose)."
  type        = map(string)
  default     = {}
}

variable "custom_roles" {
  description = "Project custom roles for bucket grants: key => {title, description, permissions}; a bucket's members name one as \"custom/<key>\". Only storage.objects.* permissions (object access, nothing on buckets or IAM)."
  type = map(object({
    title       = string
    description = optional(string, "")
    permissions = list(string)
  }))
  default = {}

  validation {
    condition     = alltrue([for k, r in var.custom_roles : can(regex("^[a-zA-Z][a-zA-Z0-9_]{2,40}$", k)) && length(r.permissions) > 0 && alltrue([for p in r.permissions : can(regex("^storage\\.objects\\.[a-zA-Z]+$", p))])])
    error_message = "custom_roles: keys are 3-41 letters, digits or _ (starting with a letter); permissions a non-empty list of storage.objects.* permissions."
  }
}
