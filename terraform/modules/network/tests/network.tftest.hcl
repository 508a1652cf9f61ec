# Run with a provider mirror: tests/terraform/lint.sh (TF_PLUGIN_MIRROR=...).
mock_provider "google" {}

variables {
  project_id  = "mlpipe-test-project"
  region      = "test-region1"
  name        = "mlpipe"
  subnet_cidr = "10.42.0.0/24"
}

run "firewall_as_specified" {
  command = plan

  assert {
    condition     = google_compute_firewall.web_public.source_ranges == toset(["0.0.0.0/0"])
    error_message = "the web rule must be the internet-facing one"
  }

  assert {
    condition     = google_compute_firewall.web_public.target_tags == toset(["mlpipe-web"])
    error_message = "only the web tier may be public"
  }

  assert {
    condition     = google_compute_firewall.ssh.source_ranges == toset(["35.235.240.0/20"])
    error_message = "SSH must default to the IAP range"
  }

  assert {
    condition     = length(google_compute_firewall.service) == 7
    error_message = "expected the 7 internal service rules"
  }

  assert {
    condition     = google_compute_firewall.service["postgresql"].source_tags == toset(["mlpipe-mlflow"])
    error_message = "only MLflow talks to PostgreSQL"
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
    web_public_ports = [443, 8080]
  }

  expect_failures = [var.web_public_ports]
}
