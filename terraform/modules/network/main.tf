/**
 * mlpipe network: one custom-mode VPC with one private subnet, Cloud NAT for
 * outbound traffic of the VMs without an external IP, and firewall rules:
 *   - var.public_ports (80/443 only) open to the internet on the public tiers only;
 *   - SSH (22) from var.ssh_source_ranges only (default: the IAP range);
 *   - between tiers, one rule per var.service_rules entry: its port, from its source
 *     tiers' network tags to its target tier's (port 22 too, e.g. the Slurm login
 *     node: dlg_worker to slurm_ctl; the SSH rule above admits no tier).
 * Every other ingress hits GCP's implied deny-all rule. The environments build
 * var.public_ports and var.service_rules from tiers.yml (terraform/modules/tiers).
 */

locals {
  # Network tag of each tier; the compute module puts these on the VMs.
  tier_tags = { for t in var.tiers : t => "${var.name}-${replace(t, "_", "-")}" }

  # Only rules whose target tier exists, with sources restricted to existing tiers.
  active_service_rules = {
    for k, r in var.service_rules : k => {
      ports       = [tostring(r.port)]
      description = r.description
      target_tags = [local.tier_tags[r.target]]
      source_tags = [for t in r.sources : local.tier_tags[t] if contains(var.tiers, t)]
    }
    if contains(var.tiers, r.target) && length([for t in r.sources : t if contains(var.tiers, t)]) > 0
  }

  public_rules = { for t, ports in var.public_ports : t => [for p in ports : tostring(p)] if contains(var.tiers, t) }

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

resource "google_compute_firewall" "public" {
  #checkov:skip=CKV_GCP_106:Port 80 is public on purpose, on the public (web) tier only: it answers with a redirect to HTTPS and serves ACME HTTP-01 challenges.
  for_each = local.public_rules

  project     = var.project_id
  name        = "${var.name}-allow-${replace(each.key, "_", "-")}-public"
  description = "From the internet to the ${each.key} tier: ${join(", ", each.value)} only"
  network     = google_compute_network.vpc.id
  direction   = "INGRESS"
  priority    = 1000

  source_ranges = ["0.0.0.0/0"]
  target_tags   = [local.tier_tags[each.key]]

  allow {
    protocol = "tcp"
    ports    = each.value
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
  description = "mlpipe internal service traffic: ${each.value.description}"
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

moved {
  from = google_compute_firewall.web_public
  to   = google_compute_firewall.public["web"]
}
