variable "project_id" {
  description = "GCP project that holds the network."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project id (6-30 characters: lowercase letters, digits, hyphens)."
  }
}

variable "region" {
  description = "Region of the subnet, Cloud Router and Cloud NAT."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region name such as <area>-<location><n>."
  }
}

variable "name" {
  description = "Name prefix of every resource (VPC, subnet, router, NAT, firewall rules, network tags)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,11}$", var.name))
    error_message = "name must start with a letter, use lowercase letters, digits and hyphens, and be at most 12 characters."
  }
}

variable "subnet_cidr" {
  description = "Primary IPv4 range of the platform subnet (the private network every tier lives on)."
  type        = string

  validation {
    condition     = can(cidrhost(var.subnet_cidr, 0)) && can(regex("^(10\\.|172\\.(1[6-9]|2[0-9]|3[01])\\.|192\\.168\\.)", var.subnet_cidr))
    error_message = "subnet_cidr must be a valid RFC 1918 IPv4 CIDR."
  }
}

variable "ssh_source_ranges" {
  description = "CIDRs allowed to reach port 22 of every VM. The default is Google's IAP TCP-forwarding range, so SSH works only through IAP."
  type        = list(string)
  default     = ["35.235.240.0/20"]

  validation {
    condition     = length(var.ssh_source_ranges) > 0 && alltrue([for c in var.ssh_source_ranges : can(cidrhost(c, 0)) && !startswith(c, "0.0.0.0/")])
    error_message = "ssh_source_ranges must be a non-empty list of valid CIDRs, none of them 0.0.0.0/n (SSH is never open to the internet)."
  }
}

variable "public_ports" {
  description = "TCP ports open to the internet, per tier: tier => ports (terraform/modules/tiers output public_ports). Only 80 and 443 may be public."
  type        = map(list(number))

  validation {
    condition     = alltrue(flatten([for t, ports in var.public_ports : [for p in ports : contains([80, 443], p)]]))
    error_message = "public_ports may only contain 80 and 443 (tiers.yml: a port with public: true)."
  }
}

variable "service_rules" {
  description = "Internal firewall rules (terraform/modules/tiers output service_rules): key => {port, target (tier), sources (tiers), description}; rule <name>-allow-<key>."
  type = map(object({
    port        = number
    target      = string
    sources     = list(string)
    description = string
  }))

  validation {
    condition     = alltrue([for k, r in var.service_rules : can(regex("^[a-z][a-z0-9-]{0,40}$", k)) && r.port >= 1 && r.port <= 65535])
    error_message = "service_rules keys must be lowercase names (letters, digits, hyphens) and ports 1-65535."
  }
}

variable "tiers" {
  description = "Names of the platform tiers (terraform/modules/tiers output names); each gets a network tag <name>-<tier>."
  type        = list(string)

  validation {
    condition     = length(var.tiers) > 0 && alltrue([for t in var.tiers : can(regex("^[a-z][a-z_]{0,18}[a-z]$", t))])
    error_message = "tiers must be a non-empty list of tier names (2-20 lowercase letters and underscores)."
  }
}

variable "flow_log_sampling" {
  description = "Fraction of VPC flow-log records kept on the subnet (0 to 1)."
  type        = number
  default     = 0.5

  validation {
    condition     = var.flow_log_sampling >= 0 && var.flow_log_sampling <= 1
    error_message = "flow_log_sampling must be between 0 and 1."
  }
}
