# Run with a provider mirror: tests/terraform/lint.sh (TF_PLUGIN_MIRROR=...).
mock_provider "google" {}

variables {
  project_id     = "mlpipe-test-project"
  location       = "test-region1"
  name           = "mlpipe"
  raw_writers    = ["serviceAccount:ngas@mlpipe-test-project.iam.gserviceaccount.com"]
  backup_writers = ["serviceAccount:mlflow@mlpipe-test-project.iam.gserviceaccount.com"]
}

run "buckets_private_and_versioned" {
  command = plan

  assert {
    condition = alltrue([for b in [google_storage_bucket.raw, google_storage_bucket.backups] :
    b.public_access_prevention == "enforced" && b.uniform_bucket_level_access && b.versioning[0].enabled])
    error_message = "both buckets: public access prevention, uniform access, versioning"
  }

  assert {
    condition     = output.raw_bucket == "mlpipe-test-project-mlpipe-raw" && output.backups_bucket == "mlpipe-test-project-mlpipe-backups"
    error_message = "bucket names derive from project and name"
  }

  assert {
    condition     = google_storage_bucket_iam_member.backup_creator["serviceAccount:mlflow@mlpipe-test-project.iam.gserviceaccount.com"].role == "roles/storage.objectCreator"
    error_message = "backup writers may create, not delete"
  }
}
