output "network_self_link" {
  description = "Self link of the VPC."
  value       = google_compute_network.vpc.self_link
}

output "subnet_self_link" {
  description = "Self link of the private subnet the VMs attach to."
  value       = google_compute_subnetwork.private.self_link
}

output "subnet_cidr" {
  description = "Primary IPv4 range of the private subnet (mlpipe_private_cidr in the inventory)."
  value       = google_compute_subnetwork.private.ip_cidr_range
}

output "tier_tags" {
  description = "Network tag of each tier (tier => tag); the firewall rules select VMs by these."
  value       = local.tier_tags
}
