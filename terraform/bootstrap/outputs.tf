output "state_bucket" {
  description = "Bucket of the environments' Terraform state: export MLPIPE_TF_STATE_BUCKET=<this> before `make provision`."
  value       = google_storage_bucket.state.name
}

output "enabled_services" {
  description = "APIs enabled in the project."
  value       = sort([for s in google_project_service.api : s.service])
}
