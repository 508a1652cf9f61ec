output "names" {
  description = "Bucket name of each var.buckets key (the prod environment's backups => mlpipe_bucket_backups in the inventory)."
  value       = { for k, b in google_storage_bucket.bucket : k => b.name }
}
