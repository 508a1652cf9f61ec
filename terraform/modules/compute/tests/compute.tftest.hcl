# Run with a provider mirror: tests/terraform/lint.sh (TF_PLUGIN_MIRROR=...).
mock_provider "google" {}

variables {
  project_id       = "mlpipe-test-project"
  region           = "test-region1"
  zones            = ["test-region1-a", "test-region1-b"]
  name             = "mlpipe"
  subnet_self_link = "projects/mlpipe-test-project/regions/test-region1/subnetworks/mlpipe-private"
  tier_tags = {
    mlflow     = "mlpipe-mlflow"
    postgresql = "mlpipe-postgresql"
    dlg_worker = "mlpipe-dlg-worker"
    web        = "mlpipe-web"
  }
  tiers = {
    mlflow     = { count = 1, machine_type = "e2-standard-2", disk_size_gb = 30, data_disk_size_gb = 50 }
    dlg_worker = { count = 2, machine_type = "e2-standard-4", disk_size_gb = 50 }
    web        = { count = 1, machine_type = "e2-small", disk_size_gb = 20 }
  }
}

run "groups_and_exposure" {
  command = plan

  assert {
    condition     = length(google_compute_instance.private) == 3 && length(google_compute_instance.public) == 1
    error_message = "web is the only public VM group"
  }

  assert {
    condition     = alltrue([for vm in google_compute_instance.private : length(vm.network_interface[0].access_config) == 0])
    error_message = "private tiers must not have an external IP"
  }

  assert {
    condition     = google_compute_instance.private["dlg_worker-1"].zone == "test-region1-b"
    error_message = "VMs of a tier are spread over the zones"
  }

  assert {
    condition     = alltrue([for vm in google_compute_instance.private : vm.metadata["enable-oslogin"] == "TRUE" && vm.shielded_instance_config[0].enable_secure_boot])
    error_message = "OS Login and Shielded VM on every VM"
  }

  assert {
    condition     = contains(tolist(google_compute_instance.private["mlflow-0"].tags), "mlpipe-postgresql")
    error_message = "without a postgresql tier, the mlflow VMs carry the postgresql tag"
  }

  assert {
    condition     = output.postgresql_tier == "mlflow"
    error_message = "postgresql_tier falls back to mlflow"
  }

  assert {
    condition     = length(google_compute_disk.data) == 1 && length(google_service_account.tier) == 3
    error_message = "one data disk (mlflow) and one service account per tier"
  }
}

run "separate_db_tier" {
  command = plan

  variables {
    tiers = {
      mlflow     = { count = 1, machine_type = "e2-standard-2", disk_size_gb = 30 }
      postgresql = { count = 1, machine_type = "e2-standard-2", disk_size_gb = 30 }
      web        = { count = 1, machine_type = "e2-small", disk_size_gb = 20 }
    }
  }

  assert {
    condition     = output.postgresql_tier == "postgresql" && !contains(tolist(google_compute_instance.private["mlflow-0"].tags), "mlpipe-postgresql")
    error_message = "a postgresql tier with VMs takes the database"
  }
}

run "unknown_tier_rejected" {
  command = plan

  variables {
    tiers = { bastion = { count = 1, machine_type = "e2-small", disk_size_gb = 20 } }
  }

  expect_failures = [var.tiers]
}
