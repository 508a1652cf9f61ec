/**
 * mlpipe tiers: turns the repository's tiers.yml (decoded by the caller) into what
 * the network and compute modules take: the tier names, each tier's VM group (the
 * file's gcp block, then var.sizes, then var.overrides), which tiers are public,
 * the internal firewall rules and which tiers live on another tier's VMs.
 * No provider and no resource: `terraform test` runs it offline.
 */

locals {
  unknown_tiers = sort(setsubtract(concat(keys(var.sizes), keys(var.overrides)), keys(var.tiers)))

  # tier => VM-group settings: tiers.yml's gcp block, replaced by var.sizes, then single
  # attributes of var.overrides on top.
  sized = { for t, c in var.tiers : t => try(var.sizes[t], c.gcp) }
  gcp = {
    for t, s in local.sized : t => {
      count             = coalesce(try(var.overrides[t].count, null), s.count)
      machine_type      = coalesce(try(var.overrides[t].machine_type, null), s.machine_type)
      disk_size_gb      = coalesce(try(var.overrides[t].disk_size_gb, null), s.disk_size_gb)
      disk_type         = coalesce(try(var.overrides[t].disk_type, null), s.disk_type)
      data_disk_size_gb = coalesce(try(var.overrides[t].data_disk_size_gb, null), s.data_disk_size_gb)
      data_disk_type    = coalesce(try(var.overrides[t].data_disk_type, null), s.data_disk_type)
      image             = coalesce(try(var.overrides[t].image, null), s.image)
      labels            = coalesce(try(var.overrides[t].labels, null), s.labels)
      stateful          = coalesce(try(var.overrides[t].stateful, null), s.stateful)
    }
  }

  # Tiers with no VM of their own that run on another tier's VMs (tier => host tier).
  hosted_on = { for t, c in var.tiers : t => c.hosted_on if c.hosted_on != null && local.gcp[t].count == 0 }
  bad_hosts = sort([for t, h in local.hosted_on : t if local.gcp[h].count == 0])

  # Ports open to the internet, per tier (the tiers that get an external IP).
  public_ports = {
    for t, c in var.tiers : t => [for p in c.ports : p.port if p.public] if anytrue([for p in c.ports : p.public])
  }

  # One internal firewall rule per private port: "<tier>-<port>" => port, target tier, source tiers.
  service_rules = merge([
    for t, c in var.tiers : {
      for p in c.ports : "${replace(t, "_", "-")}-${p.port}" => {
        port        = p.port
        target      = t
        sources     = p.from
        description = "${p.name}: ${p.description}"
      } if !p.public && length(p.from) > 0
    }
  ]...)
}
