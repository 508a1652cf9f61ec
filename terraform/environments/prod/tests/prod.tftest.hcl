# Run with a provider mirror: tests/terraform/lint.sh (TF_PLUGIN_MIRROR=...).
# The gcs backend is not used by `terraform test`.
mock_provider "google" {}

variables {
  project_id = "mlpipe-test-project"
  region     = "test-region1"
  zones      = ["test-region1-a"]
}

run "defaults" {
  command = plan

  assert {
    condition     = length(output.hosts["dlg_worker"]) == 2 && length(output.hosts["web"]) == 1
    error_message = "default sizes"
  }

  assert {
    condition     = !contains(keys(output.hosts), "postgresql") && output.hosted_on["postgresql"] == "mlflow"
    error_message = "PostgreSQL on the mlflow VM by default"
  }

  assert {
    condition     = output.private_cidr == "10.42.0.0/24"
    error_message = "default private network"
  }
}

run "scale_a_tier" {
  command = plan

  variables {
    tier_overrides = { dlg_worker = { count = 4 }, postgresql = { count = 1 } }
  }

  assert {
    condition     = length(output.hosts["dlg_worker"]) == 4 && !contains(keys(output.hosted_on), "postgresql")
    error_message = "tier_overrides scales one tier and keeps the rest"
  }
}
