output "instances" {
  description = "VMs per tier: tier => list of {name, zone, internal_ip, external_ip (null but for public tiers), self_link, tags}, ordered by index."
  value = {
    for t, c in local.active_tiers : t => [
      for i in range(c.count) : {
        name        = local.instances["${t}-${i}"].name
        zone        = local.instances["${t}-${i}"].zone
        tags        = local.instances["${t}-${i}"].tags
        internal_ip = google_compute_instance.vm["${t}-${i}"].network_interface[0].network_ip
        external_ip = try(google_compute_address.public["${t}-${i}"].address, null)
        self_link   = google_compute_instance.vm["${t}-${i}"].self_link
      }
    ]
  }
}

output "service_accounts" {
  description = "Service-account email of each tier (tier => email); grant bucket access to these."
  value       = { for t, sa in google_service_account.tier : t => sa.email }
}
