/**
 * mlpipe compute: one group of VMs per tier, named <name>-<tier>-<n>.
 * Every VM: OS Login only (no metadata SSH keys), Shielded VM, no serial port,
 * no IP forwarding, a dedicated per-tier service account with only the roles
 * in var.service_account_roles. Only the web tier has an external (static) IP;
 * the other tiers reach the internet through the network module's Cloud NAT.
 */

locals {
  db_tier_separate = try(var.tiers["postgresql"].count, 0) > 0

  # tier => tier config, only tiers with at least one VM
  active_tiers = { for t, c in var.tiers : t => c if c.count > 0 }

  # "<tier>-<n>" => everything one VM needs
  instances = merge([
    for t, c in local.active_tiers : {
      for i in range(c.count) : "${t}-${i}" => {
        tier   = t
        index  = i
        name   = "${var.name}-${replace(t, "_", "-")}-${i}"
        config = c
        zone   = local.zones[i % length(local.zones)]
        # PostgreSQL lives on the mlflow VMs unless it has its own tier.
        tags = t == "mlflow" && !local.db_tier_separate ? [var.tier_tags[t], var.tier_tags["postgresql"]] : [var.tier_tags[t]]
        labels = merge(var.labels, c.labels, {
          tier = t
        })
      }
    }
  ]...)

  zones = length(var.zones) > 0 ? var.zones : one(data.google_compute_zones.available[*].names)

  private_instances = { for k, v in local.instances : k => v if v.tier != "web" }
  public_instances  = { for k, v in local.instances : k => v if v.tier == "web" }
  data_disks        = { for k, v in local.instances : k => v if v.config.data_disk_size_gb > 0 }

  metadata = {
    enable-oslogin         = "TRUE"
    block-project-ssh-keys = "true"
    serial-port-enable     = "false"
  }

  sa_role_pairs = { for p in setproduct(keys(local.active_tiers), var.service_account_roles) : "${p[0]} ${p[1]}" => { tier = p[0], role = p[1] } }
}

data "google_compute_zones" "available" {
  count   = length(var.zones) > 0 ? 0 : 1
  project = var.project_id
  region  = var.region
  status  = "UP"
}

resource "google_service_account" "tier" {
  for_each = local.active_tiers

  project      = var.project_id
  account_id   = "${var.name}-${replace(each.key, "_", "-")}"
  display_name = "mlpipe ${each.key} VMs"
  description  = "Identity of the mlpipe ${each.key} tier's VMs (least privilege)"
}

resource "google_project_iam_member" "tier" {
  for_each = local.sa_role_pairs

  project = var.project_id
  role    = each.value.role
  member  = "serviceAccount:${google_service_account.tier[each.value.tier].email}"
}

resource "google_compute_disk" "data" {
  #checkov:skip=CKV_GCP_37:Disks are encrypted at rest with Google-managed keys by default; a customer-managed key is used when var.kms_key_self_link is set (CSEK raw keys would have to live in Terraform state).
  for_each = local.data_disks

  project = var.project_id
  name    = "${each.value.name}-data"
  zone    = each.value.zone
  type    = each.value.config.data_disk_type
  size    = each.value.config.data_disk_size_gb
  labels  = each.value.labels

  dynamic "disk_encryption_key" {
    for_each = var.kms_key_self_link == null ? [] : [var.kms_key_self_link]
    content {
      kms_key_self_link = disk_encryption_key.value
    }
  }
}

resource "google_compute_address" "web" {
  for_each = local.public_instances

  project      = var.project_id
  name         = "${each.value.name}-ip"
  region       = var.region
  address_type = "EXTERNAL"
  network_tier = "PREMIUM"
  labels       = each.value.labels
}

locals {
  all_vms = merge(google_compute_instance.private, google_compute_instance.public)
}

# Every tier but web: internal IP only.
resource "google_compute_instance" "private" {
  #checkov:skip=CKV_GCP_38:Boot disks use Google-managed encryption by default and CMEK when var.kms_key_self_link is set; CSEK raw keys would have to live in Terraform state.
  for_each = local.private_instances

  project                   = var.project_id
  name                      = each.value.name
  zone                      = each.value.zone
  machine_type              = each.value.config.machine_type
  tags                      = each.value.tags
  labels                    = each.value.labels
  metadata                  = local.metadata
  can_ip_forward            = false
  allow_stopping_for_update = true
  deletion_protection       = var.deletion_protection && contains(["mlflow", "postgresql", "ngas"], each.value.tier)

  boot_disk {
    auto_delete       = true
    kms_key_self_link = var.kms_key_self_link
    initialize_params {
      image  = each.value.config.image
      size   = each.value.config.disk_size_gb
      type   = each.value.config.disk_type
      labels = each.value.labels
    }
  }

  dynamic "attached_disk" {
    for_each = contains(keys(local.data_disks), each.key) ? [google_compute_disk.data[each.key].self_link] : []
    content {
      source      = attached_disk.value
      device_name = "data"
      mode        = "READ_WRITE"
    }
  }

  network_interface {
    subnetwork = var.subnet_self_link
  }

  service_account {
    email  = google_service_account.tier[each.value.tier].email
    scopes = ["cloud-platform"]
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  scheduling {
    on_host_maintenance = "MIGRATE"
    automatic_restart   = true
  }
}

# The web tier: the only VMs with an external (static) IP.
resource "google_compute_instance" "public" {
  #checkov:skip=CKV_GCP_40:The web tier is the platform's public entry point (80/443 only, see the network module); no other tier has an external IP.
  #checkov:skip=CKV_GCP_38:Boot disks use Google-managed encryption by default and CMEK when var.kms_key_self_link is set; CSEK raw keys would have to live in Terraform state.
  for_each = local.public_instances

  project                   = var.project_id
  name                      = each.value.name
  zone                      = each.value.zone
  machine_type              = each.value.config.machine_type
  tags                      = each.value.tags
  labels                    = each.value.labels
  metadata                  = local.metadata
  can_ip_forward            = false
  allow_stopping_for_update = true
  deletion_protection       = false

  boot_disk {
    auto_delete       = true
    kms_key_self_link = var.kms_key_self_link
    initialize_params {
      image  = each.value.config.image
      size   = each.value.config.disk_size_gb
      type   = each.value.config.disk_type
      labels = each.value.labels
    }
  }

  dynamic "attached_disk" {
    for_each = contains(keys(local.data_disks), each.key) ? [google_compute_disk.data[each.key].self_link] : []
    content {
      source      = attached_disk.value
      device_name = "data"
      mode        = "READ_WRITE"
    }
  }

  network_interface {
    subnetwork = var.subnet_self_link
    access_config {
      nat_ip       = google_compute_address.web[each.key].address
      network_tier = "PREMIUM"
    }
  }

  service_account {
    email  = google_service_account.tier[each.value.tier].email
    scopes = ["cloud-platform"]
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  scheduling {
    on_host_maintenance = "MIGRATE"
    automatic_restart   = true
  }
}
