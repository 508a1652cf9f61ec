/**
 * mlpipe storage: the raw-data landing bucket and the backups bucket.
 * Both: uniform bucket-level access, public access prevention enforced,
 * object versioning, lifecycle rules; access is granted per bucket to the
 * tiers' service accounts (never project-wide storage roles).
 */

locals {
  raw_name     = coalesce(var.raw_bucket_name, "${var.project_id}-${var.name}-raw")
  backups_name = coalesce(var.backups_bucket_name, "${var.project_id}-${var.name}-backups")
}

resource "google_storage_bucket" "raw" {
  #checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (Data Access logs for storage.googleapis.com, enabled by the environment), not legacy usage logs.
  project                     = var.project_id
  name                        = local.raw_name
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = merge(var.labels, { purpose = "raw-data" })

  versioning {
    enabled = true
  }

  dynamic "encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  dynamic "lifecycle_rule" {
    for_each = var.raw_nearline_after_days > 0 ? [var.raw_nearline_after_days] : []
    content {
      condition {
        age                   = lifecycle_rule.value
        matches_storage_class = ["STANDARD"]
      }
      action {
        type          = "SetStorageClass"
        storage_class = "NEARLINE"
      }
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }
}

resource "google_storage_bucket" "backups" {
  #checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (Data Access logs for storage.googleapis.com, enabled by the environment), not legacy usage logs.
  project                     = var.project_id
  name                        = local.backups_name
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = merge(var.labels, { purpose = "backups" })

  versioning {
    enabled = true
  }

  dynamic "encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  lifecycle_rule {
    condition {
      age        = var.backup_retention_days
      with_state = "LIVE"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_iam_member" "raw_writer" {
  for_each = toset(var.raw_writers)

  bucket = google_storage_bucket.raw.name
  role   = "roles/storage.objectUser"
  member = each.value
}

resource "google_storage_bucket_iam_member" "raw_reader" {
  for_each = toset(var.raw_readers)

  bucket = google_storage_bucket.raw.name
  role   = "roles/storage.objectViewer"
  member = each.value
}

resource "google_storage_bucket_iam_member" "backup_creator" {
  for_each = toset(var.backup_writers)

  bucket = google_storage_bucket.backups.name
  role   = "roles/storage.objectCreator"
  member = each.value
}

resource "google_storage_bucket_iam_member" "backup_reader" {
  for_each = toset(var.backup_writers)

  bucket = google_storage_bucket.backups.name
  role   = "roles/storage.objectViewer"
  member = each.value
}
