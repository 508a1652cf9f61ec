# Every output here is read by terraform/scripts/tf_inventory.py (tests check it).

output "hosts" {
  description = "VMs per tier: tier => [{name, zone, internal_ip, external_ip, self_link, tags, data_disk ({device_name, size_gb, type} or null)}]; data_disk gives the host's datadisk_device_name."
  value       = module.compute.instances
}

output "hosted_on" {
  description = "Tiers without VMs of their own: tier => tier whose VMs run it (e.g. postgresql => mlflow; that group is those VMs)."
  value       = module.tiers.hosted_on
}

output "private_cidr" {
  description = "The platform's private network (mlpipe_private_cidr)."
  value       = module.network.subnet_cidr
}

output "network" {
  description = "Self link of the VPC (mlpipe_gcp_network)."
  value       = module.network.network_self_link
}

output "bucket_backups" {
  description = "Backups bucket (mlpipe_bucket_backups)."
  value       = module.storage.names["backups"]
}

output "bucket_mlflow_artifacts" {
  description = "MLflow's artifact bucket when mlflow_artifact_store is \"gcs\", else null (mlpipe_bucket_mlflow_artifacts: then mlflow_artifacts_destination is gs://<it>)."
  value       = lookup(module.storage.names, "mlflow-artifacts", null)
}

output "service_accounts" {
  description = "Service-account email per tier (mlpipe_gcp_service_accounts)."
  value       = module.compute.service_accounts
}

output "project_id" {
  description = "Project of the platform (mlpipe_gcp_project; the IAP tunnel needs it)."
  value       = var.project_id
}

output "region" {
  description = "Region of the platform (mlpipe_gcp_region)."
  value       = var.region
}

output "environment" {
  description = "Environment name (mlpipe_env)."
  value       = var.environment
}
