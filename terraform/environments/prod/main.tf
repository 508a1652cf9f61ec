/**
 * mlpipe production environment: network + compute + storage, wired together.
 * `make provision` applies it and turns its outputs into inventories/gcp/hosts.yml
 * (terraform/scripts/tf_inventory.py). No secret is created here: passwords are
 * generated and vaulted by the Ansible side, so none lands in Terraform state.
 */

locals {
  tiers = {
    for t, d in var.tiers : t => merge(d, { for k, v in try(var.tier_overrides[t], {}) : k => v if v != null })
  }

  sa         = module.compute.service_accounts
  sa_members = { for t, e in local.sa : t => "serviceAccount:${e}" }

  # Who touches which bucket (tiers without VMs have no service account).
  raw_writers    = concat([for t in ["ngas"] : local.sa_members[t] if contains(keys(local.sa), t)], var.raw_data_uploaders)
  raw_readers    = [for t in ["dlg_worker", "slurm_node"] : local.sa_members[t] if contains(keys(local.sa), t)]
  backup_writers = [for t in distinct([module.compute.postgresql_tier, "ngas"]) : local.sa_members[t] if contains(keys(local.sa), t)]

  admin_sa_pairs = {
    for p in setproduct(var.admin_members, keys(local.sa)) : "${p[0]} ${p[1]}" => { member = p[0], tier = p[1] }
  }
}

module "network" {
  source = "../../modules/network"

  project_id        = var.project_id
  region            = var.region
  name              = var.name
  subnet_cidr       = var.subnet_cidr
  ssh_source_ranges = var.ssh_source_ranges
  tiers             = distinct(concat(keys(var.tiers), ["postgresql", "web"]))
}

module "compute" {
  source = "../../modules/compute"

  project_id          = var.project_id
  region              = var.region
  zones               = var.zones
  name                = var.name
  subnet_self_link    = module.network.subnet_self_link
  tier_tags           = module.network.tier_tags
  tiers               = local.tiers
  labels              = merge(var.labels, { app = "mlpipe", env = var.environment })
  kms_key_self_link   = var.kms_key_self_link
  deletion_protection = var.deletion_protection
}

module "storage" {
  source = "../../modules/storage"

  project_id            = var.project_id
  location              = var.region
  name                  = var.name
  raw_writers           = local.raw_writers
  raw_readers           = local.raw_readers
  backup_writers        = local.backup_writers
  backup_retention_days = var.backup_retention_days
  force_destroy         = var.buckets_force_destroy
  kms_key_name          = var.kms_key_self_link
  labels                = merge(var.labels, { app = "mlpipe", env = var.environment })
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

  service_account_id = "projects/${var.project_id}/serviceAccounts/${local.sa[each.value.tier]}"
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
