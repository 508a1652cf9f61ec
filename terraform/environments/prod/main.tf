/**
 * mlpipe production environment: network + compute + storage, wired together.
 * `make provision` applies it and turns its outputs into inventories/gcp/hosts.yml
 * (terraform/scripts/tf_inventory.py). No secret is created here: passwords are
 * generated and vaulted by the Ansible side, so none lands in Terraform state.
 */

locals {
  # Labels of every resource that takes labels (also the provider's default_labels).
  labels = merge(var.labels, { app = "mlpipe", env = var.environment })

  # The platform's tiers: tiers.yml at the repository root (the one tier list).
  tiers_file = yamldecode(file("${path.module}/../../../tiers.yml"))

  sa_members = { for t, e in module.compute.service_accounts : t => "serviceAccount:${e}" }
  # Tiers with VMs (so with a service account); known before anything exists.
  with_vms = [for t, g in module.tiers.vm_groups : t if g.count > 0]
  # Who writes backups: tier => member, for the tiers that have VMs (the PostgreSQL
  # tier, or the VMs it is hosted on, and ngas). Their user, the backup role, is
  # planned (issue 16); the grants are in place for it.
  backup_writers = { for t in distinct([lookup(module.tiers.hosted_on, "postgresql", "postgresql"), "ngas"]) : t => local.sa_members[t] if contains(local.with_vms, t) }

  # Overwritten or deleted object versions are kept this long, in every bucket.
  delete_old_versions = { action = { type = "Delete" }, condition = { days_since_noncurrent_time = 30, with_state = "ARCHIVED" } }
  # MLflow's artifacts in a bucket of their own when var.mlflow_artifact_store is
  # "gcs" (mlflow_artifacts_destination gs://...): the mlflow tier's service account
  # gets the custom role below on that bucket only.
  mlflow_tier = lookup(module.tiers.hosted_on, "mlflow", "mlflow")
  mlflow_artifact_bucket = var.mlflow_artifact_store == "gcs" ? {
    mlflow-artifacts = {
      purpose         = "mlflow-artifacts"
      lifecycle_rules = [local.delete_old_versions]
      members = {
        "custom/mlflowArtifacts" = { for t in [local.mlflow_tier] : t => local.sa_members[t] if contains(local.with_vms, t) }
      }
    }
  } : {}
  # What MLflow's gs:// artifact repository calls, and nothing else (tests/unit/
  # test_gcs_artifacts.py maps the requests a real server makes to permissions and
  # compares): upload (create; an overwrite also needs delete), list, download, and
  # delete (runs' artifacts removed by `mlflow gc`). No bucket metadata, no IAM.
  custom_roles = var.mlflow_artifact_store == "gcs" ? {
    mlflowArtifacts = {
      title       = "mlpipe MLflow artifacts"
      description = "Objects of the MLflow artifact bucket: create, read, list, delete."
      permissions = ["storage.objects.create", "storage.objects.delete", "storage.objects.get", "storage.objects.list"]
    }
  } : {}

  # Raw data has no bucket: it lands in NGAS (mlpipe load-raw, the FTP watcher).
  buckets = merge(local.mlflow_artifact_bucket, {
    backups = {
      purpose = "backups"
      lifecycle_rules = [
        { action = { type = "Delete" }, condition = { age = var.backup_retention_days, with_state = "LIVE" } },
        local.delete_old_versions,
      ]
      members = {
        # create and read, never delete: versioning keeps the history
        "roles/storage.objectCreator" = local.backup_writers
        "roles/storage.objectViewer"  = local.backup_writers
      }
    }
  })

  admin_sa_pairs = {
    for p in setproduct(var.admin_members, local.with_vms) : "${p[0]} ${p[1]}" => { member = p[0], tier = p[1] }
  }
}

module "tiers" {
  source = "../../modules/tiers"

  tiers     = local.tiers_file.tiers
  sizes     = var.tiers
  overrides = var.tier_overrides
}

module "network" {
  source = "../../modules/network"

  project_id        = var.project_id
  region            = var.region
  name              = var.name
  subnet_cidr       = var.subnet_cidr
  ssh_source_ranges = var.ssh_source_ranges
  tiers             = module.tiers.names
  service_rules     = module.tiers.service_rules
  public_ports      = module.tiers.public_ports
}

module "compute" {
  source = "../../modules/compute"

  project_id          = var.project_id
  region              = var.region
  zones               = var.zones
  name                = var.name
  subnet_self_link    = module.network.subnet_self_link
  tier_tags           = module.network.tier_tags
  tiers               = module.tiers.vm_groups
  labels              = local.labels
  kms_key_self_link   = var.kms_key_self_link
  deletion_protection = var.deletion_protection
}

module "storage" {
  source = "../../modules/storage"

  project_id    = var.project_id
  location      = var.region
  name          = var.name
  buckets       = local.buckets
  custom_roles  = local.custom_roles
  force_destroy = var.buckets_force_destroy
  kms_key_name  = var.kms_key_self_link
  labels        = local.labels
}

# Operators: sudo through OS Login, SSH through IAP, and use of the VMs' service
# accounts (OS Login requires it on VMs that run as a service account).
resource "google_project_iam_member" "os_admin_login" {
  for_each = toset(var.admin_members)

  project = var.project_id
  role    = "roles/compute.osAdminLogin"
  member  = each.value
}

resource "google_project_iam_member" "iap_tunnel" {
  for_each = toset(var.admin_members)

  project = var.project_id
  role    = "roles/iap.tunnelResourceAccessor"
  member  = each.value
}

resource "google_service_account_iam_member" "admin_sa_user" {
  for_each = local.admin_sa_pairs

  service_account_id = "projects/${var.project_id}/serviceAccounts/${module.compute.service_accounts[each.value.tier]}"
  role               = "roles/iam.serviceAccountUser"
  member             = each.value.member
}

resource "google_project_iam_audit_config" "storage" {
  count = var.storage_audit_logs ? 1 : 0

  project = var.project_id
  service = "storage.googleapis.com"

  audit_log_config {
    log_type = "DATA_READ"
  }

  audit_log_config {
    log_type = "DATA_WRITE"
  }
}
