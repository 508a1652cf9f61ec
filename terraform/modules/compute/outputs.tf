output "instances" {
  description = "VMs per tier: tier => list of {name, zone, internal_ip, external_ip (null but for public tiers), self_link, tags, data_disk ({device_name, size_gb, type}: the guest's /dev/disk/by-id/google-<device_name>; null without one)}, ordered by index."
  value = {
    for t, c in local.active_tiers : t => [
      for i in range(c.count) : {
        name        = local.instances["${t}-${i}"].name
        zone        = local.instances["${t}-${i}"].zone
        tags        = local.instances["${t}-${i}"].tags
        internal_ip = google_compute_instance.vm["${t}-${i}"].network_interface[0].network_ip
        external_ip = try(google_compute_address.public["${t}-${i}"].address, null)
        self_link   = google_compute_instance.vm["${t}-${i}"].self_link
        data_disk = c.data_disk_size_gb > 0 ? {
          device_name = local.data_disk_device_name
          size_gb     = c.data_disk_size_gb
          type        = c.data_disk_type
        } : null
      }
    ]
  }
}

output "service_accounts" {
  description = "Service-account email of each tier (tier => email); grant bucket access to these."
  value       = { for t, sa in google_service_account.tier : t => sa.email }
}
