output "names" {
  description = "Bucket name of each var.buckets key (raw => mlpipe_bucket_raw, backups => mlpipe_bucket_backups in the inventory)."
  value       = { for k, b in google_storage_bucket.bucket : k => b.name }
}
