output "hosts" {
  description = "VMs per tier (same shape as the prod environment's hosts output)."
  value       = module.compute.instances
}

output "buckets" {
  description = "Bucket names (backups)."
  value       = module.storage.names
}

output "private_cidr" {
  description = "Private subnet range."
  value       = module.network.subnet_cidr
}

output "network" {
  description = "VPC self link."
  value       = module.network.network_self_link
}
