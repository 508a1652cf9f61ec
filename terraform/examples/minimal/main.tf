/**
 * Minimal use of the mlpipe modules: one small VM per tier (PostgreSQL on the
 * mlflow VM), local state, a backups bucket that may be destroyed with its content.
 *   terraform init && terraform apply -var project_id=... -var region=...
 */

provider "google" {
  project = var.project_id
  region  = var.region
}

locals {
  # Every tier of tiers.yml at the repository root, one small VM each (PostgreSQL stays on
  # the mlflow VM: its count remains 0).
  tiers_file = yamldecode(file("${path.module}/../../../tiers.yml"))
  small = {
    for t, c in local.tiers_file.tiers : t => { machine_type = "e2-small", disk_size_gb = 20, data_disk_size_gb = 0 }
    if c.gcp.count > 0
  }
  ngas_data = { ngas = { machine_type = "e2-small", disk_size_gb = 20, data_disk_size_gb = 20 } }
}

module "tiers" {
  source = "../../modules/tiers"

  tiers     = local.tiers_file.tiers
  overrides = { for t, o in merge(local.small, local.ngas_data) : t => merge(o, { count = 1 }) }
}

module "network" {
  source = "../../modules/network"

  project_id    = var.project_id
  region        = var.region
  name          = "mlpipe-min"
  subnet_cidr   = "10.43.0.0/24"
  tiers         = module.tiers.names
  service_rules = module.tiers.service_rules
  public_ports  = module.tiers.public_ports
}

module "compute" {
  source = "../../modules/compute"

  project_id       = var.project_id
  region           = var.region
  name             = "mlpipe-min"
  subnet_self_link = module.network.subnet_self_link
  tier_tags        = module.network.tier_tags
  tiers            = module.tiers.vm_groups
}

module "storage" {
  source = "../../modules/storage"

  project_id    = var.project_id
  location      = var.region
  name          = "mlpipe-min"
  force_destroy = true
  buckets = {
    backups = {
      purpose         = "backups"
      lifecycle_rules = [{ action = { type = "Delete" }, condition = { age = 30 } }]
      members         = { "roles/storage.objectCreator" = { db = "serviceAccount:${module.compute.service_accounts[lookup(module.tiers.hosted_on, "postgresql", "postgresql")]}" } }
    }
  }
}
