/**
 * mlpipe storage: one bucket per var.buckets entry (the environments define one,
 * the backups bucket). Every bucket: uniform
 * bucket-level access, public access prevention enforced, object versioning,
 * lifecycle rules;
 * access is granted per bucket and role to the listed members (never
 * project-wide storage roles), a role being a predefined object role or one of
 * var.custom_roles (exactly the permissions a user needs).
 */

locals {
  names = { for k, b in var.buckets : k => coalesce(b.name, "${var.project_id}-${var.name}-${k}") }

  # "<bucket>/<role>/<member key>" => one IAM grant; the keys are known at plan time
  # even when the members (service-account emails) are not.
  grants = merge([
    for k, b in var.buckets : merge([
      for role, members in b.members : {
        for key, member in members : "${k}/${role}/${key}" => {
          bucket = k
          # "custom/<key>": the var.custom_roles role of that key
          role   = startswith(role, "custom/") ? google_project_iam_custom_role.role[trimprefix(role, "custom/")].name : role
          member = member
        }
      }
    ]...)
  ]...)
}

resource "google_storage_bucket" "bucket" {
  #checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (Data Access logs for storage.googleapis.com, enabled by the environment), not legacy usage logs.
  for_each = var.buckets

  project                     = var.project_id
  name                        = local.names[each.key]
  location                    = var.location
  storage_class               = each.value.storage_class
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = merge(var.labels, { purpose = each.value.purpose })

  # Always on: overwritten and deleted objects stay recoverable until a lifecycle rule
  # (days_since_noncurrent_time) removes them.
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
    for_each = each.value.lifecycle_rules
    content {
      condition {
        age                        = lifecycle_rule.value.condition.age
        with_state                 = lifecycle_rule.value.condition.with_state
        matches_storage_class      = lifecycle_rule.value.condition.matches_storage_class
        days_since_noncurrent_time = lifecycle_rule.value.condition.days_since_noncurrent_time
        num_newer_versions         = lifecycle_rule.value.condition.num_newer_versions
      }
      action {
        type          = lifecycle_rule.value.action.type
        storage_class = lifecycle_rule.value.action.storage_class
      }
    }
  }
}

# Project-level custom roles holding only the permissions a bucket's user needs;
# granted on single buckets (members "custom/<key>"), never on the project.
resource "google_project_iam_custom_role" "role" {
  for_each = var.custom_roles

  project     = var.project_id
  role_id     = "${replace(var.name, "-", "_")}_${each.key}"
  title       = each.value.title
  description = each.value.description
  permissions = each.value.permissions
}

resource "google_storage_bucket_iam_member" "member" {
  for_each = local.grants

  bucket = google_storage_bucket.bucket[each.value.bucket].name
  role   = each.value.role
  member = each.value.member
}

# State written before the buckets were one resource. (The raw-data bucket of that
# time is gone from the configuration, so it needs no move: Terraform destroys it.)
moved {
  from = google_storage_bucket.backups
  to   = google_storage_bucket.bucket["backups"]
}
