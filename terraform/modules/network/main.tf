/**
 * mlpipe network: one custom-mode VPC with one private subnet, Cloud NAT for
 * outbound traffic of the VMs without an external IP, and firewall rules:
 *   - the web tier's 80/443 open to the internet (the only public ingress);
 *   - SSH (22) from var.ssh_source_ranges only (default: the IAP range);
 *   - between tiers, only the service ports the platform uses, by network tag.
 * Every other ingress hits GCP's implied deny-all rule.
 */

locals {
  # Network tag of each tier; the compute module puts these on the VMs.
  tier_tags = { for t in var.tiers : t => "${var.name}-${replace(t, "_", "-")}" }

  # Service traffic between tiers: rule name => TCP ports, target tiers, source tiers.
  # Keep in step with the roles' listening ports (docs/gcp.md has the table).
  service_rules = {
    ngas = { # NGAS archive HTTP API
      ports   = ["7777"]
      targets = ["ngas"]
      sources = ["mlflow", "dlg_head", "dlg_worker", "slurm_node", "web"]
    }
    mlflow = { # MLflow tracking server (web proxies it; jobs log to it)
      ports   = ["5000"]
      targets = ["mlflow"]
      sources = ["web", "dlg_head", "dlg_worker", "slurm_ctl", "slurm_node"]
    }
    postgresql = { # MLflow backend store
      ports   = ["5432"]
      targets = ["postgresql"]
      sources = ["mlflow"]
    }
    dlg-head = { # DALiuGE island manager REST + node-manager event/RPC channels
      ports   = ["8001", "5555", "6666"]
      targets = ["dlg_head"]
      sources = ["dlg_worker", "slurm_node", "web"]
    }
    dlg-worker = { # DALiuGE node manager REST + event/RPC channels between nodes
      ports   = ["8000", "5555", "6666"]
      targets = ["dlg_worker"]
      sources = ["dlg_head", "dlg_worker"]
    }
    slurmctld = { # Slurm controller
      ports   = ["6817"]
      targets = ["slurm_ctl"]
      sources = ["slurm_node", "dlg_head"]
    }
    slurmd = { # Slurm compute daemons (controller fan-out and node-to-node)
      ports   = ["6818"]
      targets = ["slurm_node"]
      sources = ["slurm_ctl", "slurm_node"]
    }
  }

  # Only rules whose target tier exists, with sources restricted to existing tiers.
  active_service_rules = {
    for k, r in local.service_rules : k => {
      ports       = r.ports
      target_tags = [for t in r.targets : local.tier_tags[t] if contains(var.tiers, t)]
      source_tags = [for t in r.sources : local.tier_tags[t] if contains(var.tiers, t)]
    }
    if length([for t in r.targets : t if contains(var.tiers, t)]) > 0 && length([for t in r.sources : t if contains(var.tiers, t)]) > 0
  }

  all_tags = values(local.tier_tags)
}

resource "google_compute_network" "vpc" {
  project                         = var.project_id
  name                            = "${var.name}-vpc"
  description                     = "mlpipe platform network"
  auto_create_subnetworks         = false
  routing_mode                    = "REGIONAL"
  delete_default_routes_on_create = false
}

resource "google_compute_subnetwork" "private" {
  project                  = var.project_id
  name                     = "${var.name}-private"
  region                   = var.region
  network                  = google_compute_network.vpc.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true
  description              = "Private subnet of every mlpipe tier"

  log_config {
    aggregation_interval = "INTERVAL_5_MIN"
    flow_sampling        = var.flow_log_sampling
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_router" "router" {
  project = var.project_id
  name    = "${var.name}-router"
  region  = var.region
  network = google_compute_network.vpc.id
}

resource "google_compute_router_nat" "nat" {
  project                            = var.project_id
  name                               = "${var.name}-nat"
  region                             = var.region
  router                             = google_compute_router.router.name
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "LIST_OF_SUBNETWORKS"

  subnetwork {
    name                    = google_compute_subnetwork.private.id
    source_ip_ranges_to_nat = ["ALL_IP_RANGES"]
  }

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

resource "google_compute_firewall" "web_public" {
  #checkov:skip=CKV_GCP_106:Port 80 is public on purpose, on the web tier only: it answers with a redirect to HTTPS and serves ACME HTTP-01 challenges.
  project     = var.project_id
  name        = "${var.name}-allow-web-public"
  description = "HTTP(S) from the internet to the web tier only"
  network     = google_compute_network.vpc.id
  direction   = "INGRESS"
  priority    = 1000

  source_ranges = ["0.0.0.0/0"]
  target_tags   = [local.tier_tags["web"]]

  allow {
    protocol = "tcp"
    ports    = [for p in var.web_public_ports : tostring(p)]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "ssh" {
  project     = var.project_id
  name        = "${var.name}-allow-ssh"
  description = "SSH from the configured ranges (default: IAP TCP forwarding) to every mlpipe VM"
  network     = google_compute_network.vpc.id
  direction   = "INGRESS"
  priority    = 1000

  source_ranges = var.ssh_source_ranges
  target_tags   = local.all_tags

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "service" {
  for_each = local.active_service_rules

  project     = var.project_id
  name        = "${var.name}-allow-${each.key}"
  description = "mlpipe internal service traffic: ${each.key}"
  network     = google_compute_network.vpc.id
  direction   = "INGRESS"
  priority    = 1000

  source_tags = each.value.source_tags
  target_tags = each.value.target_tags

  allow {
    protocol = "tcp"
    ports    = each.value.ports
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}
