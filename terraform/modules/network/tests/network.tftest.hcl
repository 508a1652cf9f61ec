# Run with a provider mirror: tests/terraform/lint.sh (TF_PLUGIN_MIRROR=...).
mock_provider "google" {}

variables {
  project_id   = "mlpipe-test-project"
  region       = "test-region1"
  name         = "mlpipe"
  subnet_cidr  = "10.42.0.0/24"
  tiers        = ["mlflow", "postgresql", "dlg_worker", "web"]
  public_ports = { web = [443, 80] }
  service_rules = {
    postgresql-5432 = { port = 5432, target = "postgresql", sources = ["mlflow"], description = "pg" }
    mlflow-5000     = { port = 5000, target = "mlflow", sources = ["web", "dlg_worker", "slurm_node"], description = "mlflow" }
    ngas-7777       = { port = 7777, target = "ngas", sources = ["mlflow"], description = "ngas, absent tier" }
  }
}

run "firewall_as_specified" {
  command = plan

  assert {
    condition     = keys(google_compute_firewall.public) == ["web"] && google_compute_firewall.public["web"].source_ranges == toset(["0.0.0.0/0"])
    error_message = "the public tier's rule is the internet-facing one"
  }

  assert {
    condition     = google_compute_firewall.ssh.source_ranges == toset(["35.235.240.0/20"])
    error_message = "SSH must default to the IAP range"
  }

  assert {
    condition     = length(google_compute_firewall.service) == 2
    error_message = "rules for absent target tiers are dropped"
  }

  assert {
    condition     = google_compute_firewall.service["mlflow-5000"].source_tags == toset(["mlpipe-web", "mlpipe-dlg-worker"])
    error_message = "sources are restricted to existing tiers"
  }

  assert {
    condition     = output.tier_tags["dlg_worker"] == "mlpipe-dlg-worker"
    error_message = "tier tags are <name>-<tier with hyphens>"
  }
}

run "ssh_from_anywhere_is_rejected" {
  command = plan

  variables {
    ssh_source_ranges = ["0.0.0.0/0"]
  }

  expect_failures = [var.ssh_source_ranges]
}

run "only_80_443_public" {
  command = plan

  variables {
    public_ports = { web = [443, 8080] }
  }

  expect_failures = [var.public_ports]
}
