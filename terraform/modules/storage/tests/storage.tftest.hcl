# Run with a provider mirror: tests/terraform/lint.sh (TF_PLUGIN_MIRROR=...).
mock_provider "google" {}

variables {
  project_id = "mlpipe-test-project"
  location   = "test-region1"
  name       = "mlpipe"
  buckets = {
    scratch = {
      purpose         = "scratch"
      lifecycle_rules = [{ action = { type = "Delete" }, condition = { age = 30 } }]
      members         = { "roles/storage.objectUser" = { ngas = "serviceAccount:ngas@mlpipe-test-project.iam.gserviceaccount.com" } }
    }
    backups = {
      purpose         = "backups"
      lifecycle_rules = [{ action = { type = "Delete" }, condition = { age = 90 } }]
      members         = { "roles/storage.objectCreator" = { mlflow = "serviceAccount:mlflow@mlpipe-test-project.iam.gserviceaccount.com" } }
    }
  }
}

run "buckets_private_and_versioned" {
  command = plan

  assert {
    condition = alltrue([for b in google_storage_bucket.bucket :
    b.public_access_prevention == "enforced" && b.uniform_bucket_level_access && b.versioning[0].enabled])
    error_message = "every bucket: public access prevention, uniform access, versioning"
  }

  assert {
    condition     = output.names["scratch"] == "mlpipe-test-project-mlpipe-scratch" && output.names["backups"] == "mlpipe-test-project-mlpipe-backups"
    error_message = "bucket names derive from project, name and key"
  }

  assert {
    condition     = google_storage_bucket_iam_member.member["backups/roles/storage.objectCreator/mlflow"].role == "roles/storage.objectCreator"
    error_message = "one grant per bucket, role and member"
  }
}

run "admin_role_rejected" {
  command = plan

  variables {
    buckets = {
      scratch = {
        purpose         = "scratch"
        lifecycle_rules = [{ action = { type = "Delete" }, condition = { age = 30 } }]
        members         = { "roles/storage.admin" = { x = "user:x@example.org" } }
      }
    }
  }

  expect_failures = [var.buckets]
}
