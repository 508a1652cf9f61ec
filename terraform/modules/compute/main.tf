/**
 * mlpipe compute: one group of VMs per tier, named <name>-<tier>-<n>.
 * Every VM: OS Login only (no metadata SSH keys), Shielded VM, no serial port,
 * no IP forwarding, a dedicated per-tier service account with only the roles
 * in var.service_account_roles. Only the VMs of public tiers (tiers.yml: a port
 * with public: true, i.e. web) get an external (static) IP; the others reach the
 * internet through the network module's Cloud NAT.
 */

locals {
  # tier => tier config, only tiers with at least one VM
  active_tiers = { for t, c in var.tiers : t => c if c.count > 0 }

  # "<tier>-<n>" => everything one VM needs
  instances = merge([
    for t, c in local.active_tiers : {
      for i in range(c.count) : "${t}-${i}" => {
        tier   = t
        name   = "${var.name}-${replace(t, "_", "-")}-${i}"
        config = c
        public = c.public
        zone   = local.zones[i % length(local.zones)]
        # The VMs also carry the network tags of the tiers they host (tiers.yml hosted_on).
        tags = [for s in concat([t], c.also_serves) : var.tier_tags[s]]
        # The labels of everything made for this VM (instance, boot and data disk, address).
        labels = merge(var.labels, c.labels, { tier = t })
      }
    }
  ]...)

  zones = length(var.zones) > 0 ? var.zones : one(data.google_compute_zones.available[*].names)

  public_instances = { for k, v in local.instances : k => v if v.public }
  data_disks       = { for k, v in local.instances : k => v if v.config.data_disk_size_gb > 0 }
  # The attached data disk's device name: the guest sees it as
  # /dev/disk/by-id/google-<name> (output instances, the inventory's datadisk_device_name).
  data_disk_device_name = "data"

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

  lifecycle {
    precondition {
      condition     = alltrue([for s in concat([each.key], each.value.also_serves) : contains(keys(var.tier_tags), s)])
      error_message = "tier_tags (the network module's output) has no tag for tier ${each.key} or a tier it hosts; pass the same tier names to both modules."
    }
  }
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

# The static external address of each VM of a public tier.
resource "google_compute_address" "public" {
  for_each = local.public_instances

  project      = var.project_id
  name         = "${each.value.name}-ip"
  region       = var.region
  address_type = "EXTERNAL"
  network_tier = "PREMIUM"
  labels       = each.value.labels
}

resource "google_compute_instance" "vm" {
  # CKV_GCP_40 (no public IP) is skipped for this resource only: checkov cannot scope a
  # skip to some for_each instances, and it reads the dynamic access_config below as
  # present on every VM. An access_config exists only for VMs of public tiers (tiers.yml:
  # a port with public: true, i.e. web, 80/443 only, see the network module); the
  # tests (tests/terraform) check that no other tier gets one.
  #checkov:skip=CKV_GCP_40:Only the VMs of public tiers (web) get an access_config, see the comment above.
  #checkov:skip=CKV_GCP_38:Boot disks use Google-managed encryption by default and CMEK when var.kms_key_self_link is set; CSEK raw keys would have to live in Terraform state.
  for_each = local.instances

  project                   = var.project_id
  name                      = each.value.name
  zone                      = each.value.zone
  machine_type              = each.value.config.machine_type
  tags                      = each.value.tags
  labels                    = each.value.labels
  metadata                  = local.metadata
  can_ip_forward            = false
  allow_stopping_for_update = true
  deletion_protection       = var.deletion_protection && each.value.config.stateful

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
      device_name = local.data_disk_device_name
      mode        = "READ_WRITE"
    }
  }

  network_interface {
    subnetwork = var.subnet_self_link

    # An external IP only on the VMs of public tiers.
    dynamic "access_config" {
      for_each = each.value.public ? [google_compute_address.public[each.key].address] : []
      content {
        nat_ip       = access_config.value
        network_tier = "PREMIUM"
      }
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

# State written before the single instance resource: the VMs of the private tiers
# (every tier but web) and the web addresses keep their identity. The web VMs
# themselves are replaced (they hold no data).
moved {
  from = google_compute_instance.private
  to   = google_compute_instance.vm
}

moved {
  from = google_compute_address.web
  to   = google_compute_address.public
}
