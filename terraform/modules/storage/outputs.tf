output "raw_bucket" {
  description = "Name of the raw-data landing bucket (mlpipe_bucket_raw in the inventory)."
  value       = google_storage_bucket.raw.name
}

output "backups_bucket" {
  description = "Name of the backups bucket (mlpipe_bucket_backups in the inventory)."
  value       = google_storage_bucket.backups.name
}
