variable "project_id" {
  description = "GCP project of the VMs and their service accounts."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project id (6-30 characters: lowercase letters, digits, hyphens)."
  }
}

variable "region" {
  description = "Region of the VMs (zones are chosen in it) and of the web tier's static addresses."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region name such as <area>-<location><n>."
  }
}

variable "zones" {
  description = "Zones to spread each tier's VMs over (round robin). Empty: every zone of the region that is UP."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for z in var.zones : can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", z))])
    error_message = "zones must be GCP zone names such as <region>-<letter>."
  }
}

variable "name" {
  description = "Name prefix of the VMs (<name>-<tier>-<n>), disks, addresses and service accounts."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,11}$", var.name))
    error_message = "name must start with a letter, use lowercase letters, digits and hyphens, and be at most 12 characters."
  }
}

variable "subnet_self_link" {
  description = "Self link of the subnet every VM attaches to (network module output)."
  type        = string
}

variable "tier_tags" {
  description = "Network tag of each tier (network module output); must have a key for every tier and every tier in an also_serves list."
  type        = map(string)
}

variable "tiers" {
  description = <<-EOT
    VM group of each tier (terraform/modules/tiers output vm_groups): tier => {count,
    machine_type, disk_size_gb (boot), disk_type, data_disk_size_gb (0 = no data disk),
    data_disk_type, image, labels, stateful (deletion_protection applies), public (the VMs
    get a static external IP), also_serves (tiers without VMs of their own whose network
    tags these VMs also carry, e.g. postgresql on the mlflow VMs)}.
  EOT
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
    public            = optional(bool, false)
    also_serves       = optional(list(string), [])
  }))

  validation {
    condition     = alltrue([for t in keys(var.tiers) : can(regex("^[a-z][a-z_]{0,18}[a-z]$", t))])
    error_message = "tiers keys must be tier names: 2-20 lowercase letters and underscores (see tiers.yml)."
  }

  validation {
    condition     = alltrue([for t, c in var.tiers : c.count >= 0 && c.count <= 50 && floor(c.count) == c.count])
    error_message = "every tier count must be a whole number from 0 to 50."
  }

  validation {
    condition     = alltrue([for t, c in var.tiers : c.disk_size_gb >= 10 && c.data_disk_size_gb >= 0])
    error_message = "disk_size_gb must be at least 10 and data_disk_size_gb at least 0."
  }

  validation {
    condition = alltrue(flatten([for t, c in var.tiers : [
      contains(["pd-standard", "pd-balanced", "pd-ssd", "hyperdisk-balanced"], c.disk_type),
      contains(["pd-standard", "pd-balanced", "pd-ssd", "hyperdisk-balanced"], c.data_disk_type),
    ]]))
    error_message = "disk types must be pd-standard, pd-balanced, pd-ssd or hyperdisk-balanced."
  }

  validation {
    condition     = alltrue([for t, c in var.tiers : can(regex("^[a-z0-9]+-[a-z0-9-]+$", c.machine_type))])
    error_message = "machine_type must be a GCE machine type name such as e2-standard-2."
  }
}

variable "labels" {
  description = "Labels on every VM and disk, merged under each tier's own labels and the tier label."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "label keys/values must be lowercase letters, digits, underscores and hyphens (keys start with a letter)."
  }
}

variable "service_account_roles" {
  description = "Project roles granted to every tier's service account (least privilege: logs and metrics only; bucket access is granted per bucket)."
  type        = list(string)
  default     = ["roles/logging.logWriter", "roles/monitoring.metricWriter"]

  validation {
    condition     = alltrue([for r in var.service_account_roles : startswith(r, "roles/") && !contains(["roles/owner", "roles/editor"], r)])
    error_message = "service_account_roles must be roles/... and never roles/owner or roles/editor."
  }
}

variable "kms_key_self_link" {
  description = "Cloud KMS key to encrypt boot and data disks with (CMEK); null uses Google-managed encryption."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_self_link == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_self_link))
    error_message = "kms_key_self_link must be projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>."
  }
}

variable "deletion_protection" {
  description = "Protect the VMs of stateful tiers (tiers.yml gcp.stateful: mlflow, postgresql, ngas) from deletion; `make destroy` then fails until it is turned off."
  type        = bool
  default     = false
}
