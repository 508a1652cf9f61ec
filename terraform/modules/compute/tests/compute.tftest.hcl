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
    mlflow     = { count = 1, machine_type = "e2-standard-2", disk_size_gb = 30, data_disk_size_gb = 50, stateful = true, also_serves = ["postgresql"] }
    postgresql = { count = 0, machine_type = "e2-standard-2", disk_size_gb = 30 }
    dlg_worker = { count = 2, machine_type = "e2-standard-4", disk_size_gb = 50 }
    web        = { count = 1, machine_type = "e2-small", disk_size_gb = 20, public = true }
  }
}

run "groups_and_exposure" {
  command = plan

  assert {
    condition     = length(google_compute_instance.vm) == 4 && length(google_compute_address.public) == 1
    error_message = "one VM per count, one address for the public tier"
  }

  assert {
    condition     = alltrue([for k, vm in google_compute_instance.vm : length(vm.network_interface[0].access_config) == (k == "web-0" ? 1 : 0)])
    error_message = "only the public tier's VMs have an external IP"
  }

  assert {
    condition     = google_compute_instance.vm["dlg_worker-1"].zone == "test-region1-b"
    error_message = "VMs of a tier are spread over the zones"
  }

  assert {
    condition     = alltrue([for vm in google_compute_instance.vm : vm.metadata["enable-oslogin"] == "TRUE" && vm.shielded_instance_config[0].enable_secure_boot])
    error_message = "OS Login and Shielded VM on every VM"
  }

  assert {
    condition     = contains(tolist(google_compute_instance.vm["mlflow-0"].tags), "mlpipe-postgresql")
    error_message = "the VMs of a tier carry the tags of the tiers they host"
  }

  assert {
    condition     = length(google_compute_disk.data) == 1 && length(google_service_account.tier) == 3
    error_message = "one data disk (mlflow) and one service account per tier with VMs"
  }

  assert {
    condition     = google_compute_instance.vm["mlflow-0"].attached_disk[0].device_name == output.instances["mlflow"][0].data_disk.device_name && output.instances["web"][0].data_disk == null
    error_message = "the output gives the data disk's device_name (the inventory's datadisk_device_name), null without a data disk"
  }
}

run "bad_tier_name" {
  command = plan

  variables {
    tiers = { Bastion = { count = 1, machine_type = "e2-small", disk_size_gb = 20 } }
  }

  expect_failures = [var.tiers]
}
