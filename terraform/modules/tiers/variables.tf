variable "tiers" {
  description = "The `tiers` map of the repository's tiers.yml (yamldecode(file(...)).tiers): tier => {status, description, hosted_on, ports, gcp}. tiers.yml documents every attribute; its local_host (one container name or a list, the local cluster's) is not read here and dropped by this type."
  type = map(object({
    status      = string
    description = string
    hosted_on   = optional(string)
    ports = optional(list(object({
      port        = number
      name        = string
      description = string
      public      = optional(bool, false)
      from        = optional(list(string), [])
      local_port  = optional(number)
    })), [])
    gcp = object({
      count             = number
      machine_type      = string
      disk_size_gb      = number
      disk_type         = optional(string, "pd-balanced")
      data_disk_size_gb = optional(number, 0)
      data_disk_type    = optional(string, "pd-balanced")
      image             = optional(string, "debian-cloud/debian-12")
      labels            = optional(map(string), {})
      stateful          = optional(bool, false)
    })
  }))

  validation {
    condition     = length(var.tiers) > 0 && alltrue([for t in keys(var.tiers) : can(regex("^[a-z][a-z_]{0,18}[a-z]$", t))])
    error_message = "tiers.yml: tier names must be 2-20 lowercase letters and underscores (they become inventory groups and GCP names)."
  }

  validation {
    condition     = alltrue([for t, c in var.tiers : contains(["deployed", "planned"], c.status)])
    error_message = "tiers.yml: every tier's status must be deployed or planned."
  }

  validation {
    condition     = alltrue([for t, c in var.tiers : c.hosted_on == null || (contains(keys(var.tiers), coalesce(c.hosted_on, "-")) && c.hosted_on != t)])
    error_message = "tiers.yml: hosted_on must name another tier of the file."
  }

  validation {
    condition     = alltrue(flatten([for t, c in var.tiers : [for p in c.ports : [for s in p.from : contains(keys(var.tiers), s)]]]))
    error_message = "tiers.yml: every ports[].from entry must name a tier of the file."
  }

  validation {
    condition     = alltrue(flatten([for t, c in var.tiers : [for p in c.ports : p.port >= 1 && p.port <= 65535 && floor(p.port) == p.port]]))
    error_message = "tiers.yml: ports[].port must be a whole number from 1 to 65535."
  }

  validation {
    condition     = alltrue([for t, c in var.tiers : length(distinct([for p in c.ports : p.port])) == length(c.ports)])
    error_message = "tiers.yml: a tier lists each port once."
  }
}

variable "sizes" {
  description = "Full VM-group settings that replace the gcp block of the named tiers in tiers.yml (same attributes)."
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

variable "overrides" {
  description = "Single VM-group settings merged over the result, e.g. { dlg_worker = { count = 4 } } scales one tier."
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
