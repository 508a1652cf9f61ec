/**
 * Minimal use of the mlpipe modules: one small VM per tier (PostgreSQL on the
 * mlflow VM), local state, buckets that may be destroyed with their content.
 *   terraform init && terraform apply -var project_id=... -var region=...
 */

provider "google" {
  project = var.project_id
  region  = var.region
}

locals {
  small = { count = 1, machine_type = "e2-small", disk_size_gb = 20 }
}

module "network" {
  source = "../../modules/network"

  project_id  = var.project_id
  region      = var.region
  name        = "mlpipe-min"
  subnet_cidr = "10.43.0.0/24"
}

module "compute" {
  source = "../../modules/compute"

  project_id       = var.project_id
  region           = var.region
  name             = "mlpipe-min"
  subnet_self_link = module.network.subnet_self_link
  tier_tags        = module.network.tier_tags
  tiers = {
    mlflow     = local.small
    ngas       = merge(local.small, { data_disk_size_gb = 20 })
    dlg_head   = local.small
    dlg_worker = local.small
    slurm_ctl  = local.small
    slurm_node = local.small
    web        = local.small
  }
}

module "storage" {
  source = "../../modules/storage"

  project_id     = var.project_id
  location       = var.region
  name           = "mlpipe-min"
  force_destroy  = true
  raw_writers    = ["serviceAccount:${module.compute.service_accounts["ngas"]}"]
  backup_writers = ["serviceAccount:${module.compute.service_accounts[module.compute.postgresql_tier]}"]
}
