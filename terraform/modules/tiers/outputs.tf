output "names" {
  description = "Every tier of tiers.yml (network tags and inventory groups), sorted."
  value       = sort(keys(var.tiers))
}

output "vm_groups" {
  description = "VM group of each tier for the compute module: tier => the gcp settings, public (has a public port: external IP) and also_serves (tiers hosted on its VMs)."
  value = {
    for t, g in local.gcp : t => merge(g, {
      public      = contains(keys(local.public_ports), t)
      also_serves = sort([for o, h in local.hosted_on : o if h == t])
    })
  }

  precondition {
    condition     = length(local.unknown_tiers) == 0
    error_message = "tiers / tier_overrides name tiers that tiers.yml does not list: ${join(", ", local.unknown_tiers)}. Add the tier to tiers.yml or fix the name."
  }

  precondition {
    condition     = length(local.bad_hosts) == 0
    error_message = "tiers.yml: ${join(", ", local.bad_hosts)} has no VMs and its hosted_on tier has none either; give one of them a count > 0."
  }
}

output "hosted_on" {
  description = "Tiers without VMs of their own: tier => tier whose VMs run it (its inventory group is those VMs)."
  value       = local.hosted_on
}

output "public_ports" {
  description = "TCP ports open to the internet: tier => ports (only tiers with a public port)."
  value       = local.public_ports
}

output "service_rules" {
  description = "Internal firewall rules: \"<tier>-<port>\" => {port, target (tier), sources (tiers), description}."
  value       = local.service_rules
}
