# No provider needed: tests/terraform/lint.sh runs this offline (terraform test).
variables {
  tiers = {
    db = {
      status      = "deployed"
      description = "database"
      hosted_on   = "app"
      ports       = [{ port = 5432, name = "pg", description = "db", from = ["app"] }]
      gcp         = { count = 0, machine_type = "e2-small", disk_size_gb = 20 }
    }
    app = {
      status      = "deployed"
      description = "application"
      local_host  = "mlpipe-app"
      ports       = [{ port = 5000, name = "app", description = "api", from = ["front"] }]
      gcp         = { count = 1, machine_type = "e2-small", disk_size_gb = 20 }
    }
    front = {
      status      = "planned"
      description = "public front"
      local_host  = "mlpipe-front"
      ports       = [{ port = 443, name = "https", description = "https", public = true }]
      gcp         = { count = 2, machine_type = "e2-small", disk_size_gb = 20 }
    }
  }
}

run "wiring" {
  command = apply

  assert {
    condition     = jsonencode(output.names) == jsonencode(["app", "db", "front"])
    error_message = "every tier is named"
  }

  assert {
    condition     = output.vm_groups["front"].public && !output.vm_groups["app"].public && !output.vm_groups["db"].public
    error_message = "only tiers with a public port are public"
  }

  assert {
    condition     = jsonencode(output.hosted_on) == jsonencode({ db = "app" }) && jsonencode(output.vm_groups["app"].also_serves) == jsonencode(["db"])
    error_message = "a tier without VMs lives on its hosted_on tier"
  }

  assert {
    condition     = jsonencode(keys(output.service_rules)) == jsonencode(["app-5000", "db-5432"]) && jsonencode(output.service_rules["db-5432"].sources) == jsonencode(["app"])
    error_message = "one rule per private port, sources from the file"
  }

  assert {
    condition     = jsonencode(output.public_ports) == jsonencode({ front = [443] })
    error_message = "public ports per public tier"
  }
}

run "overrides" {
  command = apply

  variables {
    overrides = { db = { count = 1 }, front = { machine_type = "e2-medium" } }
  }

  assert {
    condition     = length(output.hosted_on) == 0 && output.vm_groups["db"].count == 1 && output.vm_groups["front"].machine_type == "e2-medium" && output.vm_groups["front"].count == 2
    error_message = "overrides change single attributes; a tier with VMs is not hosted elsewhere"
  }
}

run "unknown_override" {
  command = plan

  variables {
    overrides = { bastion = { count = 1 } }
  }

  expect_failures = [output.vm_groups]
}

run "bad_status" {
  command = plan

  variables {
    tiers = {
      app = { status = "maybe", description = "x", gcp = { count = 1, machine_type = "e2-small", disk_size_gb = 20 } }
    }
  }

  expect_failures = [var.tiers]
}
